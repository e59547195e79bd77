"""Argument checks shared by every kernel variant (reference, cpp, cuda, tiled, blocked).

Each raises the error a native boundary raises for the same call (TypeError for a dtype,
ValueError for a shape), naming the op and the argument, so switching variants never changes
which error a bad call gets. Re-exported by :mod:`minigrad.kernels.reference`.
"""

from __future__ import annotations

FLOAT_DTYPES = ("float32", "float64")


def check_float(op: str, **arrays) -> None:
    """TypeError unless every array is float32/float64 and all share one dtype."""
    first = None
    for name, a in arrays.items():  # one pass, no temporaries: this runs on every kernel call
        c = a.dtype.char
        if c != "f" and c != "d":  # float32 / float64 (cheaper than dtype.name)
            raise TypeError(
                f"{op}: argument '{name}' has dtype {a.dtype.name}, expected float32 or float64"
            )
        if first is None:
            first = c
        elif c != first:
            got = ", ".join(f"{n}={b.dtype.name}" for n, b in arrays.items())
            raise TypeError(f"{op}: arguments must have the same dtype, got {got}")


def check_same_shape(op: str, **arrays) -> None:
    """ValueError unless all arrays have one shape (kernels do not broadcast)."""
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        got = ", ".join(f"{n}={tuple(a.shape)}" for n, a in arrays.items())
        raise ValueError(f"{op}: arguments must have the same shape, got {got}")
