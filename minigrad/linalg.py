"""``minigrad.linalg``: the norms, SVD and cross-product part of ``torch.linalg`` (the code is
in ``minigrad/ops/linalg_extra.py``)."""

from __future__ import annotations

from .ops import linalg_extra as _la


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ``ord``-norm of the elements along ``dim`` (all for None): 2, 1, inf, -inf, 0 or
    any real number."""
    return _la.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def cross(input, other, dim=-1):
    """The cross product of 3-vectors along ``dim`` (default -1, unlike ``torch.cross``)."""
    return _la.cross(input, other, dim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The ``ord`` norm of the matrices in the two dims ``dim`` (the others are batch dims):
    'fro', 'nuc' (sum of the singular values), 2 / -2 (largest / smallest singular value),
    1 / -1 (max / min column abs-sum), inf / -inf (max / min row abs-sum)."""
    return _la.matrix_norm(A, ord, dim, keepdim, dtype=dtype)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """``torch.linalg.norm``: a matrix norm (:func:`matrix_norm`) when ``ord`` is given and
    ``dim`` is a 2-tuple (or None with a 2-D input), else a vector norm (``ord`` None: 2, over
    every element when ``dim`` is None)."""
    name = "linalg.norm"
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) not in (1, 2):
            raise ValueError(f"{name}: dim must be an int or a 1- or 2-tuple, got {dim!r}")
    elif ord is not None and A.ndim not in (1, 2):
        raise ValueError(
            f"{name}: with ord={ord!r} and no dim the input must be 1-D or 2-D, "
            f"got shape {tuple(A.shape)}"
        )
    else:
        dims = None
    if isinstance(ord, str):
        return _la.matrix_norm(A, ord, dims if dims is not None else (0, 1), keepdim, dtype=dtype)
    if ord is not None and (len(dims) == 2 if dims is not None else A.ndim == 2):
        return _la.matrix_norm(A, ord, dims if dims is not None else (-2, -1), keepdim, dtype=dtype)
    return _la.vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


def svd(A, full_matrices=True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` over the last two dims, S descending.
    Differentiable (PyTorch's formula: needs distinct singular values when U or Vh is used);
    ``full_matrices=False`` gives the reduced factors."""
    return _la.svd(A, full_matrices)


def svdvals(A):
    """The singular values of the matrices in the last two dims, descending."""
    return _la.svdvals(A)


__all__ = ["vector_norm", "matrix_norm", "norm", "cross", "svd", "svdvals"]
