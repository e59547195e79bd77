"""Shared fixtures: kernel variants and devices. PyTorch is required (the comparisons are the
point of the suite): a missing torch is a collection error, not a skip."""

import numpy as np
import pytest
import torch  # noqa: F401  (fail loudly when the test extra is not installed)

import minigrad as mg
from minigrad import kernels


def cpu_variants(op: str) -> list[str]:
    """Every CPU variant of ``op`` built here (numpy always; cpp when _C is built; tiled for
    attention)."""
    return [v for v in kernels.available().get(op, ["numpy"]) if v in kernels.VARIANTS["cpu"]]


@pytest.fixture(autouse=True)
def _seed():
    mg.manual_seed(0)
    np.random.seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if mg.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
