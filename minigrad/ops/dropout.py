"""Dropout: zero each element with probability p and scale the rest by 1/(1-p).

Composed from primitives (one multiplication by a constant mask drawn from minigrad's seeded
generator), so it needs no backward of its own. ``nn.functional.dropout`` and the attention
twin (``ops/attention.py``, ``dropout_p > 0``) both call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..tensor import Tensor


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` (minigrad's seeded generator) and scale the
    rest by 1/(1-p); the identity when not training."""
    from ..factories import _random
    from ..tensor import Tensor

    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = input._data * 0
    else:
        keep = _random("uniform", input.shape, np.float64, input.device) < (1.0 - p)
        mask = (keep / (1.0 - p)).astype(input.dtype)
    out = input * Tensor(mask)
    return input.copy_(out) if inplace else out
