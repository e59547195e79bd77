"""``minigrad train --clip-grad-norm`` and ``--ema``: the clip is applied before every step,
the averaged weights are what evaluation, the summary and ``minigrad evaluate`` use, a resumed
EMA run is bit-identical to an uninterrupted one, and checkpoints from before these options
still load."""

import json
import os

import numpy as np
import pytest
from test_train import COUNTS, _interrupt_after, data_dir  # noqa: F401  (fixture)

import minigrad.app.train as train_mod
from minigrad import serialization
from minigrad.app.cli import main
from minigrad.nn import utils as nn_utils


def _np(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _run(data_dir, out, *extra):  # noqa: F811
    return main(
        [
            "train",
            "--data-dir",
            data_dir,
            "--expected-counts",
            COUNTS,
            "--out",
            str(out),
            "--batch-size",
            "16",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            *extra,
        ]
    )


def test_clip_grad_norm_runs_before_every_step(data_dir, tmp_path, monkeypatch):  # noqa: F811
    calls = []
    real = nn_utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        total = real(params, max_norm, *a, **k)
        after = float(
            np.sqrt(
                sum(
                    float((p.grad.detach().numpy() ** 2).sum())
                    for p in params
                    if p.grad is not None
                )
            )
        )
        calls.append((max_norm, after))
        return total

    monkeypatch.setattr(nn_utils, "clip_grad_norm_", spy)
    assert _run(data_dir, tmp_path / "clip", "--clip-grad-norm", "0.05", "--epochs", "1") == 0
    assert len(calls) == 4  # 64 images / batch 16
    assert all(m == 0.05 and after <= 0.05 * (1 + 1e-5) for m, after in calls)
    opts = json.load(open(tmp_path / "clip" / "summary.json"))["options"]
    assert opts["clip_grad_norm"] == 0.05 and opts["ema"] is None


def test_ema_evaluates_the_averaged_weights(data_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "ema"
    assert _run(data_dir, out, "--ema", "0.9", "--epochs", "2") == 0
    ckpt = serialization.load(str(out / "checkpoint.npz"))
    ema = ckpt["ema"]
    assert int(ema["n_averaged"]) == 8  # one update per step, 2 epochs x 4 steps
    w, w_avg = _np(ckpt["model"]["fc3.weight"]), _np(ema["module.fc3.weight"])
    assert not np.allclose(w, w_avg)  # the average lags the weights
    summary = json.load(open(out / "summary.json"))
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(out / "checkpoint.npz"),
                "--json",
                str(report),
                "--limit-test",
                "32",
            ]
        )
        == 0
    )
    result = json.load(open(report))
    assert result["test_accuracy"] == summary["test_accuracy"]
    assert result["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert (
        main(["train", "--data-dir", data_dir, "--out", str(tmp_path / "bad"), "--ema", "1.5"]) == 2
    )
    assert "--ema must be a decay in (0, 1)" in capsys.readouterr().err


def test_ema_run_resumes_bit_identically(data_dir, tmp_path, monkeypatch):  # noqa: F811
    flags = ("--ema", "0.8", "--clip-grad-norm", "1.0", "--epochs", "2")
    assert _run(data_dir, tmp_path / "whole", *flags) == 0
    monkeypatch.setattr(train_mod, "_on_epoch_end", _interrupt_after(1))
    assert _run(data_dir, tmp_path / "cut", *flags) == 130  # "killed" after epoch 1
    monkeypatch.undo()
    assert (
        main(
            [
                "train",
                "--resume",
                "--out",
                str(tmp_path / "cut"),
                "--data-dir",
                data_dir,
                "--expected-counts",
                COUNTS,
            ]
        )
        == 0
    )
    a = serialization.load(str(tmp_path / "whole" / "checkpoint.npz"))
    b = serialization.load(str(tmp_path / "cut" / "checkpoint.npz"))
    for key in ("model", "ema"):
        for name in a[key]:
            np.testing.assert_array_equal(
                _np(a[key][name]), _np(b[key][name]), err_msg=f"{key}.{name}"
            )


def test_checkpoint_from_before_these_options_still_resumes(data_dir, tmp_path):  # noqa: F811
    out = tmp_path / "old"
    assert _run(data_dir, out, "--epochs", "1") == 0
    path = str(out / "checkpoint.npz")
    ckpt = serialization.load(path)
    for k in ("clip_grad_norm", "ema"):
        del ckpt["options"][k]
    del ckpt["ema"]
    serialization.save(ckpt, path)
    assert (
        main(
            [
                "train",
                "--resume",
                "--out",
                str(out),
                "--data-dir",
                data_dir,
                "--expected-counts",
                COUNTS,
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    assert json.load(open(out / "summary.json"))["options"]["ema"] is None
    assert os.path.exists(out / "metrics.jsonl")
