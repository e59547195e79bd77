"""Smoke test of the benchmark command: `python -m benchmarks.kernels --quick` runs every section
on tiny cases and writes the markdown table, the JSON (with machine details) and the PNG."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.bench
@pytest.mark.timeout(120)
def test_benchmark_quick_mode_writes_results(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.kernels",
            "--quick",
            "--out",
            str(tmp_path),
            "--name",
            "smoke",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| case |" in r.stdout
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert {"cpu", "cores", "numpy", "torch"} <= set(data["machine"])
    assert data["ceilings"]["sgemm_gflops"] > 0 and data["ceilings"]["copy_gbps"] > 0
    names = [row["name"] for row in data["rows"]]
    for expected in ("conv2d fwd", "maxpool2d bwd", "adam step", "LeNet SGD step", "add 1x1"):
        assert any(expected in n for n in names), (expected, names)
    for row in data["rows"]:
        if not row["name"].startswith("lstm_cell kernel"):  # PyTorch has no bare cell kernel
            assert "torch" in row["times"], row["name"]
        assert all(t["median_ms"] > 0 for t in row["times"].values())
    assert (tmp_path / "smoke.md").read_text().startswith("# minigrad benchmarks")
    pytest.importorskip("matplotlib")
    assert (tmp_path / "smoke.png").stat().st_size > 1000
