"""Ops, one module per family. Each op is a ``Function`` with forward and backward together."""

from ..backend import is_cupy_array
from ..kernels import select


def kernel(op: str, array):
    """The kernel variant to run ``op`` on ``array``'s device (see ``minigrad.kernels``)."""
    return select(op, "cuda" if is_cupy_array(array) else "cpu")
