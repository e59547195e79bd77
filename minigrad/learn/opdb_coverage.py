"""Which ops run PyTorch's own OpInfo samples (``op_db``) against minigrad in the test suite,
and how many of those samples pass: the "op_db" column of ``minigrad conformance``.

The list of op_db entries that run is the ``OPS`` list of each ``tests/test_opdb_*.py`` (read
with ``ast``, not imported). The samples are counted and checked by the tests' own harness
(``_run_sample``, and ``_filtered`` where the file has one), imported from the test files of
a source checkout, so the numbers are the ones ``pytest tests/test_opdb_*.py`` asserts on.
Without a checkout, or without PyTorch's test internals (the ``expecttest`` package), the
column says why it is empty.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import sys
import warnings

TESTS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests"
)

# OpSpec names whose op_db entries are not found by the name rules of ``entries_for``
ALIASES = {
    "max_dim": [("max", "reduction_with_dim")],
    "min_dim": [("min", "reduction_with_dim")],
    "max_all_ties": [("max", "reduction_no_dim")],
    "getitem": [("__getitem__", "")],
    "matmul": [("mm", ""), ("bmm", ""), ("__rmatmul__", "")],
    "clamp_tensor": [("clamp", "")],
    "scatter_value": [("scatter", "")],
    "sort_indices": [("sort", "")],
    "topk_indices": [("topk", "")],
    "kthvalue_indices": [("kthvalue", "")],
    "median_indices": [("median", "")],
    "relu": [("nn.functional.relu", "")],
    "nn.softmax": [("softmax", "")],
    "nn.log_softmax": [("log_softmax", "")],
    "nn.sigmoid": [("sigmoid", "")],
    "nn.tanh": [("tanh", "")],
    "pad": [("nn.functional.pad", "*")],
    "nn.pad_constant": [("nn.functional.pad", "constant")],
    "nn.pad_reflect": [("nn.functional.pad", "reflect")],
    "nn.pad_replicate": [
        ("nn.functional.pad", "replicate"),
        ("nn.functional.pad", "replicate_negative"),
    ],
    "nn.pad_circular": [("nn.functional.pad", "circular")],
}


def listed_entries(tests_dir: str = TESTS_DIR) -> dict[tuple[str, str], str]:
    """(op_db name, variant) -> the test file that runs it, from each file's ``OPS`` list."""
    out: dict[tuple[str, str], str] = {}
    if not os.path.isdir(tests_dir):
        return out
    for fname in sorted(os.listdir(tests_dir)):
        if not (fname.startswith("test_opdb_") and fname.endswith(".py")):
            continue
        with open(os.path.join(tests_dir, fname)) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "OPS"
            ):
                for item in ast.literal_eval(node.value):
                    key = (item, "") if isinstance(item, str) else tuple(item)
                    out.setdefault(key, fname)
    return out


def entries_for(spec_name: str, listed) -> list[tuple[str, str]]:
    """The listed op_db entries that exercise the OpSpec ``spec_name``: the same name, or
    ``X`` / ``nn.X`` / ``F.X`` as ``nn.functional.X`` (every variant), plus ``ALIASES``."""
    names = {spec_name, "nn.functional." + spec_name}
    for prefix in ("nn.", "F."):
        if spec_name.startswith(prefix):
            names.add("nn.functional." + spec_name[len(prefix) :])
    wanted = [k for k in listed if k[0] in names]
    for name, variant in ALIASES.get(spec_name, []):
        wanted += [k for k in listed if k[0] == name and variant in ("*", k[1])]
    return sorted(set(wanted))


@contextlib.contextmanager
def _tests_on_path(tests_dir):
    sys.path.insert(0, tests_dir)  # the test files import each other by module name
    try:
        yield
    finally:
        sys.path.remove(tests_dir)


def run_entries(
    entries: dict[tuple[str, str], str], tests_dir: str = TESTS_DIR, progress=None
) -> tuple[dict, str]:
    """Run every sample of each (name, variant) through its test file's harness.
    Returns ({(name, variant): {"passed", "run", "file"}}, reason-if-nothing-ran)."""
    if not entries:
        return {}, f"no tests/test_opdb_*.py found in {tests_dir}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as e:
        return {}, f"PyTorch's OpInfo database is unavailable ({e})"
    by_key = {(op.name, op.variant_test_name): op for op in op_db}
    results = {}
    with _tests_on_path(tests_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        modules = {f: importlib.import_module(f[:-3]) for f in sorted(set(entries.values()))}
        for (name, variant), fname in entries.items():
            mod, op = modules[fname], by_key.get((name, variant))
            row = {"passed": 0, "run": 0, "file": f"tests/{fname}"}
            results[(name, variant)] = row
            if op is None:
                continue
            run_sample = mod._run_sample
            filtered = getattr(mod, "_filtered", None)
            for sample in op.sample_inputs("cpu", _float64(), requires_grad=False):
                if filtered is not None and filtered(sample):
                    continue
                try:
                    if run_sample(name, op, sample) is None:  # PyTorch refuses the sample
                        continue
                    row["passed"] += 1
                except Exception:
                    pass
                row["run"] += 1
            if progress is not None:
                progress(name, variant, row)
    return results, ""


def _float64():
    import torch

    return torch.float64


def cell(spec_name: str, results: dict, listed) -> str:
    """The report cell of one op: "passed/run" summed over its op_db entries, or "-"."""
    keys = [k for k in entries_for(spec_name, listed) if k in results]
    if not keys:
        return "-"
    return f"{sum(results[k]['passed'] for k in keys)}/{sum(results[k]['run'] for k in keys)}"
