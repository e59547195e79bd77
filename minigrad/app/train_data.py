"""The data side of ``minigrad train`` / ``minigrad evaluate``: the device, CIFAR-10 with every
failure turned into a one-line ``CLIError``, the transforms and the loaders.

Part of the app (``train.py`` runs the loop, ``train_eval.py`` evaluates); it imports the
library, never the reverse.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

import minigrad as mg

from .. import backend
from .train_files import CLIError
from .train_options import NORMALIZATION


def _device(name: str | None):
    name = name or "cpu"
    try:
        dev = backend.Device(name)
    except (ValueError, TypeError) as e:
        raise CLIError(f"bad --device {name!r} ({e}): use cpu or cuda") from None
    if dev.type == "cuda" and not backend.cuda_available():
        raise CLIError(
            "--device cuda needs CuPy and a CUDA GPU, and none was found (install the extra "
            "with `pip install -e '.[cuda]'`), or use --device cpu"
        )
    return dev


def load_cifar(data_dir: str, train: bool, download: bool = False, expected_counts=None):
    """``CIFAR10`` with every failure turned into a one-line ``CLIError`` saying what to do."""
    from ..data import CIFAR10
    from ..data.cifar10 import DownloadError

    kwargs = {}
    if expected_counts:
        kwargs["_expected_counts"] = expected_counts
    root = os.path.abspath(os.path.expanduser(data_dir))
    try:
        return CIFAR10(root, train=train, download=download, **kwargs)
    except FileNotFoundError:
        raise CLIError(
            f"CIFAR-10 not found in {root}: it needs cifar-10-batches-py/ or "
            f"cifar-10-python.tar.gz there (copy the official archive, or run `minigrad data "
            f"convert SRC --out {root}` on images in class folders); point --data-dir at that "
            "folder, or add --download on a machine with network"
        ) from None
    except DownloadError as e:
        msg = " ".join(str(e).split())
        raise CLIError(f"the download failed, nothing was kept: {msg}") from e
    except (ValueError, pickle.UnpicklingError, RuntimeError, OSError) as e:
        msg = " ".join(str(e).split())
        raise CLIError(
            f"{msg} -- the CIFAR-10 copy in {root} is unusable: delete it and re-create it "
            "(`minigrad data check DIR` says what is wrong; --download fetches the official copy)"
        ) from e


def _transforms(opts: dict, train: bool):
    from ..data import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloatCHW

    mean, std = NORMALIZATION[opts["normalize"]]
    steps = []
    if train and opts["augment"]:
        # on uint8 HWC, before the float conversion (four times less memory traffic)
        steps += [RandomCrop(32, padding=4, seed=0), RandomHorizontalFlip(0.5, seed=0)]
    steps += [ToFloatCHW(), Normalize(mean, std)]
    return Compose(steps)


def _limit(ds, n):
    from ..data import Subset

    if n is None or n >= len(ds):
        return ds
    return Subset(ds, np.arange(n))


def _loader(ds, opts, batch_size, shuffle, transform, drop_last=False, seed=0):
    from ..data import DataLoader

    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        seed=seed,
        num_workers=opts.get("num_workers") or 0,
        transform=transform,
    )


def _to_tensor(a, device):
    if isinstance(a, mg.Tensor):
        return a
    return mg.Tensor(backend.to_device(np.ascontiguousarray(a), device))
