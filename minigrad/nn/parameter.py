"""``Parameter``: a Tensor that a Module registers as learnable (``requires_grad`` by default)."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, data_of


class Parameter(Tensor):
    """A leaf Tensor that ``Module.__setattr__`` registers in ``module._parameters``.

    Shares memory with ``data`` (like ``torch.nn.Parameter``). ``Tensor`` uses ``__slots__``,
    so this subclass adds none: a Parameter costs exactly what a Tensor costs.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data_of(data.detach())
        super().__init__(data)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__
