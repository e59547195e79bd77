"""The tensor ops beyond the core set, as functions with PyTorch's names, signatures and
dtype rules. ``minigrad.<name>`` and the ``Tensor.<name>`` methods both call these.

Where the math lives:
- ``ops/special.py``: elementwise primitives (log1p, expm1, sinh, ..., erfinv, lgamma,
  digamma, polygamma) and the zero-gradient rounding ops;
- ``ops/scan.py``: cumsum and cumprod (primitives), prod, sort, argsort, topk, kthvalue,
  median;
- ``ops/index_extra.py``: flip, roll, repeat, tile, repeat_interleave, index_select,
  take_along_dim, scatter (primitive), scatter_add, index_add, Tensor.unfold, F.unfold/F.fold
  (the im2col pair of primitives);
- ``ops/linalg_extra.py``: einsum, tril, triu, diag, diagonal, trace, outer, kron, cross,
  norm / vector_norm, cdist (all composed).
This module adds the small compositions (log2, lerp, addcmul, nan_to_num, ...) and the
non-differentiable predicates (logical ops, any/all, isinf, ...).

dtype rules, as PyTorch: the float functions of an integer or bool tensor compute in float32;
floor/ceil/round/trunc/sign keep an integer dtype; cumsum/cumprod/prod of integers and bools
give int64; predicates give bool.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import autograd as _ag
from ..backend import get_array_module
from . import index_extra as _ix
from . import linalg_extra as _la
from . import scan as _scan
from . import special as _sp
from .elementwise import Log
from .index_extra import (
    flip,
    fold,
    index_add,
    index_select,
    repeat,
    repeat_interleave,
    roll,
    scatter,
    scatter_add,
    take_along_dim,
    tile,
    unfold,
    unfold_dim,
)
from .linalg_extra import (
    cdist,
    cross,
    diag,
    diagonal,
    einsum,
    kron,
    norm,
    outer,
    trace,
    tril,
    triu,
    vector_norm,
)
from .scan import argsort, cumprod, cumsum, kthvalue, median, prod, sort, topk

if TYPE_CHECKING:
    from .._typing import Dims, Scalar, TensorOrScalar
    from ..tensor import Tensor

_FLOAT_DEFAULT = np.dtype(np.float32)


def _tensor(x, like=None):
    """``x`` as a Tensor (numbers take ``like``'s dtype and device)."""
    Tensor = _ag.tensor_class()
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool)):
        xp = get_array_module(like._data)
        return Tensor(xp.asarray(x, dtype=like.dtype if like.dtype.kind == "f" else None))
    return Tensor(np.asarray(x))


def _floating(x):
    """Integer and bool tensors compute the float functions in the default dtype."""
    x = _tensor(x)
    return x if x.dtype.kind in "fc" else x.to(_FLOAT_DEFAULT)


def _float_pair(a, b):
    """Two operands of a float binary function in one float dtype (PyTorch's promotion for
    the common cases: float wins over int; two floats promote; numbers take the tensor's)."""
    Tensor = _ag.tensor_class()
    if not isinstance(a, Tensor):
        b = _floating(b)
        return _tensor(float(a), b), b
    if not isinstance(b, Tensor):
        a = _floating(a)
        return a, _tensor(float(b), a)
    fa, fb = a.dtype.kind == "f", b.dtype.kind == "f"
    if fa and fb:
        dt = np.promote_types(a.dtype, b.dtype)
    else:
        dt = a.dtype if fa else b.dtype if fb else _FLOAT_DEFAULT
    return a.to(dt), b.to(dt)


# ----------------------------------------------------------------------------- elementwise


def log1p(x: Tensor) -> Tensor:
    return _sp.Log1p.apply(_floating(x))


def expm1(x: Tensor) -> Tensor:
    return _sp.Expm1.apply(_floating(x))


def log2(x: Tensor) -> Tensor:
    return Log.apply(_floating(x)) * (1.0 / math.log(2.0))


def log10(x: Tensor) -> Tensor:
    return Log.apply(_floating(x)) * (1.0 / math.log(10.0))


def sinh(x: Tensor) -> Tensor:
    return _sp.Sinh.apply(_floating(x))


def cosh(x: Tensor) -> Tensor:
    return _sp.Cosh.apply(_floating(x))


def asin(x: Tensor) -> Tensor:
    return _sp.Asin.apply(_floating(x))


def acos(x: Tensor) -> Tensor:
    return _sp.Acos.apply(_floating(x))


def atan(x: Tensor) -> Tensor:
    return _sp.Atan.apply(_floating(x))


def atan2(input: Tensor, other: TensorOrScalar) -> Tensor:
    return _sp.Atan2.apply(*_float_pair(input, other))


def erf(x: Tensor) -> Tensor:
    return _sp.Erf.apply(_floating(x))


def erfinv(x: Tensor) -> Tensor:
    return _sp.Erfinv.apply(_floating(x))


def lgamma(x: Tensor) -> Tensor:
    return _sp.Lgamma.apply(_floating(x))


def digamma(x: Tensor) -> Tensor:
    return _sp.Polygamma.apply(_floating(x), 0)


def polygamma(n: int, input: Tensor) -> Tensor:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative int, got {n!r}")
    return _sp.Polygamma.apply(_floating(input), n)


def _rounding(x, how, decimals=0):
    x = _tensor(x)
    if x.dtype.kind in "biu" and (how != "sign" or x.dtype.kind == "b"):
        if how == "round" and decimals < 0:
            raise TypeError("round: decimals < 0 is not supported for integer tensors")
        return x * 1 if x.dtype.kind != "b" else _tensor(x._data.copy())
    return _sp.Rounding.apply(x, how, decimals)


def floor(x: Tensor) -> Tensor:
    return _rounding(x, "floor")


def ceil(x: Tensor) -> Tensor:
    return _rounding(x, "ceil")


def trunc(x: Tensor) -> Tensor:
    return _rounding(x, "trunc")


def round(x: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even (as PyTorch and NumPy); ``decimals`` digits after the point."""
    return _rounding(x, "round", decimals)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 (0 for NaN, as PyTorch); a zero gradient."""
    return _rounding(x, "sign")


def lerp(input: Tensor, end: TensorOrScalar, weight: Tensor) -> Tensor:
    """``input + weight * (end - input)``; ``weight`` a number or a tensor."""
    return input + weight * (end - input)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Scalar = 1) -> Tensor:
    prod_ = tensor1 * tensor2
    return input + (prod_ * value if value != 1 else prod_)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Scalar = 1) -> Tensor:
    Tensor = _ag.tensor_class()
    if (
        isinstance(tensor1, Tensor)
        and isinstance(tensor2, Tensor)
        and (tensor1.dtype.kind in "biu" and tensor2.dtype.kind in "biu")
    ):
        raise TypeError(
            "addcdiv: integer division with addcdiv is not supported; use a "
            f"float tensor (got {tensor1.dtype} and {tensor2.dtype})"
        )
    q = tensor1 / tensor2
    return input + (q * value if value != 1 else q)


def nan_to_num(
    x: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` (default: the dtype's largest
    value) and ``neginf`` (its lowest); those positions get a zero gradient."""
    x = _tensor(x)
    if x.dtype.kind != "f":
        return x * 1
    xp = get_array_module(x._data)
    info = np.finfo(x.dtype)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    d = x._data
    Tensor = _ag.tensor_class()
    out = x.masked_fill(Tensor(xp.isnan(d)), nan)
    out = out.masked_fill(Tensor(xp.isposinf(d)), posinf)
    return out.masked_fill(Tensor(xp.isneginf(d)), neginf)


# ----------------------------------------------------------------------------- predicates


def _pred(fn, *xs):
    Tensor = _ag.tensor_class()
    raws = [x._data if isinstance(x, Tensor) else x for x in xs]
    try:
        xp = get_array_module(next(r for r in raws if hasattr(r, "shape")))
        return Tensor(fn(xp, *raws))
    except ValueError as e:
        shapes = [tuple(getattr(r, "shape", ())) for r in raws]
        raise ValueError(f"{fn.__name__}: shapes {shapes} do not broadcast ({e})") from None


def logical_and(input: Tensor, other: TensorOrScalar) -> Tensor:
    def logical_and(xp, a, b):
        return xp.logical_and(a, b)

    return _pred(logical_and, input, other)


def logical_or(input: Tensor, other: TensorOrScalar) -> Tensor:
    def logical_or(xp, a, b):
        return xp.logical_or(a, b)

    return _pred(logical_or, input, other)


def logical_xor(input: Tensor, other: TensorOrScalar) -> Tensor:
    def logical_xor(xp, a, b):
        return xp.logical_xor(a, b)

    return _pred(logical_xor, input, other)


def logical_not(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.logical_not(a), input)


def isinf(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.isinf(a), input)


def isposinf(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.isposinf(a) if a.dtype.kind == "f" else a != a, input)


def isneginf(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.isneginf(a) if a.dtype.kind == "f" else a != a, input)


def isfinite(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.isfinite(a), input)


def isnan(input: Tensor) -> Tensor:
    return _pred(lambda xp, a: xp.isnan(a), input)


def _any_all(x, dim, keepdim, how):
    Tensor = _ag.tensor_class()
    x = _tensor(x)
    xp = get_array_module(x._data)
    from .reduce import normalize_dims

    dims = normalize_dims(dim, x.ndim, how) if x.ndim else None
    out = getattr(xp, how)(x._data, axis=dims, keepdims=keepdim)
    return Tensor(xp.asarray(out, dtype=bool))


def any(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """True where any element along ``dim`` (every dim for None) is non-zero."""
    return _any_all(input, dim, keepdim, "any")


def all(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """True where every element along ``dim`` (every dim for None) is non-zero."""
    return _any_all(input, dim, keepdim, "all")


# Forward-mode rules of the primitives defined in the ops/*_extra modules (minigrad.func).
JVP: dict[Any, Any] = {**_sp.JVP, **_scan.JVP, **_ix.JVP}
LINEAR = set(_scan.LINEAR) | set(_ix.LINEAR)

__all__ = [
    "log1p",
    "expm1",
    "log2",
    "log10",
    "sinh",
    "cosh",
    "asin",
    "acos",
    "atan",
    "atan2",
    "erf",
    "erfinv",
    "lgamma",
    "digamma",
    "polygamma",
    "floor",
    "ceil",
    "round",
    "trunc",
    "sign",
    "lerp",
    "addcmul",
    "addcdiv",
    "nan_to_num",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "isinf",
    "isposinf",
    "isneginf",
    "isfinite",
    "isnan",
    "any",
    "all",
    "cumsum",
    "cumprod",
    "prod",
    "sort",
    "argsort",
    "topk",
    "kthvalue",
    "median",
    "flip",
    "roll",
    "repeat_interleave",
    "tile",
    "index_select",
    "scatter",
    "scatter_add",
    "index_add",
    "take_along_dim",
    "einsum",
    "tril",
    "triu",
    "diag",
    "diagonal",
    "trace",
    "outer",
    "kron",
    "cross",
    "norm",
    "cdist",
]

# used by Tensor methods and nn.functional, not exported at the top level
_INTERNAL = (repeat, unfold, fold, unfold_dim, vector_norm, _la)
