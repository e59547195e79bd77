"""Ops, one module per family. Each op is a ``Function`` with forward and backward together;
a fused op gets its kernel from ``minigrad.kernels.dispatch(op, array)``."""
