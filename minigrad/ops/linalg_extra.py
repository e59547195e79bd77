"""Linear-algebra helpers composed from primitives: einsum (lowered to permute / reshape /
matmul / sum), tril, triu, diag, diagonal, trace, outer, kron, cross, vector and matrix norms
and cdist.

Every op is a short composition, so backward and double backward come from the primitives
it is made of, except the SVD: ``Svd`` and ``SvdVals`` are primitives (LAPACK through
``xp.linalg.svd``) whose backward is PyTorch's formula written with Tensor operations, so it
is differentiable in turn. The spectral and nuclear matrix norms are built on ``SvdVals``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import DTypeError, Function, ShapeError, is_grad_enabled
from ..backend import get_array_module
from .indexing import IndexAdd
from .reduce import normalize_dims
from .shape import Cat

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Array, Ctx, Dims, DTypeLike, Grads
    from ..tensor import Tensor


def _xp(t):
    return get_array_module(t._data)


# ----------------------------------------------------------------------------- einsum


def _parse(equation, operands):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
        explicit = True
    else:
        lhs, out, explicit = eq, None, False
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(
            f"einsum: the equation {equation!r} has {len(terms)} operand(s) but "
            f"{len(operands)} tensor(s) were given"
        )
    ell_dims = 0
    for t, x in zip(terms, operands):
        if "..." in t:
            ell_dims = max(ell_dims, x.ndim - (len(t) - 3))
    ell = [chr(0x100 + i) for i in range(ell_dims)]  # placeholder labels for '...'
    labels = []
    for t, x in zip(terms, operands):
        body = t.replace("...", "")
        if not all(c.isalpha() for c in body) or t.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {t!r} in {equation!r}")
        if "..." in t:
            n = x.ndim - len(body)
            if n < 0:
                raise ValueError(
                    f"einsum: subscripts {t!r} need at least {len(body)} dims, "
                    f"got shape {tuple(x.shape)}"
                )
            i = t.index("...")
            labels.append(list(t[:i]) + ell[ell_dims - n :] + list(t[i + 3 :]))
        else:
            if len(t) != x.ndim:
                raise ValueError(
                    f"einsum: subscripts {t!r} name {len(t)} dims but the operand "
                    f"has shape {tuple(x.shape)}"
                )
            labels.append(list(t))
    if explicit:
        if not all(c.isalpha() for c in out.replace("...", "")):
            raise ValueError(f"einsum: invalid output subscripts {out!r}")
        i = out.find("...")
        out_labels = list(out) if i < 0 else list(out[:i]) + ell + list(out[i + 3 :])
        if len(set(out_labels)) != len(out_labels):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a label")
        seen = {c for lab in labels for c in lab}
        for c in out_labels:
            if c not in seen:
                raise ValueError(f"einsum: output label {c!r} appears in no operand")
    else:
        counts: dict = {}
        for lab in labels:
            for c in lab:
                counts[c] = counts.get(c, 0) + 1
        out_labels = ell + sorted(c for c, k in counts.items() if k == 1 and c not in ell)
    return labels, out_labels


def _take_diagonals(x, lab):
    """Repeated labels within one operand ('ii'): keep their diagonal, once."""
    while len(set(lab)) != len(lab):
        for i, c in enumerate(lab):
            j = lab.index(c, i + 1) if lab.count(c) > 1 else -1
            if j > 0:
                if x.shape[i] != x.shape[j]:
                    raise ValueError(
                        f"einsum: label {c!r} has sizes {x.shape[i]} and "
                        f"{x.shape[j]} in one operand"
                    )
                x = diagonal(x, 0, i, j)  # the diagonal goes last
                lab = [d for k, d in enumerate(lab) if k not in (i, j)] + [c]
                break
    return x, lab


def _sum_labels(x, lab, drop):
    dims = [i for i, c in enumerate(lab) if c in drop]
    if dims:
        x = x.sum(tuple(dims))
        lab = [c for c in lab if c not in drop]
    return x, lab


def _permute(x, lab, order):
    perm = [lab.index(c) for c in order]
    return (x.permute(*perm) if perm != list(range(len(perm))) else x), list(order)


def _contract(a, la, b, lb, keep, sizes):
    """Contract two operands; ``keep`` = labels still needed later (output or others)."""
    for x_lab, x_is_a in ((la, True), (lb, False)):  # broadcast size-1 dims to the label size
        x = a if x_is_a else b
        want = tuple(sizes[c] for c in x_lab)
        if tuple(x.shape) != want:
            x = x.expand(want)
        if x_is_a:
            a = x
        else:
            b = x
    batch = [c for c in la if c in lb and c in keep]
    contr = [c for c in la if c in lb and c not in keep]
    only_a = [c for c in la if c not in lb]
    only_b = [c for c in lb if c not in la]
    a, la = _permute(a, la, batch + only_a + contr)
    b, lb = _permute(b, lb, batch + contr + only_b)

    def n(cs):
        return math.prod(sizes[c] for c in cs)

    out = a.reshape(n(batch), n(only_a), n(contr)) @ b.reshape(n(batch), n(contr), n(only_b))
    labels = batch + only_a + only_b
    return out.reshape(tuple(sizes[c] for c in labels)), labels


def einsum(equation: str, *operands: Tensor) -> Tensor:
    """``einsum('ij,jk->ik', a, b)``: Einstein summation. Each operand's repeated labels
    become a diagonal, labels used nowhere else are summed, then operands are contracted
    left to right, each pair as one batched matmul. Supports '...' (broadcast) and the
    implicit output (labels used once, in alphabetical order)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    labels, out_labels = _parse(equation, operands)
    sizes: dict = {}
    for lab, x in zip(labels, operands):
        for c, s in zip(lab, x.shape):
            if sizes.get(c, 1) != 1 and s not in (1, sizes[c]):
                raise ValueError(
                    f"einsum: label {c!r} has sizes {sizes[c]} and {s} "
                    f"(operand shapes {[tuple(o.shape) for o in operands]})"
                )
            sizes[c] = max(sizes.get(c, 1), s) if s != 0 else 0
    xs, labs = [], []
    for k, (x, lab) in enumerate(zip(operands, labels)):
        x, lab = _take_diagonals(x, list(lab))
        later = set(out_labels).union(*[set(lb) for j, lb in enumerate(labels) if j != k])
        x, lab = _sum_labels(x, lab, {c for c in lab if c not in later})
        xs.append(x)
        labs.append(lab)
    x, lab = xs[0], labs[0]
    for k in range(1, len(xs)):
        keep = set(out_labels).union(*[set(lb) for lb in labs[k + 1 :]])
        x, lab = _contract(x, lab, xs[k], labs[k], keep, sizes)
    x, lab = _sum_labels(x, lab, {c for c in lab if c not in out_labels})
    want = tuple(sizes[c] for c in lab)
    if tuple(x.shape) != want:  # a lone operand's size-1 broadcast dims
        x = x.expand(want)
    x, _ = _permute(x, lab, out_labels)
    return x if x is not operands[0] else x * 1


# ----------------------------------------------------------------------------- matrices


def _tri_mask(x, diagonal, upper):
    if x.ndim < 2:
        raise ShapeError(
            f"{'triu' if upper else 'tril'}: expected a tensor with at least 2 "
            f"dimensions, got shape {tuple(x.shape)}"
        )
    xp = _xp(x)
    r, c = x.shape[-2:]
    keep = (
        xp.triu(xp.ones((r, c), bool), diagonal)
        if upper
        else xp.tril(xp.ones((r, c), bool), diagonal)
    )
    return type(x)(~keep)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    return x.masked_fill(_tri_mask(x, diagonal, False), 0)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    return x.masked_fill(_tri_mask(x, diagonal, True), 0)


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes, as a new last dim."""
    if x.ndim < 2:
        raise ShapeError(f"diagonal: expected at least 2 dimensions, got shape {tuple(x.shape)}")
    d1, d2 = (
        normalize_dims(dim1, x.ndim, "diagonal")[0],
        normalize_dims(dim2, x.ndim, "diagonal")[0],
    )
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 cannot be the same dimension ({dim1})")
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    y = x.permute(*rest, d1, d2)
    r, c = x.shape[d1], x.shape[d2]
    xp = _xp(x)
    i0, j0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(r - i0, c - j0))
    rows, cols = xp.arange(i0, i0 + n), xp.arange(j0, j0 + n)
    return y[(Ellipsis, rows, cols)]


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """1-D -> the square matrix with ``x`` on its ``diagonal``; 2-D -> that diagonal."""
    if x.ndim == 2:
        return globals()["diagonal"](x, diagonal)
    if x.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] + abs(diagonal)
    xp = _xp(x)
    i = xp.arange(x.shape[0])
    key = (i + max(-diagonal, 0), i + max(diagonal, 0))
    return IndexAdd.apply(x, (n, n), key)


def trace(x: Tensor) -> Tensor:
    if x.ndim != 2:
        raise ShapeError(f"trace: expected a 2-D tensor, got shape {tuple(x.shape)}")
    out = diagonal(x).sum()
    return out


def outer(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(
            f"outer: expected two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return a.reshape(-1, 1) * b.reshape(1, -1)


def kron(a: Tensor, b: Tensor) -> Tensor:
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    ra = [v for s in sa for v in (s, 1)]
    rb = [v for s in sb for v in (1, s)]
    out = a.reshape(tuple(ra)) * b.reshape(tuple(rb))
    return out.reshape(tuple(p * q for p, q in zip(sa, sb)))


def cross(a: Tensor, b: Tensor, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (None: the first dim of size 3, like
    ``torch.cross``; ``linalg.cross`` uses -1). Inputs broadcast."""
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    a, b = a.expand(shape), b.expand(shape)
    if dim is None:
        dims = [i for i, s in enumerate(shape) if s == 3]
        if not dims:
            raise ShapeError(f"cross: no dimension of size 3 in shape {shape}")
        d = dims[0]
    else:
        (d,) = normalize_dims(dim, len(shape), "cross")
    if shape[d] != 3:
        raise ShapeError(f"cross: dimension {d} should have size 3, got shape {shape}")

    def c(t, i):
        return t.narrow(d, i, 1)

    parts = [
        c(a, 1) * c(b, 2) - c(a, 2) * c(b, 1),
        c(a, 2) * c(b, 0) - c(a, 0) * c(b, 2),
        c(a, 0) * c(b, 1) - c(a, 1) * c(b, 0),
    ]
    return Cat.apply(*parts, dim=d)


# ----------------------------------------------------------------------------- norms


def _safe_root(s, p):
    """s ** (1/p) with a zero gradient where s == 0 (the subgradient PyTorch uses), instead
    of the inf * 0 = nan of the plain power."""
    zero = s == 0
    if not bool(zero._data.any()):
        return s.sqrt() if p == 2 else s ** (1.0 / p)
    safe = s.masked_fill(zero, 1.0)
    root = safe.sqrt() if p == 2 else safe ** (1.0 / p)
    return root.masked_fill(zero, 0.0)


def vector_norm(
    x: Tensor,
    ord: float = 2,
    dim: Dims = None,
    keepdim: bool = False,
    *,
    dtype: DTypeLike | None = None,
) -> Tensor:
    """``torch.linalg.vector_norm``: ord 2 (default), 1, inf, -inf, 0 or any real p."""
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"vector_norm: expected a floating-point input, got {x.dtype}")
    if isinstance(dim, int):
        dim = (dim,)
    dims = normalize_dims(dim, x.ndim, "vector_norm") if x.ndim else None
    if dims is not None and len(dims) == 0:
        dims = None
    reduced = math.prod(x.shape[d] for d in dims) if dims is not None else x.numel()
    if x.numel() == 0 and reduced > 0:  # an empty result (another dim is 0)
        return x.sum(dims, keepdim)
    if reduced == 0 and ord in (math.inf, -math.inf):
        raise ValueError(
            f"vector_norm: the {ord} norm over an empty dimension is undefined "
            f"(input shape {tuple(x.shape)})"
        )
    a = x.abs()
    if ord == math.inf:
        return a.amax(dims, keepdim)
    if ord == -math.inf:
        return a.amin(dims, keepdim)
    if ord == 0:  # a count: zero gradient, but part of the graph as in PyTorch
        from .special import Rounding

        flat = Rounding.apply(x, "sign", 0) * 0.0
        return ((x != 0).to(x.dtype) + flat).sum(dims, keepdim)
    if ord == 1:
        return a.sum(dims, keepdim)
    if ord == 2:
        return _safe_root((x * x).sum(dims, keepdim), 2)
    p = float(ord)
    zero = a == 0
    if p < 1 and bool(zero._data.any()):
        # |x|^p has an infinite slope at 0 (p < 1): PyTorch's subgradient there is 0. A zero
        # adds 0 to the sum (p > 0) or makes it inf, so the norm 0 (p < 0), as a constant.
        powed = (a.masked_fill(zero, 1.0) ** p).masked_fill(zero, 0.0 if p > 0 else math.inf)
        return _safe_root(powed.sum(dims, keepdim), p)
    return _safe_root((a**p).sum(dims, keepdim), p)


def norm(
    x: Tensor,
    p: float | str | None = "fro",
    dim: Dims = None,
    keepdim: bool = False,
    dtype: DTypeLike | None = None,
) -> Tensor:
    """``torch.norm``: a number p (None: 2) is ``vector_norm(x, p, dim)``; 'fro' over at most
    two dims is the 2-norm of the selected elements; 'nuc' is the nuclear norm of the
    matrices in the two dims ``dim`` (None: a 2-D input), via :func:`matrix_norm`."""
    if not isinstance(p, str):
        return vector_norm(x, 2 if p is None else p, dim, keepdim, dtype=dtype)
    if p == "fro" and (dim is None or isinstance(dim, int) or len(dim) <= 2):
        return vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if p not in ("fro", "nuc"):
        raise ValueError(f"norm: p={p!r} is not supported (a number, 'fro' or 'nuc')")
    dims = tuple(range(x.ndim)) if dim is None else (dim,) if isinstance(dim, int) else dim
    return matrix_norm(x, p, dims, keepdim, dtype=dtype)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """Pairwise p-norm distances: (B?, P, M) and (B?, R, M) -> (B?, P, R)."""
    del compute_mode  # always the direct difference (exact; no matmul shortcut)
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(
            f"cdist: expected (.., P, M) and (.., R, M) with one M, got "
            f"{tuple(x1.shape)} and {tuple(x2.shape)}"
        )
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (.., P, R, M)
    return vector_norm(diff, p, -1)


# ----------------------------------------------------------------------------- SVD


def _svd_arrays(a, name, full_matrices=False):
    """LAPACK's SVD of the last two dims of a raw array, after checking it."""
    if a.ndim < 2:
        raise ShapeError(
            f"{name}: the input must have at least 2 dimensions, got shape {tuple(a.shape)}"
        )
    if a.dtype not in (np.float32, np.float64):
        raise DTypeError(
            f"{name}: expected a float32 or float64 input, got {a.dtype} "
            f"(shape {tuple(a.shape)}); LAPACK has no {a.dtype} SVD"
        )
    xp = get_array_module(a)
    if a.size and not bool(xp.isfinite(a).all()):
        raise ValueError(
            f"{name}: the input of shape {tuple(a.shape)} contains non-finite "
            "values, so the SVD does not converge"
        )
    return xp.linalg.svd(a, full_matrices=full_matrices)


def _any_nonzero(g: Tensor | None) -> bool:
    return g is not None and bool(_xp(g).any(g._data))


def _svd_backward(gu, gs, gvh, u, s, vh):
    """The gradient of A = U diag(S) Vh (reduced, real; PyTorch's formula). With gU or gVh it
    needs distinct singular values (and nonzero ones when A is not square), as PyTorch's."""
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    # gradients the engine filled with zeros (outputs that were not used) count as absent:
    # they add nothing, and the formula's 1/S factors would turn them into 0/0 for S = 0
    has_u, has_v = _any_nonzero(gu), _any_nonzero(gvh)
    if not has_u and not has_v:  # only S used: dA = U diag(gS) Vh
        return u @ (gs.unsqueeze(-1) * vh)
    eye = type(s)(_xp(s).eye(k, dtype=s.dtype))
    s2 = s * s
    e = s2.unsqueeze(-2) - s2.unsqueeze(-1) + eye  # E_ij = S_j^2 - S_i^2, 1 on the diagonal
    if has_u:
        uhgu = u.mT @ gu
        uhgu = uhgu - uhgu.mT  # skew(U^T gU)
    if has_v:
        vhgv = vh @ gvh.mT
        vhgv = vhgv - vhgv.mT  # skew(V^T gV)
    if has_u and has_v:
        ga = (uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) / e
    elif has_u:
        ga = (uhgu / e) * s.unsqueeze(-2)
    else:
        ga = s.unsqueeze(-1) * (vhgv / e)
    ga = ga + gs.unsqueeze(-1) * eye  # + diag(gS)
    if m > k and has_u:  # the part of gU outside span(U): (I - U U^T) gU S^-1
        ga = u @ ga
        gu_sinv = gu / s.unsqueeze(-2)
        ga = ga + gu_sinv - u @ (u.mT @ gu_sinv)
        return ga @ vh
    if n > k and has_v:  # the part of gVh outside span(V): S^-1 gVh (I - V V^T)
        ga = ga @ vh
        sinv_gvh = gvh / s.unsqueeze(-1)
        ga = ga + sinv_gvh - (sinv_gvh @ vh.mT) @ vh
        return u @ ga
    return u @ ga @ vh


class Svd(Function):
    """``A = U diag(S) Vh`` over the last two dims: U (.., m, k), S (.., k) descending,
    Vh (.., k, n), k = min(m, n) (``full_matrices``: U (.., m, m), Vh (.., n, n); as in
    PyTorch, only their first k columns / rows carry a gradient)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, full_matrices: bool = False) -> Array:
        u, s, vh = _svd_arrays(a, "linalg.svd", full_matrices)
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx: Ctx, gu: Tensor, gs: Tensor, gvh: Tensor) -> Grads:
        u, s, vh = ctx.saved_tensors
        k = s.shape[-1]
        if u.shape[-1] != k:
            u, gu = u.narrow(-1, 0, k), gu.narrow(-1, 0, k)
        if vh.shape[-2] != k:
            vh, gvh = vh.narrow(-2, 0, k), gvh.narrow(-2, 0, k)
        return _svd_backward(gu, gs, gvh, u, s, vh)


class SvdVals(Function):
    """The singular values S (.., k) alone. dA = U diag(gS) Vh."""

    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        u, s, vh = _svd_arrays(a, "linalg.svdvals")
        ctx.save_for_backward(a, u, vh)
        return s

    @staticmethod
    def backward(ctx: Ctx, gs: Tensor) -> Grads:
        a, u, vh = ctx.saved_tensors
        if is_grad_enabled():  # create_graph: U and Vh as differentiable functions of A
            u, _, vh = Svd.apply(a)
        return u @ (gs.unsqueeze(-1) * vh)


def svd(a: Tensor, full_matrices: bool = True) -> Tensor:
    """``torch.linalg.svd``: (U, S, Vh) with ``A = U diag(S) Vh``."""
    return Svd.apply(a, full_matrices=full_matrices)


def svdvals(a: Tensor) -> Tensor:
    """``torch.linalg.svdvals``: the singular values, descending."""
    return SvdVals.apply(a)


# ----------------------------------------------------------------------------- matrix norms

MATRIX_ORDS = ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)


def matrix_norm(
    a: Tensor,
    ord: str | float = "fro",
    dim: Sequence[int] = (-2, -1),
    keepdim: bool = False,
    *,
    dtype: DTypeLike | None = None,
) -> Tensor:
    """``torch.linalg.matrix_norm`` over the two dims ``dim``: 'fro', 'nuc' (sum of the
    singular values), 2 / -2 (largest / smallest singular value), 1 / -1 (max / min column
    abs-sum), inf / -inf (max / min row abs-sum). Other dims are batch dims."""
    name = "linalg.matrix_norm"
    if a.ndim < 2:
        raise ShapeError(
            f"{name}: the input must have at least 2 dimensions, got shape {tuple(a.shape)}"
        )
    if not isinstance(dim, tuple | list) or len(dim) != 2:
        raise ValueError(f"{name}: dim must be a 2-tuple, got {dim!r}")
    if ord not in MATRIX_ORDS or isinstance(ord, bool):
        raise ValueError(
            f"{name}: ord={ord!r} is not supported (supported: 'fro', 'nuc', 2, "
            "-2, 1, -1, inf, -inf)"
        )
    d0, d1 = (normalize_dims(d, a.ndim, name)[0] for d in dim)
    if d0 == d1:
        raise ValueError(f"{name}: the two dims must be different, got {tuple(dim)}")
    if dtype is not None:
        a = a.to(dtype)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got {a.dtype}")
    if ord == "fro":
        return vector_norm(a, 2, (d0, d1), keepdim)
    empty = a.shape[d0] == 0 or a.shape[d1] == 0
    if ord in (1, -1, math.inf, -math.inf):
        # abs-sum over rows (1: per column) or columns (inf: per row), then max / min
        sum_dim, ext_dim = (d0, d1) if abs(ord) == 1 else (d1, d0)
        if a.shape[ext_dim] == 0:  # as PyTorch: 0 for a max over nothing, min undefined
            if ord < 0:
                raise ValueError(
                    f"{name}: ord={ord} of a matrix with no "
                    f"{'columns' if abs(ord) == 1 else 'rows'} is undefined "
                    f"(shape {tuple(a.shape)}, dims ({d0}, {d1}))"
                )
            out = a.sum((d0, d1), keepdim=True) * 0.0
        else:
            sums = a.abs().sum(sum_dim, keepdim=True)
            out = sums.amax(ext_dim, keepdim=True) if ord > 0 else sums.amin(ext_dim, keepdim=True)
        return out if keepdim else out.squeeze((d0, d1))
    if empty and ord == -2:
        raise ValueError(
            f"{name}: ord=-2 of an empty matrix is undefined (shape "
            f"{tuple(a.shape)}, dims ({d0}, {d1}))"
        )
    rest = [i for i in range(a.ndim) if i not in (d0, d1)]
    s = svdvals(a.permute(*rest, d0, d1))  # (*batch, k)
    if ord == "nuc" or empty:
        out = s.sum(-1)
    else:
        out = s.amax(-1) if ord == 2 else s.amin(-1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out
