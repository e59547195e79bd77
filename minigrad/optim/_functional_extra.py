"""Update rules of RMSprop, Adagrad, Adamax, NAdam and RAdam on raw arrays: the readable reference.

Like ``_functional.py``: each function updates a list of parameters IN PLACE together with
their state buffers, with plain NumPy/CuPy array operations (no Tensors, no autograd, no
version counters; the classes in ``adaptive.py`` handle those).  ``grads`` are never modified.

The arithmetic follows PyTorch's single-tensor implementations (``torch/optim/<name>.py``,
``_single_tensor_<name>``) operation by operation, so a float64 run agrees with ``torch.optim``
to rounding and a float32 run to a few ulps.  Step counts are the number of this update (1 on
the first), one int per parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minigrad.backend import get_array_module


def _lerp_(start, end, weight: float) -> None:
    """``start <- start + weight * (end - start)`` in place, the way ``torch.lerp`` rounds."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def _neg_if(grad, maximize: bool):
    return -grad if maximize else grad


def rmsprop_step(
    params: Sequence,
    grads: Sequence,
    square_avgs: Sequence,
    grad_avgs: Sequence,
    momentum_buffers: Sequence,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """RMSprop.  ``grad_avgs`` is read only when ``centered``, ``momentum_buffers`` only when
    ``momentum > 0``::

        g <- g + wd p
        v <- alpha v + (1 - alpha) g^2
        avg <- sqrt(v - gbar^2) + eps  with gbar <- lerp(gbar, g, 1 - alpha)   (centered)
        avg <- sqrt(v) + eps                                                   (otherwise)
        b <- momentum b + g / avg;  p <- p - lr b                              (momentum > 0)
        p <- p - lr g / avg                                                    (otherwise)
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = _neg_if(grads[i], maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg = square_avgs[i]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if centered:
            grad_avg = grad_avgs[i]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg = avg + eps
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= momentum
            buf += grad / avg
            param -= lr * buf
        else:
            param += -lr * grad / avg


def adagrad_step(
    params: Sequence,
    grads: Sequence,
    state_sums: Sequence,
    steps: Sequence[int],
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """Adagrad: ``clr = lr / (1 + (t - 1) lr_decay)``, ``s <- s + g^2``,
    ``p <- p - clr g / (sqrt(s) + eps)`` (``g`` with the L2 term ``wd p`` added)."""
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = _neg_if(grads[i], maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * param
        clr = lr / (1 + (steps[i] - 1) * lr_decay)
        state_sum = state_sums[i]
        state_sum += grad * grad
        std = xp.sqrt(state_sum) + eps
        param += -clr * grad / std


def adamax_step(
    params: Sequence,
    grads: Sequence,
    exp_avgs: Sequence,
    exp_infs: Sequence,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adamax (Adam with the infinity norm)::

    m <- lerp(m, g, 1 - beta1)
    u <- max(beta2 u, |g| + eps)
    p <- p - lr / (1 - beta1^t) * m / u
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = _neg_if(grads[i], maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * param
        exp_avg, exp_inf = exp_avgs[i], exp_infs[i]
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(grad) + eps, out=exp_inf)
        clr = lr / (1 - beta1 ** steps[i])
        param += -clr * exp_avg / exp_inf


def nadam_mu_product(mu_product: float, mu: float) -> float:
    """``mu_product * mu`` rounded like PyTorch, which keeps the product in a float32 0-d
    tensor (its default scalar dtype) whatever the parameters' dtype."""
    return float(np.float32(mu_product) * np.float32(mu))


def nadam_step(
    params: Sequence,
    grads: Sequence,
    exp_avgs: Sequence,
    exp_avg_sqs: Sequence,
    mu_products: list,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """NAdam (Adam with Nesterov momentum and a momentum schedule ``mu_t``)::

        mu_t = beta1 (1 - 0.5 * 0.96^(t psi))        (psi = momentum_decay)
        prod <- prod * mu_t                            (mu_products[i], written back)
        m <- lerp(m, g, 1 - beta1);  v <- beta2 v + (1 - beta2) g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr (1 - mu_t) / (1 - prod) g / d - lr mu_{t+1} / (1 - prod mu_{t+1}) m / d

    Weight decay is an L2 term in ``g``, or ``p <- p (1 - lr wd)`` when decoupled (NAdamW).
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = _neg_if(grads[i], maximize)
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step = steps[i]
        bias_correction2 = 1 - beta2**step
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product = nadam_mu_product(mu_products[i], mu)
        mu_products[i] = mu_product
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        denom = xp.sqrt(exp_avg_sq / bias_correction2) + eps
        mu_product_next = mu_product * mu_next
        param += (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
        param += ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom


def radam_step(
    params: Sequence,
    grads: Sequence,
    exp_avgs: Sequence,
    exp_avg_sqs: Sequence,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """RAdam (Adam whose adaptive term is switched on once the variance is tractable)::

        m <- lerp(m, g, 1 - beta1);  v <- beta2 v + (1 - beta2) g^2
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        p <- p - lr m / (1 - beta1^t) * r_t sqrt(1 - beta2^t) / (sqrt(v) + eps)   (rho_t > 5)
        p <- p - lr m / (1 - beta1^t)                                              (otherwise)

    with ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.
    """
    for i, param in enumerate(params):
        xp = get_array_module(param)
        grad = _neg_if(grads[i], maximize)
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step = steps[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        bias_corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = (
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            ) ** 0.5
            adaptive_lr = (bias_correction2**0.5) / (xp.sqrt(exp_avg_sq) + eps)
            param -= bias_corrected_exp_avg * lr * adaptive_lr * rect
        else:
            param -= bias_corrected_exp_avg * lr
