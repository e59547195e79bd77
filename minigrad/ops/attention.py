"""Scaled dot-product attention: a fused op around the ``attention`` kernel.

``softmax(scale * Q K^T + mask) V`` with PyTorch's semantics:

* ``query`` (..., L, E), ``key`` (..., S, E), ``value`` (..., S, Ev); batch (and head) dims
  broadcast against each other;
* ``attn_mask``: boolean (True = may attend) or float (added to the scores), broadcastable to
  (..., L, S); a query whose keys are all masked gets a zero output row and zero gradients;
* NaN and inf propagate as in PyTorch's math backend (the op's definition): masks are ADDED
  (NaN + -inf is NaN), a NaN or +inf score makes its whole row NaN, and 0 * NaN in P @ V or
  in the gradients stays NaN, so a NaN in a masked or causally hidden key still reaches the
  output; no variant skips masked work when an input is non-finite;
* ``is_causal``: query i sees key j only when j <= i (top-left aligned when L != S); together
  with ``attn_mask`` it is an error, as documented for PyTorch;
* ``scale`` defaults to 1/sqrt(E); ``dropout_p`` > 0 runs the composed path (seeded dropout
  on the probabilities, minigrad's generator).

The kernel sees contiguous (B, L, E) arrays with every batch dim flattened into B and an
additive float mask of shape (L, S) or (B, L, S); broadcasting stays here (kernel contract).
Variants: "numpy" (kernels/reference.py, materialises the (B, L, S) scores), "tiled"
(kernels/tiled.py, online softmax over key blocks, keeps only the logsumexp per query), and
"cpp" once it exists. :class:`Attention` is a ``FusedFunction``: with ``create_graph=True``
the base class recomputes through its ``composed`` twin, :func:`sdpa_composed` (primitives),
and differentiates that, so double backward works.
The mask gets no gradient (it is treated as a constant).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import DTypeError, FusedFunction, ShapeError
from ..backend import get_array_module
from ..kernels import dispatch
from .dropout import dropout

if TYPE_CHECKING:
    from .._typing import Array, Ctx, DTypeLike, Grads
    from ..tensor import Tensor


class Attention(FusedFunction):
    """(q, k, v) -> softmax(scale q k^T + mask) v, through the ``attention`` kernel."""

    @staticmethod
    def forward(
        ctx: Ctx, q: Array, k: Array, v: Array, mask: Array | None, scale: float, is_causal: bool
    ) -> Array:
        xp = get_array_module(q)
        batch = _batch_shape(q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        qb, kb, vb = (_flat(xp, a, batch) for a in (q, k, v))  # (B, L, E), (B, S, E), (B, S, Ev)
        mb = _flat_mask(xp, mask, batch, q.shape[-2], k.shape[-2])
        out, lse = dispatch("attention", q).attention_forward(qb, kb, vb, mb, scale, is_causal)
        out = out.reshape(batch + out.shape[-2:])  # (..., L, Ev)
        ctx.meta = (batch, scale, is_causal)
        ctx.save_for_backward(q, k, v, out, lse, mb)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        q, k, v, out, lse, mb = ctx.saved_tensors
        batch, scale, is_causal = ctx.meta
        xp = get_array_module(q._data)
        qb, kb, vb, ob, gb = (_flat(xp, t._data, batch) for t in (q, k, v, out, grad))
        m = None if mb is None else mb._data
        dq, dk, dv = dispatch("attention", qb).attention_backward(
            gb, qb, kb, vb, ob, lse._data, m, scale, is_causal
        )
        # (B, ...) -> (batch..., ...); the engine sums broadcast batch dims back to each input
        return (
            dq.reshape(batch + dq.shape[1:]),
            dk.reshape(batch + dk.shape[1:]),
            dv.reshape(batch + dv.shape[1:]),
            None,
            None,
            None,
        )

    @staticmethod
    def composed(
        q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float, is_causal: bool
    ) -> Tensor:
        return sdpa_composed(q, k, v, mask, scale, is_causal)


def _batch_shape(q_shape, k_shape, v_shape, mask_shape):
    """Broadcast batch shape of q, k, v, checking every attention shape rule."""
    for name, s in (("query", q_shape), ("key", k_shape), ("value", v_shape)):
        if len(s) < 2:
            raise ShapeError(
                f"scaled_dot_product_attention: {name} must have at least 2 dims "
                f"(..., length, features), got shape {tuple(s)}"
            )
    shapes = f"query {tuple(q_shape)}, key {tuple(k_shape)}, value {tuple(v_shape)}"
    if q_shape[-1] != k_shape[-1]:
        raise ShapeError(
            f"scaled_dot_product_attention: query and key must have the same "
            f"last dim (E), got {shapes}"
        )
    if k_shape[-2] != v_shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: key and value must have the same "
            f"length (S), got {shapes}"
        )
    try:
        batch = np.broadcast_shapes(q_shape[:-2], k_shape[:-2], v_shape[:-2])
    except ValueError:
        raise ShapeError(
            f"scaled_dot_product_attention: batch dims of {shapes} are not broadcastable"
        ) from None
    if mask_shape is not None:
        L, S = q_shape[-2], k_shape[-2]
        target = tuple(batch) + (L, S)
        try:
            ok = np.broadcast_shapes(tuple(mask_shape), target) == target
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(
                f"scaled_dot_product_attention: attn_mask of shape "
                f"{tuple(mask_shape)} cannot be broadcast to the attention shape "
                f"{target} (batch..., L, S) for {shapes}"
            )
    return tuple(batch)


def _flat(xp, a, batch):
    """Broadcast ``a`` (..., n, d) to batch + (n, d) and flatten to a contiguous (B, n, d)."""
    a = xp.broadcast_to(a, batch + a.shape[-2:])
    return xp.ascontiguousarray(a.reshape((-1,) + a.shape[-2:]))


def _flat_mask(xp, mask, batch, L, S):
    """Additive mask as (L, S) when it is the same for every batch entry, else (B, L, S)."""
    if mask is None:
        return None
    if all(d == 1 for d in mask.shape[:-2]):  # no batch variation: one (L, S) mask
        mask = mask.reshape(mask.shape[-2:]) if mask.ndim > 2 else mask
        return xp.ascontiguousarray(xp.broadcast_to(mask, (L, S)))
    return _flat(xp, xp.broadcast_to(mask, batch + (L, S)), batch)


def additive_mask(mask: Array, dtype: DTypeLike, xp: Any = np) -> Array:
    """A bool mask (True = attend) as 0 / -inf in ``dtype``; a float mask cast to ``dtype``."""
    if mask.dtype == np.bool_:
        return xp.where(mask, 0.0, -xp.inf).astype(dtype)
    if mask.dtype.kind != "f":
        raise DTypeError(
            f"scaled_dot_product_attention: attn_mask must be bool or float, got {mask.dtype}"
        )
    return mask.astype(dtype, copy=False)


# ----------------------------------------------------------------------------- composed twin
def attention_probs(
    query: Tensor,
    key: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    is_causal: bool = False,
) -> Tensor:
    """softmax(scale q k^T + mask) from primitives, (..., L, S); all-masked rows are 0."""
    from ..tensor import Tensor, where

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    s = query.matmul(key.transpose(-2, -1)) * scale  # (..., L, S)
    xp = get_array_module(s._data)
    L, S = s.shape[-2:]
    if is_causal:
        s = s.masked_fill(xp.triu(xp.ones((L, S), dtype=bool), 1), -math.inf)
    if mask is not None:
        if not isinstance(mask, Tensor):
            mask = Tensor(additive_mask(mask, s.dtype, xp))
        elif mask.dtype == np.bool_:
            mask = Tensor(additive_mask(mask._data, s.dtype, xp))
        s = s + mask
    m = s.detach().amax(-1, keepdim=True)  # softmax is shift-invariant: no gradient needed
    m = Tensor(xp.where(xp.isfinite(m._data), m._data, 0.0))
    e = (s - m).exp()
    denom = e.sum(-1, keepdim=True)
    return e / where(denom > 0, denom, 1.0)


def sdpa_composed(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> Tensor:
    """The op-by-op twin of :class:`Attention` (materialises the probabilities)."""
    p = attention_probs(query, key, mask, scale, is_causal)
    if dropout_p > 0.0:
        p = dropout(p, dropout_p)
    return p.matmul(value)


# ----------------------------------------------------------------------------- functional API
def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """As ``torch.nn.functional.scaled_dot_product_attention`` (see the module docstring)."""
    from ..tensor import Tensor

    if attn_mask is not None and is_causal:
        raise ValueError(
            "scaled_dot_product_attention: pass either attn_mask or "
            "is_causal=True, not both (PyTorch's documented rule)"
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}"
        )
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"scaled_dot_product_attention: {name} must be a Tensor, got {type(t).__name__}"
            )
        if t.dtype.kind != "f" or t.dtype != query.dtype:
            raise DTypeError(
                f"scaled_dot_product_attention: query, key and value must share "
                f"one float dtype, got {query.dtype}, {key.dtype}, {value.dtype}"
            )
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    mask = None
    if attn_mask is not None:
        raw = attn_mask._data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        _batch_shape(query.shape, key.shape, value.shape, raw.shape)  # clear shape errors
        mask = additive_mask(raw, query.dtype, get_array_module(query._data))
    if dropout_p > 0.0:
        _batch_shape(query.shape, key.shape, value.shape, None)
        return sdpa_composed(
            query, key, value, None if mask is None else Tensor(mask), scale, is_causal, dropout_p
        )
    return Attention.apply(query, key, value, mask, scale, bool(is_causal))
