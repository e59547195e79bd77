"""Reference kernels of the optimizer steps: the readable update rules on raw arrays.

The "numpy"/"cupy" variant of the ``sgd`` and ``adam`` kernels (re-exported by
:mod:`minigrad.kernels.reference`; C++ twin: csrc/cpu/optim.cpp, CUDA twin: csrc/cuda/optim.cu).
Each function updates a whole parameter list IN PLACE (``params[i]``, the moment buffers) with
plain NumPy/CuPy array operations and nothing else: no Tensors, no autograd, no version
counters (the optimizer classes in ``minigrad/optim/sgd.py`` / ``adam.py`` handle those, and
call these through ``minigrad.kernels.dispatch``).

The arithmetic follows PyTorch's single-tensor implementations operation by operation, so a
float64 run agrees with ``torch.optim`` to rounding and a float32 run to a few ulps.
"""

from __future__ import annotations

from collections.abc import Sequence

from minigrad.backend import get_array_module


def sgd_step(
    params: Sequence,
    grads: Sequence,
    momentum_buffers: list,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    """One SGD step for every ``params[i]`` with gradient ``grads[i]``.

    ``momentum_buffers[i]`` is an array, or None before the first step with momentum; a new
    buffer is created and stored back into the list.  ``grads`` are never modified.
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            grad = grad + weight_decay * param  # L2 penalty: d(wd/2 |p|^2)/dp = wd * p
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                # first step: the buffer starts at the gradient (no damping).  xp.array, not
                # grad.copy(): for a 0-d NumPy param `grad` may be a NumPy scalar (arithmetic on
                # 0-d arrays returns scalars), and `buf *= momentum` on a scalar would rebind
                # the name instead of updating the stored buffer.
                buf = xp.array(grad, dtype=param.dtype)
                momentum_buffers[i] = buf
            else:
                buf *= momentum
                buf += (1 - dampening) * grad
            grad = grad + momentum * buf if nesterov else buf
        param -= lr * grad


def adam_step(
    params: Sequence,
    grads: Sequence,
    exp_avgs: Sequence,
    exp_avg_sqs: Sequence,
    max_exp_avg_sqs: Sequence | None,
    step,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled: bool,
) -> None:
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) step.

    ``step`` is the step number of this update (1 on the first update), one int for every
    parameter or a sequence with one int per parameter (parameters skipped on some steps
    because their gradient was None have their own counts).  ``max_exp_avg_sqs`` is only read
    when ``amsgrad``.  Moments and parameters are updated in place.
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step_i = step if isinstance(step, int) else int(step[i])

        if weight_decay != 0:
            if decoupled:
                param *= 1 - lr * weight_decay  # AdamW: shrink the weights directly
            else:
                grad = grad + weight_decay * param  # Adam: L2 penalty through the gradient
        # m <- lerp(m, g, 1 - beta1), computed the way torch.lerp does for either weight size
        weight = 1 - beta1
        if abs(weight) < 0.5:
            exp_avg += weight * (grad - exp_avg)
        else:
            exp_avg[...] = grad - (grad - exp_avg) * (1 - weight)
        # v <- beta2 v + (1 - beta2) g^2
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad

        bias_correction1 = 1 - beta1**step_i
        bias_correction2 = 1 - beta2**step_i
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if amsgrad:
            max_sq = max_exp_avg_sqs[i]
            xp.maximum(max_sq, exp_avg_sq, out=max_sq)
            denom = xp.sqrt(max_sq) / bias_correction2_sqrt + eps
        else:
            denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        param += (-step_size * exp_avg) / denom
