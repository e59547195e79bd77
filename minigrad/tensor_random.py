"""Random arrays from minigrad's seeded generators (``backend.rng``; ``manual_seed`` seeds
them). Used by the random factories (``rand``, ``randn``), ``Tensor.uniform_``/``normal_``
and dropout. Below Tensor: it returns raw arrays and imports only ``backend``."""

from __future__ import annotations

import numpy as np

from . import backend
from .backend import Device


def random_array(kind, shape, dtype, device, a=0.0, b=1.0):
    """Random array from the seeded generator of ``device`` (see ``manual_seed``)."""
    dev = Device(device)
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    gen = backend.rng(dev)
    shape = tuple(shape)
    if dev.type == "cpu":
        if kind == "uniform":
            arr = gen.random(shape, dtype=np.float64) * (b - a) + a
        else:
            arr = gen.standard_normal(shape, dtype=np.float64) * b + a
        return arr.astype(dtype)
    if kind == "uniform":
        return (gen.random_sample(shape) * (b - a) + a).astype(dtype)
    return (gen.standard_normal(shape) * b + a).astype(dtype)
