"""Attention layers: ``MultiheadAttention`` and ``TransformerEncoderLayer`` (PyTorch's names,
parameter names, defaults and mask conventions).

Mask conventions differ between the two APIs, as in PyTorch: for
``scaled_dot_product_attention`` a boolean ``True`` means "may attend"; for
``MultiheadAttention`` (``attn_mask``, ``key_padding_mask``) a boolean ``True`` means "masked
out". Float masks are added to the scores in both.
"""

from __future__ import annotations

import numpy as np

from ..autograd import DTypeError, ShapeError
from ..backend import get_array_module
from ..factories import empty
from ..ops.attention import attention_probs, scaled_dot_product_attention
from ..tensor import Tensor, data_of
from . import functional as F
from . import init
from .layers.activation import Dropout
from .layers.linear import Linear
from .layers.normalization import LayerNorm
from .module import Module
from .parameter import Parameter

__all__ = ["MultiheadAttention", "TransformerEncoderLayer"]


def _float_mask(mask, name, dtype):
    """MultiheadAttention's masks as additive float arrays: bool True -> -inf, else 0."""
    if mask is None:
        return None
    raw = data_of(mask) if isinstance(mask, Tensor) else np.asarray(mask)
    xp = get_array_module(raw)
    if raw.dtype == np.bool_:
        return xp.where(raw, -xp.inf, 0.0).astype(dtype)
    if raw.dtype.kind != "f":
        raise DTypeError(
            f"MultiheadAttention: only bool and floating types of {name} are "
            f"supported, got {raw.dtype}"
        )
    return raw.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights)``.

    query (L, N, E) (``batch_first``: (N, L, E); unbatched: (L, E)), key/value (S, N, E);
    ``attn_mask`` (L, S) or (N*num_heads, L, S); ``key_padding_mask`` (N, S); bool True means
    "do not attend". ``weights``: (N, L, S) averaged over heads, or (N, num_heads, L, S);
    None when ``need_weights=False`` (then the fused attention kernel runs).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim must be divisible by num_heads, "
                f"got embed_dim={embed_dim} and num_heads={num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        dev = device or "cpu"
        self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, dtype=dtype, device=dev))
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, dtype=dtype, device=dev))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        E, nh, hd = self.embed_dim, self.num_heads, self.head_dim
        batched = query.ndim == 3
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != query.ndim or t.ndim not in (2, 3):
                raise ShapeError(
                    f"MultiheadAttention: query, key and value must all be 3-D "
                    f"(batched) or 2-D (unbatched); got {name} of shape "
                    f"{tuple(t.shape)} with query {tuple(query.shape)}"
                )
            if t.shape[-1] != E:
                raise ShapeError(
                    f"MultiheadAttention: was expecting embedding dimension of "
                    f"{E}, but got {name} of shape {tuple(t.shape)}"
                )
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _unsqueeze0(key_padding_mask)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N = query.shape[0], query.shape[1]
        S = key.shape[0]
        if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
            raise ShapeError(
                f"MultiheadAttention: key shape {tuple(key.shape)} does not match "
                f"value shape {tuple(value.shape)} or batch size {N}"
            )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "MultiheadAttention: need attn_mask if specifying the is_causal "
                "hint (it is only a hint; the mask is what gets applied)"
            )
        mask = self._merged_mask(attn_mask, key_padding_mask, L, S, N, query.dtype)

        w, b = self.in_proj_weight, self.in_proj_bias
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = b[:E], b[E : 2 * E], b[2 * E :]
        q = F.linear(query, w[:E], bq)  # (L, N, E)
        k = F.linear(key, w[E : 2 * E], bk)  # (S, N, E)
        v = F.linear(value, w[2 * E :], bv)  # (S, N, E)
        q, k, v = (t.reshape(t.shape[0], N, nh, hd).permute(1, 2, 0, 3) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            probs = attention_probs(q, k, None if mask is None else Tensor(mask))  # (N,nh,L,S)
            if p > 0.0:
                probs = F.dropout(probs, p, True)
            out = probs.matmul(v)  # (N, nh, L, hd)
            weights = probs.mean(1) if average_attn_weights else probs
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = out.permute(2, 0, 1, 3).reshape(L, N, E)  # (L, N, E)
        out = self.out_proj(out)
        if not batched:
            return out[:, 0], (None if weights is None else weights[0])
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _merged_mask(self, attn_mask, key_padding_mask, L, S, N, dtype):
        """attn_mask and key_padding_mask as one additive mask broadcastable to (N, nh, L, S)."""
        nh = self.num_heads
        mask = _float_mask(attn_mask, "attn_mask", dtype)
        if mask is not None:
            if mask.ndim == 2:
                if mask.shape != (L, S):
                    raise ShapeError(
                        f"MultiheadAttention: the shape of the 2D attn_mask is "
                        f"{tuple(mask.shape)}, but should be {(L, S)}"
                    )
            elif mask.ndim == 3:
                if mask.shape != (N * nh, L, S):
                    raise ShapeError(
                        f"MultiheadAttention: the shape of the 3D attn_mask is "
                        f"{tuple(mask.shape)}, but should be {(N * nh, L, S)}"
                    )
                mask = mask.reshape(N, nh, L, S)
            else:
                raise ShapeError(
                    f"MultiheadAttention: attn_mask's dimension {mask.ndim} is "
                    "not supported (expected 2-D (L, S) or 3-D (N*num_heads, L, S))"
                )
        kpm = _float_mask(key_padding_mask, "key_padding_mask", dtype)
        if kpm is not None:
            if kpm.shape != (N, S):
                raise ShapeError(
                    f"MultiheadAttention: expecting key_padding_mask shape of "
                    f"{(N, S)}, but got {tuple(kpm.shape)}"
                )
            kpm = kpm.reshape(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        return mask

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


def _unsqueeze0(mask):
    if isinstance(mask, Tensor):
        return mask.unsqueeze(0)
    return np.asarray(mask)[None]


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block, as ``torch.nn.TransformerEncoderLayer``.

    post-norm (default): x = norm1(x + sa(x)); x = norm2(x + ff(x));
    ``norm_first=True``:  x = x + sa(norm1(x)); x = x + ff(norm2(x)).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = feedforward_activation(activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


def feedforward_activation(activation):
    """The Transformer layers' ``activation``: "relu", "gelu" or a callable."""
    if isinstance(activation, str):
        if activation not in ("relu", "gelu"):
            raise RuntimeError(f"activation should be relu/gelu, not {activation}")
        return F.relu if activation == "relu" else F.gelu
    return activation


def causal_mask(size: int, dtype=np.float32):
    """(size, size) additive mask: 0 on and below the diagonal, -inf above
    (``torch.nn.Transformer.generate_square_subsequent_mask``)."""
    return Tensor(np.triu(np.full((size, size), -np.inf, dtype=dtype), 1))
