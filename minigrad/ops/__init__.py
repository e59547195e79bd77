"""Ops, one module per family. Each op is a ``Function`` with forward and backward together;
a fused op gets its kernel from ``minigrad.kernels.dispatch(op, array)``."""

from ..kernels import dispatch


def kernel(op: str, array):
    """``minigrad.kernels.dispatch(op, array)``: the older name, still called by ops/conv.py,
    loss.py, rnn.py, attention.py and pool.py; marked for removal once they call dispatch."""
    return dispatch(op, array)
