"""The kernel table and its one dispatch point (minigrad/kernels/__init__.py).

* The table is the only registry: each variant's module defines exactly the kernels of the ops
  its row lists, and a native module calls exactly the extension functions its row lists.
* Every op resolves on CPU, to the variant the rank order says.
* minigrad.kernels is a leaf: no module in it imports ops, nn, optim, the Tensor layer or
  importlib (read from the source, function-level imports included).
* Ops and optimizers reach their kernels through dispatch, so use() and MINIGRAD_KERNELS
  decide what runs.

Each structural check is a function returning its findings; the tests run it on the real
table and on a deliberately broken one, so every check is shown to fail on the bug it targets.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

import minigrad as mg
import minigrad.kernels as kernels
from minigrad import backend
from minigrad.kernels import blocked, cpp, cuda, native, reference, tiled

KERNELS_DIR = Path(REPO_ROOT) / "minigrad" / "kernels"
STEP_OPS = {"sgd", "adam"}  # optimizer updates: <op>_step instead of <op>_forward/_backward


@pytest.fixture(autouse=True)
def _clean_kernel_state(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    kernels.reset()
    yield
    kernels.reset()


# ----------------------------------------------------------------------------- checkers
def kernel_functions(op: str) -> tuple[str, ...]:
    return (f"{op}_step",) if op in STEP_OPS else (f"{op}_forward", f"{op}_backward")


def ops_defined_by(module) -> set[str]:
    """Ops whose kernel functions ``module`` defines itself (re-exports included: reference
    takes sgd_step/adam_step from reference_optim)."""
    ops = set()
    for name, value in vars(module).items():
        if name.startswith("_") or not isinstance(value, types.FunctionType):
            continue
        for suffix in ("_forward", "_backward", "_step"):
            if name.endswith(suffix):
                ops.add(name[: -len(suffix)])
    return ops


def table_problems(table) -> list[str]:
    """Differences between the table and the variant modules, in both directions."""
    problems = []
    listed_by_module: dict[types.ModuleType, set[str]] = {}
    for name, row in table.items():
        listed_by_module.setdefault(row.module, set()).update(row.ops)
        for op in row.ops:
            missing = [
                f for f in kernel_functions(op) if not callable(getattr(row.module, f, None))
            ]
            if missing:
                problems.append(f"{name}: {row.module.__name__} lacks {missing} for {op!r}")
        if row.device_type not in ("cpu", "cuda"):
            problems.append(f"{name}: unknown device type {row.device_type!r}")
    for module, listed in listed_by_module.items():
        unlisted = ops_defined_by(module) - listed
        if unlisted:
            problems.append(
                f"{module.__name__} defines kernels for {sorted(unlisted)} that no "
                "row of the table lists"
            )
    return problems


def extension_calls(source: str, handles: set[str]) -> set[str]:
    """Names of extension functions a module's source calls: ``load_C().f(...)``,
    ``C.f(...)`` / ``_cuda.f(...)`` (the names in ``handles``)."""
    called = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if isinstance(target, ast.Name) and target.id in handles:
            called.add(node.func.attr)
        elif (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id in ("load_C", "load_cuda")
        ):
            called.add(node.func.attr)
    return called


NATIVE_MODULES = {"cpp": (cpp, {"C"}), "blocked": (blocked, {"C"}), "cuda": (cuda, {"_cuda"})}


def entry_point_problems(table, sources: dict[str, str]) -> list[str]:
    """A native variant's row must list exactly the extension functions its module calls."""
    problems = []
    for name, (_, handles) in NATIVE_MODULES.items():
        listed = {f for names in table[name].ops.values() for f in names}
        called = extension_calls(sources[name], handles)
        if called - listed:
            problems.append(f"{name}: calls {sorted(called - listed)} not in its table row")
        if listed - called:
            problems.append(f"{name}: its table row lists {sorted(listed - called)}, never called")
    return problems


ALLOWED = ("minigrad.backend", "minigrad.kernels", "minigrad._C", "minigrad._cuda")
FORBIDDEN_STDLIB = ("importlib",)


def import_problems(filename: str, source: str) -> list[str]:
    """Imports (module-level or inside functions) that break the leaf rule."""
    package = ["minigrad", "kernels"]
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from ..ops import x -> minigrad.ops
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                problems.append(f"{filename}:{node.lineno}: __import__")
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN_STDLIB:
                problems.append(f"{filename}:{node.lineno}: imports {name}")
            if name.startswith("minigrad") and not any(
                name == a or name.startswith(a + ".") for a in ALLOWED
            ):
                problems.append(f"{filename}:{node.lineno}: imports {name}")
    return problems


def _sources() -> dict[str, str]:
    return {
        name: Path(module.__file__).read_text(encoding="utf-8")
        for name, (module, _) in NATIVE_MODULES.items()
    }


# ----------------------------------------------------------------------------- the table
def test_table_matches_the_variant_modules():
    assert table_problems(kernels.TABLE) == []


def test_table_check_fails_on_a_row_claiming_an_op_its_module_lacks(monkeypatch):
    table = dict(kernels.TABLE)
    table["tiled"] = dataclasses.replace(table["tiled"], ops={"attention": (), "relu": ()})
    assert any("tiled" in p and "relu_forward" in p for p in table_problems(table))


def test_table_check_fails_on_a_kernel_no_row_lists():
    table = dict(kernels.TABLE)
    table["blocked"] = dataclasses.replace(table["blocked"], ops={})
    assert any(
        "minigrad.kernels.blocked defines kernels for ['attention']" in p
        for p in table_problems(table)
    )


def test_native_rows_list_exactly_the_extension_functions_called():
    assert entry_point_problems(kernels.TABLE, _sources()) == []
    # the scan finds the calls it is meant to find
    assert {"relu_forward", "im2col", "sgd_step"} <= extension_calls(_sources()["cpp"], {"C"})
    assert {"attention_rows_forward"} <= extension_calls(_sources()["blocked"], {"C"})
    assert {"lstm_cell_backward", "adam_step"} <= extension_calls(_sources()["cuda"], {"_cuda"})


def test_entry_point_check_fails_on_a_missing_or_stale_entry():
    table = dict(kernels.TABLE)
    ops = dict(table["cpp"].ops)
    ops["relu"] = ("relu_forward",)  # relu_backward called but not listed
    ops["lstm_cell"] = (*ops["lstm_cell"], "lstm_cell_fused")  # listed, never called
    table["cpp"] = dataclasses.replace(table["cpp"], ops=ops)
    problems = entry_point_problems(table, _sources())
    assert any("relu_backward" in p and "not in its table row" in p for p in problems)
    assert any("lstm_cell_fused" in p and "never called" in p for p in problems)


def test_every_op_is_listed_once_with_a_reference():
    listed = set().union(*(row.ops for row in kernels.TABLE.values()))
    assert listed == set(kernels.OPS)
    assert len(set(kernels.OPS)) == len(kernels.OPS)
    for name in ("numpy", "cupy"):
        assert set(kernels.TABLE[name].ops) == set(kernels.OPS)
        assert kernels.TABLE[name].module is reference


def test_derived_views_come_from_the_table():
    for device_type, names in kernels.VARIANTS.items():
        assert set(names) == {n for n, v in kernels.TABLE.items() if v.device_type == device_type}
    assert kernels.VARIANTS["cpu"][0] == "cpp" and kernels.VARIANTS["cuda"][0] == "cuda"
    assert set(kernels.available()) == set(kernels.OPS)


def test_preference_order():
    assert kernels.preference("relu", "cpu") == ["cpp", "numpy"]
    assert kernels.preference("relu", "cuda") == ["cuda", "cupy"]
    assert kernels.preference("bias_relu", "cuda") == ["cupy"]  # no CUDA kernel
    assert kernels.preference("attention", "cpu") == ["blocked", "numpy", "cpp", "tiled"]


# ----------------------------------------------------------------------------- resolving
@pytest.mark.parametrize("op", kernels.OPS)
def test_every_op_resolves_on_cpu(op):
    module = kernels.dispatch(op, "cpu")
    name = kernels.current(op, "cpu")
    assert kernels.TABLE[name].module is module
    assert name in kernels.available()[op]
    built = [v for v in kernels.preference(op, "cpu") if kernels.TABLE[v].is_built(op)]
    assert name == built[0]  # the first built variant by rank
    for f in kernel_functions(op):
        assert callable(getattr(module, f))
    assert kernels.dispatch(op, np.zeros(3)) is module
    assert kernels.dispatch(op, np.float64(1.0)) is module  # a NumPy scalar is a CPU array
    assert kernels.dispatch(op, backend.Device("cpu")) is module
    assert kernels.select(op, "cpu") is module  # older name


def test_dispatch_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown op 'conv9d'"):
        kernels.dispatch("conv9d", np.zeros(1))
    with pytest.raises(ValueError, match="unknown device"):
        kernels.dispatch("relu", "tpu")
    with pytest.raises(TypeError, match="expected an array, a Device or a device string"):
        kernels.dispatch("relu", [1.0, 2.0])


def test_dispatch_on_cuda_without_cupy_names_the_extra():
    if backend.cuda_available():
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(RuntimeError, match="CuPy"):
        kernels.dispatch("relu", "cuda:0")


def test_unbuilt_extension_falls_back_to_the_reference(monkeypatch):
    for name in ("cpp", "blocked"):
        monkeypatch.setitem(
            kernels.TABLE, name, dataclasses.replace(kernels.TABLE[name], runtime=lambda: None)
        )
    kernels.reset()
    for op in kernels.OPS:
        assert kernels.current(op, "cpu") == "numpy"
        assert kernels.dispatch(op, np.zeros(1)) is reference
    with pytest.raises(ValueError, match="'cpp' for 'relu' is not built"):
        kernels.use("relu", "cpp")


def test_stale_extension_lacking_an_entry_point_is_not_built(monkeypatch):
    class Stale:  # a _C built before bias_relu existed
        relu_forward = relu_backward = object()

    monkeypatch.setitem(
        kernels.TABLE, "cpp", dataclasses.replace(kernels.TABLE["cpp"], runtime=Stale)
    )
    kernels.reset()
    assert kernels.TABLE["cpp"].is_built("relu")
    assert kernels.current("relu", "cpu") == "cpp"
    assert kernels.current("bias_relu", "cpu") == "numpy"


def test_missing_extension_modules_still_import():
    """An unbuilt _C and _cuda: every variant module imports, the native ones are not built."""
    code = (
        "import sys\n"
        "sys.modules['minigrad._C'] = None\n"
        "sys.modules['minigrad._cuda'] = None\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "import minigrad.kernels as k\n"
        "assert k.TABLE['cpp'].module.__name__ == 'minigrad.kernels.cpp'\n"
        "assert not any(k.TABLE[v].is_built(op) for v in ('cpp', 'blocked', 'cuda')\n"
        "               for op in k.OPS)\n"
        "assert all(k.current(op) == 'numpy' for op in k.OPS)\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"


# ----------------------------------------------------------------------------- the leaf rule
def test_kernels_imports_no_higher_layer():
    problems = []
    for path in sorted(KERNELS_DIR.glob("*.py")):
        problems += import_problems(path.name, path.read_text(encoding="utf-8"))
    assert problems == []


@pytest.mark.parametrize(
    "source",
    [
        "from minigrad.ops import kernel\n",
        "def f():\n    from minigrad.optim import _functional\n",
        "from ..tensor import Tensor\n",
        "import minigrad.nn.functional as F\n",
        "from minigrad import tensor\n",
        "import importlib\n",
        "m = __import__('minigrad.kernels.cpp')\n",
    ],
)
def test_leaf_check_fails_on_a_forbidden_import(source):
    assert import_problems("bad.py", source) != []


def test_leaf_check_allows_the_allowed_imports():
    source = (
        "from minigrad import backend\nfrom minigrad.kernels import native\n"
        "from . import reference\nfrom minigrad.backend import Device\n"
        "def f():\n    from minigrad import _C\n"
    )
    assert import_problems("ok.py", source) == []


def test_optim_imports_kernels_not_the_reverse():
    optim_dir = Path(REPO_ROOT) / "minigrad" / "optim"
    for path in optim_dir.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("minigrad.ops", "ops"):
                assert all(a.name != "kernel" for a in node.names), path.name


# ----------------------------------------------------------------------------- who decides
def _counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_relu_and_bias_relu_run_the_dispatched_variant(monkeypatch):
    relu_calls = _counting(monkeypatch, reference, "relu_forward")
    bias_calls = _counting(monkeypatch, reference, "bias_relu_backward")
    x = mg.tensor(np.array([[-1.0, 2.0], [3.0, -4.0]]), requires_grad=True)
    b = mg.tensor(np.array([0.5, -0.5]), requires_grad=True)
    with kernels.use("relu", "numpy"), kernels.use("bias_relu", "numpy"):
        y = x.relu()
        mg.nn.functional.bias_relu(x, b).sum().backward()
    assert relu_calls == ["relu_forward"]
    assert bias_calls == ["bias_relu_backward"]
    np.testing.assert_array_equal(y.detach().numpy(), [[0.0, 2.0], [3.0, 0.0]])
    if "cpp" in kernels.available()["relu"]:
        cpp_calls = _counting(monkeypatch, cpp, "relu_forward")
        x.relu()  # the override is gone: the default (C++) variant runs
        assert relu_calls == ["relu_forward"] and cpp_calls == ["relu_forward"]


@pytest.mark.parametrize("optimizer, op", [("SGD", "sgd"), ("Adam", "adam")])
def test_optimizers_run_the_dispatched_variant(monkeypatch, optimizer, op):
    calls = _counting(monkeypatch, reference, f"{op}_step")
    p = mg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    opt = getattr(mg.optim, optimizer)([p], lr=0.1)
    (p * p).sum().backward()
    with kernels.use(op, "numpy"):
        opt.step()
    assert calls == [f"{op}_step"]
    if "cpp" in kernels.available()[op]:
        cpp_calls = _counting(monkeypatch, cpp, f"{op}_step")
        opt.step()  # default: the C++ kernel
        assert cpp_calls == [f"{op}_step"] and calls == [f"{op}_step"]


def test_use_changes_what_dispatch_returns_and_restores():
    default = kernels.dispatch("attention", np.zeros(1))
    with kernels.use("attention", "tiled"):
        assert kernels.dispatch("attention", np.zeros(1)) is tiled
        with kernels.use("attention", "numpy"):
            assert kernels.dispatch("attention", "cpu") is reference
        assert kernels.dispatch("attention", "cpu") is tiled
    assert kernels.dispatch("attention", np.zeros(1)) is default


def test_use_of_a_gpu_variant_leaves_cpu_alone(monkeypatch):
    monkeypatch.setattr(backend, "cuda_available", lambda: True)  # pretend: cupy is "built"
    kernels.reset()
    cpu_default = kernels.dispatch("relu", "cpu")
    with kernels.use("relu", "cupy"):
        assert kernels.current("relu", "cuda") == "cupy"
        assert kernels.dispatch("relu", "cpu") is cpu_default


def _run(code: str, env_value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != kernels.ENV_VAR}
    if env_value is not None:
        env[kernels.ENV_VAR] = env_value
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_env_override_reaches_ops_in_a_fresh_process():
    code = (
        "import numpy as np, minigrad as mg, minigrad.kernels as k\n"
        "from minigrad.kernels import reference, tiled\n"
        "calls = []\n"
        "orig = reference.relu_forward\n"
        "reference.relu_forward = lambda x: calls.append(1) or orig(x)\n"
        "mg.tensor(np.array([-1.0, 1.0])).relu()\n"
        "assert calls == [1], calls\n"
        "assert k.dispatch('attention', np.zeros(1)) is tiled\n"
        "assert k.current('conv2d') == k.preference('conv2d', 'cpu')[0] or "
        "'cpp' not in k.available()['conv2d']\n"
        "with k.use('relu', None):\n"
        "    assert k.current('relu') != 'numpy' or 'cpp' not in k.available()['relu']\n"
        "assert k.current('relu') == 'numpy'\n"
        "print('ok')\n"
    )
    r = _run(code, "relu=numpy, attention=tiled")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"


def test_env_override_with_a_bad_entry_fails_on_first_dispatch():
    r = _run(
        "import numpy as np, minigrad.kernels as k\nk.dispatch('relu', np.zeros(1))\n",
        "relu=fortran",
    )
    assert r.returncode != 0
    assert "MINIGRAD_KERNELS: bad entry 'relu=fortran'" in r.stderr


def test_the_old_names_are_gone():
    """kernels.dispatch is the one way to a kernel: ops.kernel and the PROVIDES copies of the
    table are deleted."""
    from minigrad import ops
    from minigrad.kernels import cuda

    assert not hasattr(ops, "kernel")
    assert not hasattr(reference, "PROVIDES") and not hasattr(cuda, "PROVIDES")


def test_native_contiguous_keeps_0d_and_copies_only_views():
    a = np.arange(12.0).reshape(3, 4)
    assert native.contiguous(a) is a
    t = native.contiguous(a.T)
    assert t.flags.c_contiguous and np.array_equal(t, a.T)
    z = np.array(3.0)
    assert native.contiguous(z).shape == ()
