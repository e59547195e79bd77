"""minigrad: a small, readable deep-learning engine (NumPy/CuPy tensors, reverse-mode autograd,
C++ and CUDA kernels). Reading order: autograd/function.py, autograd/engine.py,
ops/elementwise.py, ops/conv.py, kernels/."""

import numpy as _np

from . import autograd, data, linalg, nn, optim, profiler, utils
from .autograd import (
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .backend import Device as device
from .backend import cuda_available, get_rng_state, set_rng_state
from .explain import explain as _explain
from .factories import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from .func import functional as _functional
from .functions import (
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    bmm,
    chunk,
    clamp,
    cos,
    div,
    divide,
    exp,
    flatten,
    gather,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    split,
    sqrt,
    squeeze,
    std,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
)
from .gradcheck import GradcheckError as _GradcheckError
from .gradcheck import gradcheck as _gradcheck
from .gradcheck import gradgradcheck as _gradgradcheck
from .kernels import backend_info
from .ops.extra import *  # noqa: F403 (tensor ops: the names in ops.extra.__all__)
from .ops.extra import __all__ as _extra_all
from .serialization import load, save
from .tensor import Tensor, cat, pad, result_type, stack, tensor, where

# PyTorch keeps these tools under torch.autograd. Here they sit above the core (they use
# Tensor and the ops), so the core never imports them: the public package adds them to the
# autograd namespace (minigrad.autograd.explain, .gradcheck, .gradgradcheck,
# .GradcheckError, .functional).
autograd.explain = _explain
autograd.functional = _functional
autograd.gradcheck = _gradcheck
autograd.gradgradcheck = _gradgradcheck
autograd.GradcheckError = _GradcheckError

float16 = half = _np.dtype(_np.float16)
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int32 = int = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
uint8 = _np.dtype(_np.uint8)
bool = _np.dtype(_np.bool_)

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "tensor",
    "autograd",
    "nn",
    "optim",
    "data",
    "profiler",
    "utils",
    "save",
    "load",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "detect_anomaly",
    "device",
    "cuda_available",
    "backend_info",
    "manual_seed",
    "get_rng_state",
    "set_rng_state",
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "linspace",
    "eye",
    "rand",
    "randn",
    "randint",
    "randperm",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_like",
    "rand_like",
    "randn_like",
    "cat",
    "stack",
    "where",
    "pad",
    "result_type",
    "abs",
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "maximum",
    "minimum",
    "clamp",
    "sum",
    "mean",
    "var",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "logsumexp",
    "softmax",
    "log_softmax",
    "matmul",
    "reshape",
    "permute",
    "transpose",
    "flatten",
    "squeeze",
    "unsqueeze",
    "split",
    "chunk",
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "uint8",
    "bool",
    "half",
    "float",
    "double",
    "int",
    "long",
]
__all__ += _extra_all + ["linalg"]
__all__ += [
    "add",
    "sub",
    "mul",
    "div",
    "divide",
    "pow",
    "neg",
    "std",
    "gather",
    "masked_fill",
    "mm",
    "bmm",
]
