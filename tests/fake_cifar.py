"""A tiny synthetic CIFAR-10 in the official python layout (for the training tests).

Same files, pickle keys and protocol as the official ``cifar-10-batches-py`` (and as
``make-cifar10``): ``data_batch_1..5`` and ``test_batch`` hold ``{b"batch_label", b"labels",
b"data" (uint8, N x 3072, channel-major), b"filenames"}``, ``batches.meta`` the label names.
Images are a class colour plus noise, so a model can learn something in one epoch.
"""

import os
import pickle

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(seed: int, n: int, name: str) -> dict:
    g = np.random.default_rng(seed)
    labels = g.integers(0, 10, n)
    colours = np.random.default_rng(1234).integers(0, 256, (10, 3))
    img = colours[labels][:, :, None] + g.normal(0, 40, (n, 3, 1024))
    data = np.clip(img, 0, 255).astype(np.uint8).reshape(n, 3072)
    return {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
    }


def make_fake_cifar(root, per_batch: int = 64, test: int = 64) -> dict:
    """Write ``root/cifar-10-batches-py``; returns the ``_expected_counts`` it satisfies."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(_batch(i, test if name == "test_batch" else per_batch, name), f, protocol=4)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump(
            {
                b"label_names": [c.encode() for c in CLASSES],
                b"num_cases_per_batch": per_batch,
                b"num_vis": 3072,
            },
            f,
            protocol=4,
        )
    return {"train_batch": per_batch, "test": test}
