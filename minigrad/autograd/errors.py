"""The exceptions ops raise, and the helpers that write their messages (op name, shapes,
dtypes, what was expected)."""

from __future__ import annotations


class OpError(Exception):
    """Mixin marking an exception whose message already names the op and its inputs."""


class ShapeError(OpError, ValueError):
    pass


class DTypeError(OpError, TypeError):
    pass


class OpIndexError(OpError, IndexError):
    pass


def describe_inputs(tensors) -> str:
    """``"(2, 3) float32, (3,) float32"``: the shapes and dtypes of an op's tensor inputs."""
    return ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in tensors)


def _with_op_context(opname, e, tensors):
    """Re-raise a NumPy/CuPy error with the op's name and its tensor inputs' shapes and
    dtypes (``tensors``: the op's Tensor arguments)."""
    if isinstance(e, OpError):
        return e
    msg = str(e)
    if "could not be broadcast" in msg:
        shapes = [tuple(t.shape) for t in tensors]
        return ShapeError(broadcast_error_message(opname, shapes))
    cls = {ValueError: ShapeError, TypeError: DTypeError, IndexError: OpIndexError}
    for base, new in cls.items():
        if isinstance(e, base):
            return new(f"{opname}: {msg} (inputs: {describe_inputs(tensors)})")
    return e


def broadcast_error_message(opname, shapes) -> str:
    """Name both shapes and the first dimension (counted from the right) that clashes."""
    ndim = max(len(s) for s in shapes)
    for k in range(1, ndim + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            return (
                f"{opname}: shapes {' and '.join(str(s) for s in shapes)} are not "
                f"broadcastable: dimension {-k} has sizes {sorted(sizes)} (each must be equal "
                "or 1)"
            )
    return f"{opname}: shapes {' and '.join(str(s) for s in shapes)} are not broadcastable"
