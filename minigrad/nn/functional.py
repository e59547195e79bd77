"""``minigrad.nn.functional``: stateless layers and losses with PyTorch's signatures.

Almost everything is composed from differentiable Tensor ops, so it needs no backward of its
own and double backward comes free (``erf`` and ``log1p`` are primitives of
``ops/special.py``). Losses live in ``_loss_functional.py``; conv and pooling come from
``minigrad/ops`` (imported on first use, so this module imports before those land).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import no_grad
from ..backend import get_array_module
from ..ops.dropout import dropout
from ..ops.special import Erf
from ..tensor import Tensor, data_of, pad, where
from ._loss_functional import (
    _cross_entropy_indices,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Array, DTypeLike, IntOrTuple

__all__ = [
    "linear",
    "relu",
    "bias_relu",
    "leaky_relu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "softmax",
    "log_softmax",
    "dropout",
    "batch_norm",
    "layer_norm",
    "embedding",
    "pad",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "_cross_entropy_indices",
]


# ----------------------------------------------------------------------------- layers
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` with weight (out_features, in_features)."""
    if input.shape[-1:] != weight.shape[-1:]:
        raise ValueError(
            f"linear: input of shape {tuple(input.shape)} has "
            f"{input.shape[-1] if input.ndim else 0} features but weight of shape "
            f"{tuple(weight.shape)} expects {weight.shape[-1]}"
        )
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else input.relu()


def bias_relu(input: Tensor, bias: Tensor | None) -> Tensor:
    """``relu(input + bias.reshape(1, C, 1, ...))`` for input (N, C, *spatial) and bias (C,):
    the bias-add and ReLU after a conv or linear layer, fused into one pass forward and one
    backward (kernel ``bias_relu``: ``numpy``/``cpp`` on CPU, ``cupy`` on GPU), keeping only
    the output for backward. Same dtype for both (ShapeError/DTypeError otherwise);
    ``bias=None`` gives plain ``relu(input)``."""
    from ..ops.elementwise import bias_relu as _bias_relu

    return _bias_relu(input, bias)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = where(input > 0, input, input * negative_slope)
    return input.copy_(out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "none":
        return input * 0.5 * (1.0 + Erf.apply(input * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (1.0 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    out = input * input.sigmoid()
    return input.copy_(out) if inplace else out


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def _softmax_dim(name: str, ndim: int, dim: int | None) -> int:
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call "
        "to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, dtype: DTypeLike = None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return x.softmax(_softmax_dim("softmax", x.ndim, dim))


def log_softmax(input: Tensor, dim: int | None = None, dtype: DTypeLike = None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return x.log_softmax(_softmax_dim("log_softmax", x.ndim, dim))


def _batch_norm_fusable(input: Tensor, weight: Tensor | None, bias: Tensor | None) -> bool:
    """The fused training-mode op takes float16 (computed in float32), float32 or float64 with
    weight and bias None or (C,) Tensors of the input's dtype; anything else (mixed dtypes)
    takes the composed formula."""
    if input.dtype not in (np.float16, np.float32, np.float64):
        return False
    return all(
        p is None
        or (
            isinstance(p, Tensor) and p.dtype == input.dtype and tuple(p.shape) == (input.shape[1],)
        )
        for p in (weight, bias)
    )


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over every dim but 1 (channels): (N, C) or (N, C, H, W) or (N, C, L).

    Training: batch statistics (biased variance) normalise; the running statistics (when
    given) move by ``momentum`` towards the batch mean and *unbiased* variance, in place.
    Eval: the running statistics normalise.
    """
    if input.ndim < 2 and input.numel() == 0:  # PyTorch returns an empty result here
        return input * 1.0
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected an input of at least 2 dims (N, C, ...), got "
            f"shape {tuple(input.shape)}"
        )
    c = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input "
                f"size {tuple(input.shape)}"
            )
        fused = _batch_norm_fusable(input, weight, bias)
        if fused:  # one kernel each way (ops/norm.py); mean and var come out of it
            from ..ops.norm import batch_norm_train

            out, mean, var = batch_norm_train(input, weight, bias, eps)
        else:
            mean = input.mean(axes)
            var = input.var(axes, unbiased=False)
        with no_grad():
            if running_mean is not None:
                running_mean.copy_(running_mean * (1.0 - momentum) + mean.detach() * momentum)
            if running_var is not None:
                unbiased = var.detach() * (n / (n - 1))
                running_var.copy_(running_var * (1.0 - momentum) + unbiased * momentum)
        if fused:
            return out
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: running_mean and running_var are required when training=False"
            )
        mean, var = running_mean, running_var
    out = (input - mean.reshape(shape)) * (var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims (biased variance)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if tuple(input.shape[input.ndim - k :]) != shape or input.ndim < k:
        raise ValueError(
            f"layer_norm: normalized_shape {list(shape)} does not match the last "
            f"dims of the input of shape {tuple(input.shape)}"
        )
    dims = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(dims, keepdim=True)
    var = input.var(dims, unbiased=False, keepdim=True)
    out = (input - mean) * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; rows at ``padding_idx`` get no
    gradient. With ``max_norm``, each looked-up row whose ``norm_type``-norm exceeds it is
    first rescaled in place to norm ``max_norm`` (PyTorch's ``embedding_renorm_``). With
    ``scale_grad_by_freq`` each row's gradient is divided by how often its index occurs."""
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported")
    idx = data_of(input) if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = weight.shape[0]
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexError(
                f"embedding: index {bad} is out of range for {n} embeddings "
                f"(weight of shape {tuple(weight.shape)})"
            )
    if max_norm is not None:
        _embedding_renorm_(weight, idx, float(max_norm), float(norm_type))
    out = weight[idx]
    if scale_grad_by_freq and weight.requires_grad and idx.size:
        xp = get_array_module(idx)
        freq = xp.bincount(idx.reshape(-1), minlength=n)[idx]
        scale = Tensor(xp.expand_dims(1.0 / freq, -1).astype(out.dtype))
        out = out.detach() + (out - out.detach()) * scale  # same values, gradient / count
    if padding_idx is not None and weight.requires_grad:
        pad_idx = padding_idx % n
        keep = Tensor(get_array_module(idx).expand_dims(idx != pad_idx, -1))
        out = where(keep, out, out.detach())  # same values, no gradient at padding rows
    return out


def _embedding_renorm_(weight: Tensor, idx: Array, max_norm: float, norm_type: float) -> None:
    """Rescale (in place, outside the graph) the rows ``idx`` whose norm exceeds max_norm."""
    xp = get_array_module(idx)
    rows = xp.unique(idx.reshape(-1))
    with no_grad():
        w = weight.detach()
        sel = w[rows]
        norms = sel.abs().pow(norm_type).sum(1).pow(1.0 / norm_type)
        scale = where(norms > max_norm, max_norm / (norms + 1e-7), norms * 0 + 1)
        w[rows] = sel * scale.unsqueeze(1).to(sel.dtype)


# ----------------------------------------------------------------------------- conv / pool
# Implemented in minigrad/ops (fused kernels); imported on first call. As PyTorch, each takes
# an unbatched (C, H, W) input too, and a one-element size tuple (``(2,)``) means both dims.
def _one(v, empty=None):
    """PyTorch's expansion of a size argument: (k,) -> k; () -> ``empty``."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return v[0]
        if len(v) == 0:
            return empty
    return v


def _unbatched(fn, input, *args):
    """fn on a (C, H, W) input as a batch of one, the batch dim dropped again."""
    if not (isinstance(input, Tensor) and input.ndim == 3):
        return fn(input, *args)
    out = fn(input.unsqueeze(0), *args)
    return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    from ..ops.conv import conv2d as _conv2d

    return _unbatched(
        _conv2d, input, weight, bias, _one(stride), _one(padding), _one(dilation), groups
    )


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    from ..ops.pool import max_pool2d as _max_pool2d

    return _unbatched(
        _max_pool2d,
        input,
        _one(kernel_size),
        _one(stride),
        _one(padding),
        _one(dilation),
        ceil_mode,
        return_indices,
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    from ..ops.pool import avg_pool2d as _avg_pool2d

    return _unbatched(
        _avg_pool2d,
        input,
        _one(kernel_size),
        _one(stride),
        _one(padding),
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrTuple) -> Tensor:
    from ..ops.pool import adaptive_avg_pool2d as _adaptive_avg_pool2d

    return _unbatched(_adaptive_avg_pool2d, input, output_size)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(q k^T * scale + mask) v, PyTorch's signature (see minigrad/ops/attention.py)."""
    from ..ops.attention import scaled_dot_product_attention as _sdpa

    return _sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale)


def lstm_cell(
    input: Tensor,
    hx: tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One fused LSTM step (gate order i, f, g, o) -> (h, c); see minigrad/ops/rnn.py."""
    from ..ops.rnn import lstm_cell as _lstm_cell

    return _lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh)


# The functional forms of the newer layers, composed from the primitives above
from ._functional_layers import (  # noqa: E402
    adaptive_max_pool2d,
    conv1d,
    conv_transpose2d,
    dropout1d,
    dropout2d,
    group_norm,
    instance_norm,
    interpolate,
    max_unpool2d,
    pixel_shuffle,
    pixel_unshuffle,
)

__all__ += [
    "group_norm",
    "instance_norm",
    "pixel_shuffle",
    "pixel_unshuffle",
    "interpolate",
    "dropout1d",
    "dropout2d",
    "conv1d",
    "conv_transpose2d",
    "adaptive_max_pool2d",
    "max_unpool2d",
]

from ..ops.index_extra import fold, unfold  # noqa: E402 (im2col / col2im as functions)

__all__ += ["unfold", "fold"]
