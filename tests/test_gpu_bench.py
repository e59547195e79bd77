"""The CPU-side parts of the GPU benchmark and run script (no GPU needed): the result writers
(each row on disk as measured, an error row for a failing case), the clear refusal without a
GPU, the PyTorch LSTM-cell reference in public torch ops, and the shell script's syntax."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minigrad import backend
from minigrad.kernels import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import gpu_kernels  # noqa: E402


def test_selftest_writes_rows_incrementally_and_keeps_error_rows(tmp_path):
    assert gpu_kernels.main(["--selftest", "--out-dir", str(tmp_path)]) == 0
    names = sorted(os.listdir(tmp_path))
    assert [n.rsplit(".", 1)[1] for n in names] == ["json", "jsonl", "md"]
    jsonl = [json.loads(line) for line in open(tmp_path / names[1])]
    assert "info" in jsonl[0] and [r["variant"] for r in jsonl[1:]] == ["cuda", "torch-fused", "-"]
    assert jsonl[-1]["error"].startswith("RuntimeError: selftest")
    md = open(tmp_path / names[2]).read()
    assert "| failing case | ERROR |" in md and "| adam 10M | cuda |" in md
    result = json.load(open(tmp_path / names[0]))
    assert result["rows"][0]["ratio_to_torch"] == 0.5


def test_refuses_clearly_without_a_gpu(tmp_path, capsys):
    if backend.cuda_available():
        pytest.skip("a GPU is present")
    assert gpu_kernels.main(["--out-dir", str(tmp_path)]) == 2
    assert "needs CuPy and a CUDA GPU" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_torch_lstm_cell_reference_is_the_cell_tail():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    gates, c_prev = rng.standard_normal((3, 20)), rng.standard_normal((3, 5))
    tg = torch.tensor(gates, requires_grad=True)
    tc = torch.tensor(c_prev, requires_grad=True)
    h, c = gpu_kernels.torch_lstm_cell_tail(torch, tg, tc)
    want_h, want_c, act, tanh_c = reference.lstm_cell_forward(gates, c_prev)
    np.testing.assert_allclose(h.detach().numpy(), want_h, rtol=1e-12)
    np.testing.assert_allclose(c.detach().numpy(), want_c, rtol=1e-12)
    dh, dc = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    dgates, dc_prev = torch.autograd.grad((h, c), (tg, tc), (torch.tensor(dh), torch.tensor(dc)))
    want_dg, want_dc = reference.lstm_cell_backward(dh, dc, c_prev, act, tanh_c)
    np.testing.assert_allclose(dgates.numpy(), want_dg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc_prev.numpy(), want_dc, rtol=1e-10, atol=1e-12)


def test_gpu_all_script_parses():
    r = subprocess.run(
        ["bash", "-n", os.path.join(ROOT, "benchmarks", "gpu_all.sh")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
