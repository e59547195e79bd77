"""More of ``torch.nn.functional``, each composed from differentiable primitives.

group_norm, instance_norm, pixel_shuffle, pixel_unshuffle, interpolate, dropout1d/2d, conv1d,
conv_transpose2d, adaptive_max_pool2d, max_unpool2d. None of them has a hand-written
backward (``max_unpool2d`` is the scatter ``ops.indexing.ScatterAdd``, whose backward is a
gather): the engine differentiates the composition, so double backward comes free.
``nn.functional`` re-exports them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, overload

import numpy as np

from ..backend import get_array_module
from ..factories import _random
from ..kernels.reference import conv_output_size
from ..ops.conv import conv2d
from ..ops.conv_transpose import (
    ConvTranspose2d,
    conv_transpose2d_composed,
    transpose_output_size,
)
from ..ops.indexing import ScatterAdd
from ..tensor import Tensor, data_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import IntOrTuple

__all__ = [
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


def _pair(v: IntOrTuple, name: str) -> tuple[int, int]:
    out = tuple(v) if isinstance(v, tuple | list) else (v, v)
    if len(out) != 2:
        raise ValueError(f"{name}: expected an int or a pair, got {v!r}")
    return out


@overload
def _channel_view(t: Tensor, ndim: int) -> Tensor: ...
@overload
def _channel_view(t: None, ndim: int) -> None: ...


def _channel_view(t: Tensor | None, ndim: int) -> Tensor | None:
    """(C,) -> (1, C, 1, ...) for an ``ndim``-d input."""
    return None if t is None else t.reshape((1, -1) + (1,) * (ndim - 2))


# ----------------------------------------------------------------------------- normalisation
def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each group of C / num_groups channels of each sample (biased variance),
    then scale and shift per channel. input (N, C, *)."""
    if input.ndim < 2:
        raise ValueError(
            f"group_norm: expected an input of at least 2 dims (N, C, ...), got "
            f"shape {tuple(input.shape)}"
        )
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(
            f"group_norm: num_channels {c} must be divisible by num_groups {num_groups}"
        )
    x = input.reshape(n, num_groups, (c // num_groups) * math.prod(input.shape[2:]))
    mean = x.mean(2, keepdim=True)
    var = x.var(2, unbiased=False, keepdim=True)
    out = ((x - mean) * (var + eps).rsqrt()).reshape(input.shape)
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each (sample, channel) plane over its spatial dims. With running buffers and
    ``use_input_stats``, they move towards the batch average of the per-instance mean and
    unbiased variance (as PyTorch); without ``use_input_stats`` they are used instead."""
    if input.ndim < 3:
        raise ValueError(
            f"instance_norm: expected (N, C, *spatial), got shape {tuple(input.shape)}"
        )
    dims = tuple(range(2, input.ndim))
    if use_input_stats:
        mean = input.mean(dims, keepdim=True)
        var = input.var(dims, unbiased=False, keepdim=True)
        if running_mean is not None or running_var is not None:
            count = math.prod(input.shape[2:])
            with _no_grad():
                m = mean.detach().reshape(input.shape[:2]).mean(0)
                v = var.detach().reshape(input.shape[:2]).mean(0) * (count / max(count - 1, 1))
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(m * momentum)
                if running_var is not None:
                    running_var.mul_(1 - momentum).add_(v * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "instance_norm: use_input_stats=False needs running_mean and running_var"
            )
        mean = _channel_view(running_mean, input.ndim)
        var = _channel_view(running_var, input.ndim)
    out = (input - mean) * (var + eps).rsqrt()
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


def _no_grad():
    from ..autograd import no_grad

    return no_grad()


# ----------------------------------------------------------------------------- resampling
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = int(upscale_factor)
    *lead, c, h, w = input.shape
    if r <= 0 or c % (r * r):
        raise ValueError(
            f"pixel_shuffle: channels {c} must be divisible by upscale_factor^2 = {r * r}"
        )
    x = input.reshape(math.prod(lead), c // (r * r), r, r, h, w)  # (B, C, r, r, H, W)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (B, C, H, r, W, r)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of :func:`pixel_shuffle`."""
    r = int(downscale_factor)
    *lead, c, h, w = input.shape
    if r <= 0 or h % r or w % r:
        raise ValueError(
            f"pixel_unshuffle: height {h} and width {w} must be divisible by downscale_factor {r}"
        )
    x = input.reshape(math.prod(lead), c, h // r, r, w // r, r)  # (B, C, H, r, W, r)
    x = x.permute(0, 1, 3, 5, 2, 4)  # (B, C, r, r, H, W)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def _out_sizes(in_sizes, size, scale_factor, name):
    k = len(in_sizes)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{name}: give exactly one of size and scale_factor")
    if size is not None:
        out = tuple(size) if isinstance(size, tuple | list) else (size,) * k
        if len(out) != k:
            raise ValueError(f"{name}: size {size!r} does not match the {k} spatial dims")
        return tuple(int(s) for s in out), None
    sf = tuple(scale_factor) if isinstance(scale_factor, tuple | list) else (scale_factor,) * k
    if len(sf) != k:
        raise ValueError(
            f"{name}: scale_factor {scale_factor!r} does not match the {k} spatial dims"
        )
    return tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, sf)), sf


def _source_scale(n_in, n_out, sf, align_corners):
    """PyTorch's source-coordinate scale for one axis."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    if sf is not None:
        return 1.0 / sf
    return n_in / n_out


def _nearest_source(n_in, n_out, sf, exact, shortcuts):
    """The input index each output index copies, as PyTorch's CPU kernels compute it: nearest
    floor(dst * scale), nearest-exact floor((dst + 0.5) * scale), clamped, in float32 (exact
    for float32 inputs; PyTorch's float64 kernels differ from this in rare ties). Its 2-d
    ``nearest`` kernel (``shortcuts``) copies same-size axes and halves indices on axes
    exactly twice as long, whatever the scale factor; its 1-d and 3-d kernels do not."""
    dst = np.arange(n_out, dtype=np.int64)
    if n_out == 0 or (shortcuts and n_out == n_in):
        return dst
    if shortcuts and n_out == 2 * n_in:
        return dst >> 1
    scale = (
        np.float32(1.0 / sf) if sf is not None and sf > 0 else np.float32(n_in) / np.float32(n_out)
    )
    if exact:  # (dst + 0.5) is a double in PyTorch; floorf rounds the product to float
        src = np.floor(((dst + 0.5) * np.float64(scale)).astype(np.float32))
    else:
        src = np.floor(dst.astype(np.float32) * scale)
    return np.minimum(src.astype(np.int64), n_in - 1)


_MODES = {
    "nearest": (3, 4, 5),
    "nearest-exact": (3, 4, 5),
    "linear": (3,),
    "bilinear": (4,),
    "trilinear": (5,),
}


def interpolate(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W): ``nearest`` and
    ``nearest-exact`` (any of the three), ``linear`` (3-d), ``bilinear`` (4-d), ``trilinear``
    (5-d), with PyTorch's coordinate rules (``align_corners``, ``scale_factor``,
    ``recompute_scale_factor``). Each spatial axis is resampled in turn (the linear modes are
    separable), by indexing, so the gradient is the matching scatter-add: the exact adjoint of
    the forward. (PyTorch's 1-d and 3-d ``nearest`` backward is not, where an axis keeps its
    size or doubles it under a scale_factor that says otherwise: its backward takes the 2-d
    kernel's shortcuts, its forward does not.)"""
    if mode not in _MODES:
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not supported (supported: {', '.join(_MODES)})"
        )
    if input.ndim not in _MODES[mode]:
        want = " or ".join(f"{d}-d" for d in _MODES[mode])
        raise ValueError(
            f"interpolate: mode {mode!r} expects a {want} input (N, C, spatial), "
            f"got shape {tuple(input.shape)}"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    linear = mode in ("linear", "bilinear", "trilinear")
    if not linear and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    spatial = tuple(input.shape[2:])
    out_sizes, sf = _out_sizes(spatial, size, scale_factor, "interpolate")
    if min(out_sizes + spatial) <= 0:
        raise ValueError(
            f"interpolate: input and output sizes should be greater than 0, got "
            f"input {spatial} (shape {tuple(input.shape)}) and output {out_sizes}"
        )
    if recompute_scale_factor:
        sf = None
    x = input
    for axis, (n_in, n_out) in enumerate(zip(spatial, out_sizes)):
        dim = 2 + axis
        axis_sf = None if sf is None else sf[axis]
        index = [slice(None)] * x.ndim
        if not linear:
            index[dim] = _nearest_source(
                n_in, n_out, axis_sf, mode == "nearest-exact", mode == "nearest" and input.ndim == 4
            )
            x = x[tuple(index)]
            continue
        if n_out == n_in:  # PyTorch's linear kernels copy a same-size axis, whatever the scale
            continue
        scale = _source_scale(n_in, n_out, axis_sf, align_corners)
        dst = np.arange(n_out, dtype=np.float64)
        src = dst * scale if align_corners else np.maximum((dst + 0.5) * scale - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = (src - i0).astype(np.dtype(input.dtype))
        shape = [1] * x.ndim
        shape[dim] = n_out
        lam_t = Tensor(get_array_module(data_of(x)).asarray(lam.reshape(shape)))
        index[dim] = i0
        lo = x[tuple(index)]
        index[dim] = i1
        hi = x[tuple(index)]
        x = lo + (hi - lo) * lam_t  # (1 - l) lo + l hi
    return x


# ----------------------------------------------------------------------------- dropout
def _feature_dropout(input, p, training, inplace, name, feature_dims):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in feature_dims:
        raise ValueError(
            f"{name}: expected a {' or '.join(map(str, feature_dims))}-d input, "
            f"got shape {tuple(input.shape)}"
        )
    if not training or p == 0.0:
        return input
    batched = input.ndim == feature_dims[-1]
    lead = input.shape[:2] if batched else input.shape[:1]  # (N, C) or (C,)
    mask_shape = tuple(lead) + (1,) * (input.ndim - len(lead))
    if p == 1.0:
        data = data_of(input)
        mask = get_array_module(data).zeros(mask_shape, dtype=data.dtype)
    else:
        keep = _random("uniform", mask_shape, np.float64, input.device) < (1.0 - p)
        mask = (keep / (1.0 - p)).astype(data_of(input).dtype)
    out = input * Tensor(mask)
    return input.copy_(out) if inplace else out


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) with probability ``p``; scale the
    rest by 1 / (1 - p)."""
    return _feature_dropout(input, p, training, inplace, "dropout2d", (3, 4))


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L)."""
    return _feature_dropout(input, p, training, inplace, "dropout1d", (2, 3))


# ----------------------------------------------------------------------------- convolution
def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """(N, C_in, L) or (C_in, L) with weight (C_out, C_in / groups, K): conv2d on a height-1
    image."""
    if weight.ndim != 3:
        raise ValueError(
            f"conv1d: expected a 3-d weight (C_out, C_in/groups, K), got shape "
            f"{tuple(weight.shape)}"
        )
    if input.ndim not in (2, 3):
        raise ValueError(
            f"conv1d: expected a 2-d (C, L) or 3-d (N, C, L) input, got shape {tuple(input.shape)}"
        )
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    one = lambda v: v[0] if isinstance(v, tuple | list) else v  # noqa: E731
    pad_arg = padding if isinstance(padding, str) else (0, one(padding))
    y = conv2d(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, one(stride)),
        pad_arg,
        (1, one(dilation)),
        groups,
    ).squeeze(2)
    return y.squeeze(0) if unbatched else y


def _transpose_maps_back(
    hw: Sequence[int],
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    op: tuple[int, int],
    d: tuple[int, int],
) -> bool:
    """conv2d (stride s, padding p, dilation d) of the transposed output has size ``hw``."""
    for i in range(2):
        out = transpose_output_size(hw[i], k[i], s[i], p[i], op[i], d[i])
        if conv_output_size(out, k[i], s[i], p[i], d[i]) != hw[i]:
            return False
    return True


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
) -> Tensor:
    """The adjoint of conv2d: weight (C_in, C_out / groups, kH, kW); output size
    ``(H - 1) s - 2 p + d (k - 1) + output_padding + 1``. One fused op on conv2d's kernels
    with the roles swapped (col2im of ``W^T x``; :mod:`minigrad.ops.conv_transpose`); its
    composed twin spreads the input ``stride`` apart with zeros, pads by ``d (k - 1) - p`` and
    convolves with the flipped, transposed kernel."""
    if input.ndim not in (3, 4) or weight.ndim != 4:
        raise ValueError(
            f"conv_transpose2d: expected a 4-d input (N, C, H, W) or 3-d, and a "
            f"4-d weight; got {tuple(input.shape)} and {tuple(weight.shape)}"
        )
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    s, p, op, d = (
        _pair(v, "conv_transpose2d") for v in (stride, padding, output_padding, dilation)
    )
    c_in, c_out_g, kh, kw = weight.shape
    if x.shape[1] != c_in:
        raise ValueError(
            f"conv_transpose2d: input has {x.shape[1]} channels, the weight "
            f"{tuple(weight.shape)} expects {c_in}"
        )
    if groups <= 0 or c_in % groups:
        raise ValueError(
            f"conv_transpose2d: in_channels {c_in} must be divisible by groups {groups}"
        )
    if min(s) <= 0 or min(d) <= 0 or min(p) < 0 or min(op) < 0:
        raise ValueError(
            f"conv_transpose2d: stride {s} and dilation {d} must be positive, "
            f"padding {p} and output_padding {op} non-negative"
        )
    if op[0] >= max(s[0], d[0]) or op[1] >= max(s[1], d[1]):
        raise ValueError(
            f"conv_transpose2d: output_padding {op} must be smaller than either "
            f"stride {s} or dilation {d}"
        )
    if bias is not None and tuple(bias.shape) != (c_out_g * groups,):
        raise ValueError(
            f"conv_transpose2d: bias of shape {tuple(bias.shape)} does not match "
            f"the {c_out_g * groups} output channels"
        )
    # One fused node on conv2d's kernels (ops/conv_transpose.py) where conv2d's geometry maps
    # the output back onto the input exactly and the input is finite; otherwise the composed
    # twin (zero-spread + pad + flipped-kernel conv2d). The twin is taken when
    #   * output_padding >= stride (allowed when it is < dilation): conv2d of the output
    #     would not come back to H x W;
    #   * x holds inf/NaN: the kernels multiply the padded zeros of conv2d's im2col by it in the
    #     weight gradient (0 * inf = NaN in taps PyTorch leaves finite).
    if _transpose_maps_back(x.shape[2:], (kh, kw), s, p, op, d) and bool(
        np.isfinite(data_of(x)).all()
    ):
        out = ConvTranspose2d.apply(x, weight, bias, s, p, op, groups, d)
    else:
        out = conv_transpose2d_composed(x, weight, bias, s, p, op, groups, d)
    return out.squeeze(0) if unbatched else out


# ----------------------------------------------------------------------------- pooling
def _adaptive_bounds(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """PyTorch's windows: [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


def adaptive_max_pool2d(
    input: Tensor, output_size: IntOrTuple, return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """Max over PyTorch's adaptive windows; the gradient goes to each window's first maximum
    (the returned flat ``h * W + w`` index), as PyTorch's."""
    if input.ndim not in (3, 4):
        raise ValueError(
            f"adaptive_max_pool2d: expected a 3-d or 4-d input, got shape {tuple(input.shape)}"
        )
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    n, c, h, w = x.shape
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = oh if oh is not None else h, ow if ow is not None else w
    if oh <= 0 or ow <= 0 or h == 0 or w == 0:
        raise ValueError(
            f"adaptive_max_pool2d: output size ({oh}, {ow}) and input size "
            f"({h}, {w}) must be positive"
        )
    data = data_of(x)
    xp = get_array_module(data)
    idx = xp.empty((n, c, oh, ow), dtype=np.int64)
    for i, (h0, h1) in enumerate(_adaptive_bounds(h, oh)):
        for j, (w0, w1) in enumerate(_adaptive_bounds(w, ow)):
            win = data[:, :, h0:h1, w0:w1].reshape(n, c, -1)  # (N, C, window)
            # first NaN wins, else the first maximum (np.argmax on a NaN-aware key)
            key = xp.where(xp.isnan(win), xp.inf, win)
            k = xp.argmax(key, axis=2)
            idx[:, :, i, j] = (h0 + k // (w1 - w0)) * w + (w0 + k % (w1 - w0))
    out = x.reshape(n, c, h * w).gather(2, Tensor(idx.reshape(n, c, oh * ow)))
    out = out.reshape(n, c, oh, ow)
    if unbatched:
        out, idx = out.squeeze(0), idx[0]
    return (out, Tensor(idx)) if return_indices else out


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Put each value of ``input`` at its flat ``h * W + w`` index (from
    ``max_pool2d(..., return_indices=True)``) in a zero map; backward gathers."""
    if input.ndim not in (3, 4) or tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"max_unpool2d: expected a 3-d or 4-d input and indices of the same "
            f"shape, got {tuple(input.shape)} and {tuple(indices.shape)}"
        )
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    ind = indices.unsqueeze(0) if unbatched else indices
    k = _pair(kernel_size, "max_unpool2d")
    s = _pair(stride if stride is not None else kernel_size, "max_unpool2d")
    p = _pair(padding, "max_unpool2d")
    n, c, h, w = x.shape
    if output_size is None:
        oh, ow = (h - 1) * s[0] - 2 * p[0] + k[0], (w - 1) * s[1] - 2 * p[1] + k[1]
    else:
        oh, ow = tuple(output_size)[-2:]
    index = data_of(ind).reshape(n, c, h * w)
    if index.size and (int(index.min()) < 0 or int(index.max()) >= oh * ow):
        raise ValueError(
            f"max_unpool2d: found an invalid max index (min {int(index.min())}, "
            f"max {int(index.max())}) for an output of size ({oh}, {ow})"
        )
    # the adjoint of a gather: scatter each value to its index (backward gathers it back)
    flat = ScatterAdd.apply(x.reshape(n, c, h * w), index, 2, (n, c, oh * ow))
    out = flat.reshape(n, c, oh, ow)
    return out.squeeze(0) if unbatched else out
