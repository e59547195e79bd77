"""The in-place writes of Tensor: ``copy_``, ``zero_``, ``fill_``, ``uniform_``, ``normal_``.

:class:`InplaceMethods` is a base class of :class:`minigrad.tensor.Tensor`. Every in-place op
goes through ``_inplace`` (write into the storage that views share, bump the version counter
that saved-tensor checks read, take over the result's history) or, for constants, writes the
array directly and cuts the history. ``__setitem__`` stays in ``tensor.py``. This module never
imports ``minigrad.tensor`` (that would be an import cycle): where it needs the Tensor class it
asks ``tensor_class()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .autograd import hooks as _hook_state
from .autograd.function import tensor_class
from .autograd.grad_mode import is_grad_enabled
from .backend import get_array_module
from .tensor_random import random_array

if TYPE_CHECKING:  # annotations only (the import graph test skips these blocks)
    from ._typing import Array, Scalar
    from .tensor import Tensor


class InplaceMethods:
    """In-place writes: the checks, the version counter and the history they cut or take."""

    __slots__ = ()

    def _check_inplace(self: Tensor, opname: str) -> None:
        if is_grad_enabled() and self._requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(
                    f"{opname}: a leaf tensor that requires grad (shape {self.shape}) is used "
                    "in an in-place operation; wrap it in minigrad.no_grad() or use the "
                    "out-of-place op"
                )
            if self._is_view:
                raise RuntimeError(
                    f"{opname}: in-place operation on a view of a tensor that requires grad "
                    f"(shape {self.shape}) is not supported; use the out-of-place op"
                )

    def _inplace(self: Tensor, result: Tensor, opname: str) -> Tensor:
        """Write ``result`` into this tensor's storage (views see it), bump the version
        counter, and take over the result's history."""
        self._check_inplace(opname)
        xp = get_array_module(self._data)
        if result._data.dtype != self._data.dtype and not np.can_cast(
            result._data.dtype, self._data.dtype, casting="same_kind"
        ):
            raise TypeError(
                f"{opname}: result dtype {result.dtype} can't be cast to the tensor's dtype "
                f"{self.dtype} in place"
            )
        if result.shape != self.shape:
            raise ValueError(
                f"{opname}: in-place result has shape {result.shape} but the tensor has shape "
                f"{self.shape} (an in-place op cannot broadcast its target)"
            )
        xp.copyto(self._data, result._data, casting="same_kind")
        self._version[0] += 1
        if _hook_state.forward_ad_inplace is not None:  # forward mode: take result's tangent
            _hook_state.forward_ad_inplace(self, result)
        if is_grad_enabled():
            if result._requires_grad:
                self.grad_fn = result.grad_fn
                self._output_nr = result._output_nr
                self._requires_grad = True
            elif self._requires_grad:  # overwritten by constants: the old history is cut
                self.grad_fn = None
                self._requires_grad = False
        return self

    def copy_(self: Tensor, src: Tensor) -> Tensor:
        Tensor = tensor_class()
        src = src if isinstance(src, Tensor) else Tensor(src)
        return self._inplace(src.to(self.device).to(self.dtype).expand(self.shape), "copy_")

    def zero_(self: Tensor) -> Tensor:
        return self.fill_(0)

    def fill_(self: Tensor, value: Scalar) -> Tensor:
        self._check_inplace("fill_")
        self._data[...] = value
        self._version[0] += 1
        if is_grad_enabled() and self.grad_fn is not None:
            # the filled values are constants: cut the history
            self.grad_fn = None
            self._requires_grad = False
        return self

    def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
        return self._fill_random(random_array("uniform", self.shape, self.dtype, self.device, a, b))

    def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
        return self._fill_random(
            random_array("normal", self.shape, self.dtype, self.device, mean, std)
        )

    def _fill_random(self: Tensor, arr: Array) -> Tensor:
        self._check_inplace("random fill")
        self._data[...] = arr
        self._version[0] += 1
        if is_grad_enabled() and self.grad_fn is not None:  # constants now: cut the history
            self.grad_fn = None
            self._requires_grad = False
        return self
