"""User mistakes and environment faults in the `minigrad` command: each gives one line
``minigrad: error: ...`` and exit status 2 (no traceback without ``--debug``), says what
happened, and leaves no half-written file behind. Also: where the tools write by default, and
what the conformance report counts as unsupported.

Runs use the tiny synthetic CIFAR-10 of tests/fake_cifar.py; nothing is downloaded.
"""

import errno
import json
import os
import pickle
import socket
import sys

import numpy as np
import pytest

import minigrad.app.train as train_mod
from minigrad import serialization
from minigrad.app.cli import main

sys.path.insert(0, os.path.dirname(__file__))
from fake_cifar import make_fake_cifar

PER_BATCH, TEST = 64, 64
COUNTS = f"{PER_BATCH},{TEST}"
SMALL = ["--limit-train", "32", "--limit-test", "32", "--batch-size", "16"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    make_fake_cifar(str(root), PER_BATCH, TEST)
    return str(root)


def _train(data_dir, out, *extra):
    return main(
        ["train", "--data-dir", data_dir, "--expected-counts", COUNTS, "--out", str(out), *extra]
    )


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "lenet"
    assert _train(data_dir, out, "--epochs", "1", *SMALL) == 0
    return str(out)


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("minigrad: error:"), err
    for n in needles:
        assert n in err, err
    return err


def _no_temp_files(folder):
    left = [p for p in os.listdir(folder) if p.endswith(".tmp") or ".tmp." in p]
    assert left == [], left


# ----------------------------------------------------------------------------- --out
def test_out_is_an_existing_file(data_dir, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert _train(data_dir, f, *SMALL) == 2
    _one_line_error(capsys, str(f), "not a folder")
    assert f.read_text() == "mine"


def test_out_under_a_file(data_dir, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert _train(data_dir, f / "run", *SMALL) == 2
    _one_line_error(capsys, str(f), "is a file")


def test_out_not_writable(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    if os.geteuid() != 0:  # a real read-only folder
        out.chmod(0o500)
    else:  # root writes anywhere: make the permission check say no
        real = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **k: False if os.fspath(p) == str(out) else real(p, mode, **k),
        )
    try:
        assert _train(data_dir, out, *SMALL) == 2
    finally:
        out.chmod(0o700)
    _one_line_error(capsys, str(out), "not writable")


# ----------------------------------------------------------------------------- disk full
def test_disk_full_while_saving_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    real_savez = np.savez
    calls = []

    def savez(f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_savez(f, *args, **kwargs)
        f.write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez)
    assert _train(data_dir, out, "--epochs", "2", *SMALL) == 2
    err = _one_line_error(capsys, "No space left on device", "checkpoint.npz")
    assert "epoch 1" in err
    monkeypatch.undo()
    assert serialization.load(str(out / "checkpoint.npz"))["epoch"] == 1  # old one intact
    _no_temp_files(out)


def test_disk_full_while_writing_metrics(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    real = train_mod._write_text_atomic

    def write(path, text):
        if path.endswith("summary.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, text)

    monkeypatch.setattr(train_mod, "_write_text_atomic", write)
    assert _train(data_dir, out, "--epochs", "1", *SMALL) == 2
    _one_line_error(capsys, "No space left on device", "summary.json")


def test_interrupt_during_metrics_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        train_mod._write_metrics(str(tmp_path), [{"epoch": 1, "train_loss": 1.0}])
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_json_to_missing_folder(run_dir, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "report.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                os.path.join(run_dir, "checkpoint.npz"),
                "--json",
                str(target),
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "test accuracy" not in captured.out  # refused before evaluating
    assert captured.err.startswith("minigrad: error:") and len(captured.err.splitlines()) == 1
    assert str(target.parent) in captured.err


@pytest.mark.parametrize("bs", ["0", "-1"])
def test_evaluate_bad_batch_size(run_dir, capsys, bs):
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                os.path.join(run_dir, "checkpoint.npz"),
                "--batch-size",
                bs,
            ]
        )
        == 2
    )
    _one_line_error(capsys, "--batch-size")


def test_evaluate_limit_test_zero(run_dir, capsys):
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                os.path.join(run_dir, "checkpoint.npz"),
                "--limit-test",
                "0",
            ]
        )
        == 2
    )
    _one_line_error(capsys, "--limit-test")


# ----------------------------------------------------------------------------- flags
def test_negative_seed(data_dir, tmp_path, capsys):
    assert _train(data_dir, tmp_path / "o", "--seed", "-1", *SMALL) == 2
    _one_line_error(capsys, "--seed")
    assert not (tmp_path / "o").exists()


def test_absurd_num_workers(data_dir, tmp_path, capsys):
    assert _train(data_dir, tmp_path / "o", "--num-workers", "20000", *SMALL) == 2
    _one_line_error(capsys, "--num-workers", "20000")


def test_worker_threads_that_cannot_start(data_dir, tmp_path, capsys, monkeypatch):
    import threading

    real_start = threading.Thread.start

    def start(self):
        if self.name.startswith("minigrad-DataLoader-worker"):
            raise RuntimeError("can't start new thread")
        return real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert _train(data_dir, tmp_path / "o", "--num-workers", "4", *SMALL) == 2
    _one_line_error(capsys, "--num-workers", "thread")


# ----------------------------------------------------------------------------- data
def test_data_pickle_asking_for_terabytes(tmp_path, capsys):
    from numpy._core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (2**45,), b"b"))

    root = tmp_path / "data"
    make_fake_cifar(str(root), PER_BATCH, TEST)
    path = root / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(pickle.dumps({b"data": Huge(), b"labels": [0]}, protocol=4))
    assert _train(str(root), tmp_path / "o", *SMALL) == 2
    _one_line_error(capsys, "data_batch_2", "memory")


def test_download_without_network(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MINIGRAD_CIFAR10_URL", f"http://127.0.0.1:{port}/cifar.tar.gz")
    data = tmp_path / "data"
    assert main(["train", "--download", "--data-dir", str(data), "--out", str(tmp_path / "o")]) == 2
    err = _one_line_error(capsys, "download", "failed", f"127.0.0.1:{port}")
    assert "unusable" not in err and "delete it" not in err
    assert not data.exists()  # no empty folder left behind


# ----------------------------------------------------------------------------- checkpoints
def _edited(run_dir, tmp_path, edit):
    ckpt = serialization.load(os.path.join(run_dir, "checkpoint.npz"))
    edit(ckpt)
    out = tmp_path / "edited"
    out.mkdir()
    serialization.save(ckpt, str(out / "checkpoint.npz"))
    return out


EDITS = {
    "no options": lambda c: c.pop("options"),
    "no rng": lambda c: c.pop("rng"),
    "no history": lambda c: c.pop("history"),
    "no environment": lambda c: c.pop("environment"),
    "no optimizer": lambda c: c.pop("optimizer"),
    "options not a dict": lambda c: c.__setitem__("options", [1, 2]),
    "lr is text": lambda c: c["options"].__setitem__("lr", "fast"),
    "batch size is float": lambda c: c["options"].__setitem__("batch_size", 16.5),
    "epoch is text": lambda c: c.__setitem__("epoch", "1"),
    "history of numbers": lambda c: c.__setitem__("history", [1, 2]),
    "history record without loss": lambda c: c["history"][0].pop("test_acc"),
    "rng loader missing": lambda c: c["rng"].pop("loader"),
    "classes not strings": lambda c: c.__setitem__("classes", list(range(10))),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_hand_edited_checkpoint(run_dir, data_dir, tmp_path, capsys, what):
    out = _edited(run_dir, tmp_path, EDITS[what])
    assert _train(data_dir, out, "--resume", "--epochs", "2") == 2
    _one_line_error(capsys, "checkpoint.npz")
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.npz")]) == 2
    _one_line_error(capsys, "checkpoint.npz")


# ----------------------------------------------------------------------------- Ctrl-C
def test_interrupt_in_first_epoch_does_not_claim_a_save(data_dir, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_train_epoch", interrupted)
    out = tmp_path / "o"
    assert _train(data_dir, out, *SMALL) == 130
    err = capsys.readouterr().err
    assert "saved" not in err.replace("nothing was saved", "")
    assert "nothing was saved" in err
    assert not (out / "checkpoint.npz").exists()
    monkeypatch.undo()
    assert _train(data_dir, out, "--epochs", "1", *SMALL) == 0  # a plain re-run starts over


def test_interrupt_after_an_epoch_names_it(data_dir, tmp_path, capsys, monkeypatch):
    def hook(epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_on_epoch_end", hook)
    out = tmp_path / "o"
    assert _train(data_dir, out, "--epochs", "2", *SMALL) == 130
    err = capsys.readouterr().err
    assert "epoch 1" in err and str(out / "checkpoint.npz") in err and "--resume" in err


# ----------------------------------------------------------------------------- conformance
def test_conformance_writes_to_a_run_folder_by_default(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    assert main(["conformance", "--op", "add", "--dtype", "float64", "--no-fd", "--quiet"]) == 0
    assert not (tmp_path / "docs").exists()
    written = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert written and all(os.path.relpath(p, tmp_path).startswith("runs") for p in written)
    assert any(p.endswith("conformance.json") for p in written)


def test_conformance_accepts_kernel_registry_names(tmp_path):
    pytest.importorskip("torch")
    from minigrad.learn import conformance

    assert (
        conformance.main(
            [
                "--op",
                "attention",
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
    rows = json.loads((tmp_path / "conformance.json").read_text())["rows"]
    assert {r["op"] for r in rows} == {"scaled_dot_product_attention"}
    assert (
        conformance.main(
            [
                "--op",
                "maxpool2d",
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
    rows = json.loads((tmp_path / "conformance.json").read_text())["rows"]
    assert {r["op"] for r in rows} == {"max_pool2d"}
    assert (
        conformance.main(
            [
                "--op",
                "cross_entropy",
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
    rows = json.loads((tmp_path / "conformance.json").read_text())["rows"]
    assert {r["op"] for r in rows} == {"nn.cross_entropy"}


def test_conformance_without_torch_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
    assert main(["conformance", "--op", "add", "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys, "torch")
    assert "ModuleNotFoundError" not in err
    assert list(tmp_path.iterdir()) == []


def _planted_spec(fn, name="planted"):
    from minigrad.testing.opinfo import OpSpec, Sample

    return OpSpec(
        name=name,
        fn=fn,
        ref=lambda torch, a: a * 2,
        samples=lambda rng: [Sample((rng.uniform(-1, 1, (3,)),), name="x3")],
        gradgrad=False,
    )


def _broken(a):
    raise IndexError("index 3 is out of bounds")  # a bug, not a dtype limitation


def _no_float16(a):
    from minigrad.autograd import DTypeError

    if str(a.dtype) == "float16":
        raise DTypeError("planted: float16 is not supported, expected float32 or float64")
    return a * 2


def _silent_not_implemented(a):
    raise NotImplementedError


@pytest.mark.parametrize(
    "fn, expected",
    [
        (_broken, ["FAIL", "FAIL", "FAIL"]),
        (_silent_not_implemented, ["FAIL", "FAIL", "FAIL"]),
        (_no_float16, ["pass", "pass", "unsupported"]),
    ],
)
def test_conformance_counts_only_deliberate_refusals_as_unsupported(fn, expected):
    pytest.importorskip("torch")
    from minigrad.learn import conformance

    rows = conformance.run([_planted_spec(fn)], finite_differences=False)
    assert [r["dtype"] for r in rows] == ["float64", "float32", "float16"]
    assert [r["status"] for r in rows] == expected, [r["detail"] for r in rows]
    if expected[0] == "FAIL":
        assert rows[0]["detail"]
        assert conformance.summary(rows)["FAIL"] == 3


# ----------------------------------------------------------------------------- benchmarks
def test_kernel_benchmark_writes_to_a_run_folder_by_default(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from benchmarks import kernels

    seen = {}

    def write_results(rows, info, ceilings, run_args, out, stem):
        seen["out"] = out
        return {}

    monkeypatch.setattr(kernels, "write_results", write_results)
    monkeypatch.setattr(
        kernels, "BENCHES", {s: lambda bench, torch: None for s in kernels.SECTIONS}
    )
    monkeypatch.setattr(kernels, "sgemm_gflops", lambda *a, **k: 1.0)
    monkeypatch.setattr(kernels, "copy_gbps", lambda *a, **k: 1.0)
    monkeypatch.setattr(kernels, "markdown", lambda *a, **k: "")
    assert kernels.main(["--quick"]) == 0
    out = os.path.normpath(seen["out"])
    assert out.split(os.sep)[0] == "runs", out
