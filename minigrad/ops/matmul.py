"""Batched, broadcasting matrix multiply (inputs of at least 2 dims; Tensor.matmul handles
1-d operands by adding and removing a unit axis, as NumPy and PyTorch do)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..autograd import DTypeError, Function, ShapeError, broadcast_error_message
from ..backend import get_array_module
from ..kernels import blas

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads, Shape
    from ..tensor import Tensor


def _shape_str(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


class MatMul(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        if a.dtype != b.dtype:
            raise DTypeError(
                f"matmul: expected both operands to have the same dtype, got {a.dtype} and "
                f"{b.dtype} (shapes {a.shape} and {b.shape}); cast one with .to(dtype)"
            )
        if a.dtype.kind not in "fiu":
            raise DTypeError(f"matmul: unsupported dtype {a.dtype}")
        if a.shape[-1] != b.shape[-2]:
            raise ShapeError(
                f"matmul: shapes cannot be multiplied ({_shape_str(a.shape)} and "
                f"{_shape_str(b.shape)}): inner dimensions {a.shape[-1]} and {b.shape[-2]} "
                "differ"
            )
        try:
            if a.ndim > 2 or b.ndim > 2:  # batch dims must broadcast
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ShapeError(
                broadcast_error_message("matmul (batch dims)", [a.shape[:-2], b.shape[:-2]])
            ) from None
        ctx.save_for_backward(a, b)
        if type(a) is np.ndarray:  # BLAS single-threaded, large products split (kernels/blas.py)
            return blas.matmul(a, b)
        return get_array_module(a).matmul(a, b)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b = ctx.saved_tensors
        da, db = ctx.needs_input_grad
        # d(a@b)/da = grad @ b^T, d(a@b)/db = a^T @ grad (batch dims summed by the engine)
        ga = grad @ b.mT if da else None
        gb = a.mT @ grad if db else None
        return ga, gb
