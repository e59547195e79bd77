"""Loss functions (re-exported by ``minigrad.nn.functional``), PyTorch's semantics.

Class-index losses pick log-probabilities with ``gather`` after moving the class dim last, so
(N, C) and (N, C, d1, ...) inputs share one path. ``_cross_entropy_indices`` is the seam for
a fused softmax-cross-entropy kernel (registry name ``cross_entropy``): it maps 2-D logits and
1-D targets to per-sample losses, and nothing else depends on how it computes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import get_array_module
from ..ops.loss import cross_entropy_composed, softmax_cross_entropy
from ..ops.loss import picked_weights as _picked_weights
from ..ops.special import Log1p
from ..tensor import Tensor, data_of

if TYPE_CHECKING:
    from .._typing import Array, Shape

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{op}: {reduction!r} is not a valid value for reduction "
            f"(expected one of {_REDUCTIONS})"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def _as_tensor(x: Tensor | Array) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _classes_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C); (N, C) unchanged."""
    if input.ndim == 2:
        return input
    c = input.shape[1]
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    return input.permute(*perm).reshape(-1, c)


def _check_targets(
    op: str, input: Tensor, target: Tensor, ignore_index: int
) -> tuple[Array, Array]:
    """Validate class-index targets (shape, dtype, range). Returns (valid mask, safe indices)
    as raw arrays, flattened."""
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: expected class indices of an integer dtype (or probabilities "
            f"of the input's shape), got target dtype {target.dtype}"
        )
    expected = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{op}: expected target of shape {expected} for input of shape "
            f"{tuple(input.shape)}, got target of shape {tuple(target.shape)}"
        )
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    t = data_of(target).reshape(-1)
    xp = get_array_module(t)
    valid = t != ignore_index
    if t.size:
        bad = xp.logical_and(valid, xp.logical_or(t < 0, t >= c))
        if bool(bad.any()):
            value = int(t[bad][0])  # explicit check: also catches bad targets on the GPU
            raise IndexError(
                f"{op}: target {value} is out of bounds for {c} classes "
                f"(valid range [0, {c - 1}], ignore_index={ignore_index})"
            )
    return valid, xp.where(valid, t, 0)


def _cross_entropy_indices(
    logits2d: Tensor,
    target: Any,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy of (M, C) logits against (M,) class indices (already validated).

    Returns ``(losses, weights)``, both (M,): ``losses[i]`` is the weighted loss of sample i
    (0 where ignored) and ``weights[i] = w[target[i]]`` (0 where ignored), the denominator of
    the weighted mean. The losses come from the fused ``SoftmaxCrossEntropy`` op
    (minigrad/ops/loss.py, kernel ``cross_entropy``); :func:`_cross_entropy_indices_composed`
    is its composed twin and returns the same pair.
    """
    t = data_of(target) if isinstance(target, Tensor) else target
    xp = get_array_module(t)
    valid = t != ignore_index
    w = _picked_weights(valid, xp.where(valid, t, 0), weight, logits2d.dtype)
    return softmax_cross_entropy(logits2d, t, weight, ignore_index, label_smoothing), w


def _cross_entropy_indices_composed(
    logits2d: Tensor,
    target: Any,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """:func:`_cross_entropy_indices` through the composed twin of the fused op
    (``minigrad.ops.loss.cross_entropy_composed``: log_softmax + gather); the same pair."""
    t = data_of(target) if isinstance(target, Tensor) else target
    xp = get_array_module(t)
    valid = t != ignore_index
    w = _picked_weights(valid, xp.where(valid, t, 0), weight, logits2d.dtype)
    return cross_entropy_composed(logits2d, t, weight, ignore_index, label_smoothing), w


def _weighted_reduce(losses: Tensor, w: Tensor, reduction: str, out_shape: Shape) -> Tensor:
    if reduction == "none":
        return losses.reshape(out_shape)
    if reduction == "sum":
        return losses.sum()
    with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as PyTorch
        return losses.sum() / w.sum()


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """-input[i, target[i]] * w[target[i]]; 'mean' divides by sum of w[target[i]]."""
    _check_reduction(reduction, "nll_loss")
    target = _as_tensor(target)
    if input.ndim == 1:  # unbatched (C,) with a 0-d target
        return nll_loss(
            input.unsqueeze(0), target.reshape(1), weight, ignore_index, reduction
        ).reshape(())
    valid, safe = _check_targets("nll_loss", input, target, ignore_index)
    w = _picked_weights(valid, safe, weight, input.dtype)
    picked = _classes_last(input).gather(1, Tensor(safe.reshape(-1, 1))).reshape(-1)
    return _weighted_reduce(-picked * w, w, reduction, target.shape)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """log_softmax over dim 1 + negative log-likelihood. ``target``: class indices of shape
    (N,) / (N, d1, ...), or class probabilities of the input's shape."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    target = _as_tensor(target)
    if input.ndim == 1:
        out = cross_entropy(
            input.unsqueeze(0),
            target.unsqueeze(0),
            weight,
            ignore_index,
            reduction,
            label_smoothing,
        )
        return out.reshape(()) if reduction == "none" else out
    if target.dtype.kind == "f":
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    _check_targets("cross_entropy", input, target, ignore_index)
    losses, w = _cross_entropy_indices(
        _classes_last(input),
        Tensor(data_of(target).reshape(-1)),
        weight,
        ignore_index,
        label_smoothing,
    )
    return _weighted_reduce(losses, w, reduction, target.shape)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"cross_entropy: probability targets must have the input's shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}"
        )
    c = input.shape[1]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    logp = input.log_softmax(1)
    if weight is not None:
        logp = logp * weight.reshape((1, c) + (1,) * (input.ndim - 2))
    losses = -(logp * target).sum(1)
    return _reduce(losses, reduction)  # 'mean': over N * d1 * ..., weights not normalised


def _check_same_shape(op: str, input: Tensor, target: Tensor) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"{op}: target of shape {tuple(target.shape)} does not match the "
            f"input of shape {tuple(input.shape)}"
        )


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "mse_loss")
    target = _as_tensor(target)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "l1_loss")
    target = _as_tensor(target)
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch does."""
    _check_reduction(reduction, "binary_cross_entropy")
    target = _as_tensor(target)
    _check_same_shape("binary_cross_entropy", input, target)
    x = data_of(input)
    if x.size and bool(((x < 0) | (x > 1)).any()):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    tiny = float(np.exp(-100.0))  # log(tiny) = -100: no inf, no nan gradient at 0 or 1
    log_x = input.clamp(min=tiny).log().clamp(min=-100.0)
    log_1mx = (1.0 - input).clamp(min=tiny).log().clamp(min=-100.0)
    loss = -(target * log_x + (1.0 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _softplus_neg(x: Tensor) -> Tensor:
    """log(1 + exp(-x)) without overflow: max(-x, 0) + log1p(exp(-|x|)). The masks are
    constants (sign taken as +1 at 0), so the derivative at x = 0 is the true -1/2."""
    neg = Tensor((data_of(x) < 0).astype(x.dtype))
    sign = 1.0 - 2.0 * neg
    return -x * neg + Log1p.apply((-(x * sign)).exp())


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """BCE on logits: (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), stable for any x."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _as_tensor(target)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    sp = _softplus_neg(input)
    if pos_weight is not None:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * sp
    else:
        loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
