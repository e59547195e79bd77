"""Image transforms, vectorised over a whole batch.

Layouts. A transform accepts one image or a batch:

* ``uint8`` arrays are channels-last, as datasets store them: ``(H, W, C)`` or ``(N, H, W, C)``;
* floating arrays are channels-first, as models consume them: ``(C, H, W)`` or ``(N, C, H, W)``.

``ToFloatCHW`` converts the first into the second. Geometric transforms (crop, flip) work on
either, so they can run on uint8 data before the conversion (four times less memory traffic).

Randomness protocol. Every transform is called as ``t(x, rng=None)``. A random transform
draws from ``rng`` when one is given (a ``numpy.random.Generator``), otherwise from its own
generator, seeded by ``seed=`` (or, when no seed is given, from ``minigrad.manual_seed``'s
host generator at construction). The DataLoader passes a fresh generator per batch derived
from ``(seed, epoch, batch_index)``, so batch ``k`` gets the same augmentation whichever
thread builds it. Plain callables (not ``Transform`` subclasses) are called as ``f(x)``;
``apply_transform`` hides that difference.
"""

from __future__ import annotations

import numpy as np

from .. import backend

__all__ = [
    "Transform",
    "Compose",
    "Lambda",
    "ToFloatCHW",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "apply_transform",
]


def apply_transform(t, x, rng=None):
    """Call ``t`` on ``x``, passing ``rng`` when ``t`` follows the ``(x, rng)`` protocol."""
    if t is None:
        return x
    if isinstance(t, Transform) or getattr(t, "accepts_rng", False):
        return t(x, rng=rng)
    return t(x)


def _spatial_axes(x: np.ndarray) -> tuple[int, int]:
    """(row axis, column axis) of an image or batch: HWC for uint8, CHW for floats."""
    if x.ndim not in (3, 4):
        raise ValueError(
            f"expected an image (3 dims) or a batch (4 dims), got shape {tuple(x.shape)}"
        )
    if x.dtype == np.uint8:  # (..., H, W, C)
        return x.ndim - 3, x.ndim - 2
    return x.ndim - 2, x.ndim - 1  # (..., C, H, W)


class Transform:
    """Base class: ``__call__(x, rng=None)``; random subclasses use ``self.generator(rng)``."""

    accepts_rng = True

    def __init__(self, seed: int | None = None):
        if seed is None:
            seed = int(backend.rng().integers(2**63))
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def generator(self, rng):
        return self._rng if rng is None else rng

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Compose(Transform):
    """Apply transforms in order; the same ``rng`` is threaded through all of them."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = apply_transform(t, x, rng)
        return x

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class Lambda(Transform):
    """Wrap ``fn(x)`` (or ``fn(x, rng)`` with ``with_rng=True``) as a transform."""

    def __init__(self, fn, with_rng: bool = False):
        self.fn, self.with_rng = fn, with_rng

    def __call__(self, x, rng=None):
        return self.fn(x, rng) if self.with_rng else self.fn(x)


class ToFloatCHW(Transform):
    """uint8 ``(H, W, C)`` / ``(N, H, W, C)`` -> float32 ``(C, H, W)`` / ``(N, C, H, W)``.

    uint8 values are scaled to [0, 1] (like ``torchvision.transforms.ToTensor``); other
    dtypes are assumed channels-last too and only cast to ``dtype``.
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"ToFloatCHW: expected (H, W, C) or (N, H, W, C), got {x.shape}")
        perm = (2, 0, 1) if x.ndim == 3 else (0, 3, 1, 2)
        out = np.ascontiguousarray(x.transpose(perm), dtype=self.dtype)
        if x.dtype == np.uint8:
            out *= self.dtype.type(1.0 / 255.0)
        return out


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` over the channel axis of float CHW images or batches."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean {self.mean.shape} and std {self.std.shape} differ")
        if np.any(self.std == 0):
            raise ValueError("Normalize: std contains zeros")
        self.inplace = inplace

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind != "f" or x.ndim not in (3, 4):
            raise TypeError(
                f"Normalize: expected float (C, H, W) or (N, C, H, W), got {x.dtype} "
                f"{tuple(x.shape)} (apply ToFloatCHW first)"
            )
        c = x.shape[-3]
        if self.mean.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means for {c} channels")
        mean = self.mean.astype(x.dtype).reshape(-1, 1, 1)
        scale = (1.0 / self.std).astype(x.dtype).reshape(-1, 1, 1)
        out = x if self.inplace else x.copy()
        out -= mean
        out *= scale
        return out

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop(Transform):
    """Zero-pad by ``padding`` then crop ``size`` at an independent random offset per image.

    Vectorised: one ``np.pad`` of the batch, then one gather through a sliding-window view.
    """

    def __init__(self, size, padding=0, fill=0, seed: int | None = None):
        super().__init__(seed)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if isinstance(padding, int):
            padding = (padding, padding, padding, padding)
        elif len(padding) == 2:  # (left/right, top/bottom) like torchvision
            padding = (padding[0], padding[1], padding[0], padding[1])
        self.padding = tuple(int(p) for p in padding)  # left, top, right, bottom
        if min(self.padding) < 0:
            raise ValueError(f"RandomCrop: negative padding {self.padding}")
        self.fill = fill

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        ra, ca = _spatial_axes(x)
        single = x.ndim == 3
        if single:
            x = x[None]
            ra, ca = ra + 1, ca + 1
        left, top, right, bottom = self.padding
        if any(self.padding):
            pad = [(0, 0)] * x.ndim
            pad[ra], pad[ca] = (top, bottom), (left, right)
            x = np.pad(x, pad, mode="constant", constant_values=self.fill)
        h, w = self.size
        H, W = x.shape[ra], x.shape[ca]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop {self.size} larger than padded image {(H, W)}")
        n = x.shape[0]
        g = self.generator(rng)
        oy = g.integers(0, H - h + 1, size=n)
        ox = g.integers(0, W - w + 1, size=n)
        # windows: (N, ..., H-h+1, W-w+1, ..., h, w); pick window (oy[i], ox[i]) of image i
        win = np.lib.stride_tricks.sliding_window_view(x, (h, w), axis=(ra, ca))
        idx = np.arange(n)
        if ra == 1:  # HWC: win is (N, nH, nW, C, h, w) -> (N, C, h, w) -> (N, h, w, C)
            out = win[idx, oy, ox].transpose(0, 2, 3, 1)
        else:  # CHW: win is (N, C, nH, nW, h, w) -> (N, C, h, w)
            out = win[idx, :, oy, ox]
        out = np.ascontiguousarray(out)
        return out[0] if single else out

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (independently per image)."""

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        _, ca = _spatial_axes(x)
        g = self.generator(rng)
        if x.ndim == 3:
            return np.flip(x, axis=ca).copy() if g.random() < self.p else x
        mask = g.random(x.shape[0]) < self.p
        out = x.copy()
        if mask.any():
            out[mask] = np.flip(x[mask], axis=ca)
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
