"""PyTorch is the tests' oracle, never a dependency: importing any minigrad module must not
import torch. Each check runs in a fresh interpreter whose ``sys.meta_path`` starts with a
finder that records and refuses every ``import torch`` (as if PyTorch were not installed)."""

import os
import pkgutil
import subprocess
import sys

import pytest

import minigrad

_BLOCK = """
import importlib, sys
attempts = []

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            import traceback
            attempts.append((name, "".join(traceback.format_stack(limit=12))))
            raise ImportError(f"torch is blocked in this test (import {name!r})")
        return None

sys.meta_path.insert(0, NoTorch())
for mod in sys.argv[1:]:
    try:
        importlib.import_module(mod)
    except ImportError as e:
        if "torch is blocked" in str(e):
            raise
        print(f"SKIP {mod}: {e}")  # an optional dependency (mpi4py, cupy) that is absent
    if attempts:
        name, stack = attempts[0]
        sys.exit(f"importing {mod} imported {name}:\\n{stack}")
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
print("OK")
"""


def _modules() -> list[str]:
    names = ["minigrad"]
    for info in pkgutil.walk_packages(minigrad.__path__, "minigrad."):
        names.append(info.name)
    return sorted(n for n in names if n != "minigrad.__main__")


def _run(modules):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    return subprocess.run(
        [sys.executable, "-c", _BLOCK, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_testing_checks_does_not_import_torch():
    res = _run(["minigrad.testing.checks"])
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def test_no_minigrad_module_imports_torch():
    mods = _modules()
    assert "minigrad.testing.checks" in mods and "minigrad.learn.conformance" in mods
    res = _run(mods)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def test_the_blocker_catches_a_torch_import():
    """The check can fail: a module importing torch at the top is caught."""
    res = _run(["minigrad", "torch.nn"])
    assert res.returncode != 0 and "torch is blocked" in res.stderr, res.stdout + res.stderr


@pytest.mark.parametrize("mod", ["minigrad.testing.checks"])
def test_checks_still_reaches_torch_when_called(mod):
    """Lazy, not removed: the oracle helpers import torch on first use."""
    import importlib

    checks = importlib.import_module(mod)
    assert checks._torch().__name__ == "torch"
