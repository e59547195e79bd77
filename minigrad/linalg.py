"""``minigrad.linalg``: the vector-norm and cross-product part of ``torch.linalg`` (the
code is in ``minigrad/ops/linalg_extra.py``)."""

from __future__ import annotations

from .ops import linalg_extra as _la


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """The ``ord``-norm of the elements along ``dim`` (all for None): 2, 1, inf, -inf, 0 or
    any real number."""
    return _la.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def cross(input, other, dim=-1):  # noqa: A002
    """The cross product of 3-vectors along ``dim`` (default -1, unlike ``torch.cross``)."""
    return _la.cross(input, other, dim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: N803
    """The Frobenius norm of the matrices in the last two dims (``ord='fro'`` only)."""
    if ord != "fro":
        raise NotImplementedError(f"matrix_norm: ord={ord!r} is not supported (only 'fro')")
    return _la.vector_norm(A, 2, dim, keepdim, dtype=dtype)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002, N803
    """``torch.linalg.norm`` for vector norms (any ``ord`` with a 1-D dim or input) and the
    Frobenius norm (``ord`` None or 'fro' with 2-D dims)."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        return _la.vector_norm(A, 2, dim, keepdim, dtype=dtype)
    two_d = (dim is not None and len(dim) == 2) or (dim is None and A.ndim == 2)
    if two_d:
        return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: ord={ord!r} needs a matrix (2-D dim)")
    return _la.vector_norm(A, ord, dim, keepdim, dtype=dtype)


__all__ = ["vector_norm", "matrix_norm", "norm", "cross"]
