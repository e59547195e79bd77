"""Reverse-mode automatic differentiation: the core below Tensor.

- ``function.py``: the Function contract (``Node``, ``Context``, ``Function.apply``,
  ``AccumulateGrad``) and ``unbroadcast``. Read it first.
- ``engine.py``: the iterative backward loop, ``backward`` and ``grad``.
- ``grad_mode.py``: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``detect_anomaly``.
- ``errors.py``: ``ShapeError``, ``DTypeError``, ``OpIndexError`` and their message helpers.
- ``hooks.py``: the observer hooks (tracer, profiler, forward mode) tools install.

This package imports nothing from the rest of minigrad except ``backend``. The learner
tools that PyTorch also keeps under ``torch.autograd`` (``explain``, ``gradcheck``,
``gradgradcheck``, ``GradcheckError``, ``functional``) live above the core and are added to
this namespace by ``minigrad/__init__.py``.
"""

from .engine import backward, collect_graph, grad, run_backward
from .errors import (
    DTypeError,
    OpError,
    OpIndexError,
    ShapeError,
    broadcast_error_message,
    describe_inputs,
)
from .function import (
    AccumulateGrad,
    Context,
    Function,
    Node,
    broadcast_axes,
    next_sequence_number,
    tensor_class,
    unbroadcast,
)
from .fused import FusedFunction
from .grad_mode import (
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .hooks import get_tracer, set_tracer, tracing

__all__ = [
    "AccumulateGrad",
    "Context",
    "DTypeError",
    "Function",
    "FusedFunction",
    "Node",
    "OpError",
    "OpIndexError",
    "ShapeError",
    "backward",
    "broadcast_axes",
    "broadcast_error_message",
    "collect_graph",
    "describe_inputs",
    "detect_anomaly",
    "enable_grad",
    "get_tracer",
    "grad",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "next_sequence_number",
    "no_grad",
    "run_backward",
    "set_grad_enabled",
    "set_tracer",
    "tensor_class",
    "tracing",
    "unbroadcast",
]
