"""The conformance report's op_db column (minigrad/learn/opdb_coverage.py): which ops run
PyTorch's OpInfo samples in tests/test_opdb_*.py, and how many pass."""

import json
import textwrap

import pytest

from minigrad.learn import opdb_coverage as oc


def test_listed_entries_come_from_the_opdb_test_files():
    listed = oc.listed_entries()
    assert listed[("cumsum", "")] == "test_opdb_tensor_ops.py"
    assert listed[("div", "floor_rounding")] == "test_opdb_existing_ops.py"
    assert listed[("linalg.matrix_norm", "")] == "test_opdb_existing_ops.py"
    assert ("linalg.svd", "") not in listed  # sign-ambiguous factors: not run


def test_spec_names_map_to_their_opdb_entries():
    listed = oc.listed_entries()
    assert oc.entries_for("nn.conv1d", listed) == [("nn.functional.conv1d", "")]
    assert oc.entries_for("F.unfold", listed) == [("nn.functional.unfold", "")]
    assert oc.entries_for("max_dim", listed) == [("max", "reduction_with_dim")]
    assert oc.entries_for("nn.pad_replicate", listed) == [
        ("nn.functional.pad", "replicate"),
        ("nn.functional.pad", "replicate_negative"),
    ]
    assert ("div", "trunc_rounding") in oc.entries_for("div", listed)
    assert oc.entries_for("conv2d", listed) == [("nn.functional.conv2d", "")]
    assert oc.entries_for("to_float32", listed) == []


def test_failing_samples_are_counted(tmp_path):
    """The column can show a failure: a harness that rejects every other sample."""
    pytest.importorskip("expecttest")
    (tmp_path / "test_opdb_fake.py").write_text(
        textwrap.dedent("""
        OPS = [("add", ""), ("nosuchop", "")]
        calls = []

        def _run_sample(name, op, sample):
            calls.append(1)
            if len(calls) % 2:
                raise AssertionError("mismatch")
            return True
    """)
    )
    listed = oc.listed_entries(str(tmp_path))
    results, reason = oc.run_entries(listed, str(tmp_path))
    assert reason == ""
    abs_row = results[("add", "")]
    assert abs_row["run"] >= 2 and abs_row["passed"] == abs_row["run"] // 2
    assert results[("nosuchop", "")] == {"passed": 0, "run": 0, "file": "tests/test_opdb_fake.py"}
    assert oc.cell("add", results, listed) == f"{abs_row['passed']}/{abs_row['run']}"
    assert oc.cell("sum", results, listed) == "-"


def test_report_has_the_column(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("expecttest")
    from minigrad.learn import conformance

    assert (
        conformance.main(
            [
                "--op",
                "linalg.matrix_norm,to_float32",
                "--dtype",
                "float64",
                "--no-fd",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "conformance.json").read_text())
    cells = {r["op"]: r["opdb"] for r in data["rows"]}
    passed, run = map(int, cells["linalg.matrix_norm"].split("/"))
    assert run > 0 and passed == run
    assert cells["to_float32"] == "-"
    entries = data["meta"]["opdb"]["entries"]
    assert [(e["name"], e["specs"]) for e in entries] == [
        ("linalg.matrix_norm", ["linalg.matrix_norm"])
    ]
    md = (tmp_path / "conformance.md").read_text()
    assert "op_db samples (pass/run)" in md and "1 of 2 ops here run them" in md

    assert (
        conformance.main(
            [
                "--op",
                "to_float32",
                "--dtype",
                "float64",
                "--no-fd",
                "--no-opdb",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "conformance.json").read_text())
    assert "opdb" not in data["meta"] and "opdb" not in data["rows"][0]
