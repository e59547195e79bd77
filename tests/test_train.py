"""End-to-end tests of `minigrad train` / `minigrad evaluate` on a tiny synthetic CIFAR-10.

The synthetic copy (tests/fake_cifar.py) has the official layout and pickle format but 64
images per batch file, accepted through the hidden ``--expected-counts`` flag. Runs are a
few hundred images, one or two epochs: the point is that the command, its files, resuming
and its error paths cannot silently break.
"""

import json
import os
import subprocess
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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    make_fake_cifar(str(root), PER_BATCH, TEST)
    return str(root)


def _train(data_dir, out, *extra):
    return main(
        ["train", "--data-dir", data_dir, "--expected-counts", COUNTS, "--out", str(out), *extra]
    )


def _weights(out):
    ckpt = serialization.load(os.path.join(out, "checkpoint.npz"))
    return ckpt


@pytest.fixture(scope="module")
def lenet_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "lenet"
    rc = _train(data_dir, out, "--model", "lenet", "--epochs", "1")
    assert rc == 0
    return str(out)


def test_one_epoch_writes_all_outputs(lenet_run):
    out = lenet_run
    for name in ("metrics.jsonl", "checkpoint.npz", "summary.json", "curves.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["epoch"] for r in records] == [1]
    for key in (
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "seconds",
        "images_per_second",
        "lr",
    ):
        assert np.isfinite(records[0][key]), key
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] == pytest.approx(records[0]["test_acc"])
    assert summary["test_loss"] == pytest.approx(records[0]["test_loss"])
    cm = np.array(summary["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == TEST
    assert np.trace(cm) == summary["test_correct"]
    assert set(summary["per_class"]["cat"]) >= {"accuracy", "precision", "recall", "f1"}
    assert len(summary["seconds_per_epoch"]) == 1
    assert summary["command"].startswith("minigrad train")
    # recipe R1 defaults for lenet
    opts = summary["options"]
    assert (
        opts["optimizer"],
        opts["lr"],
        opts["momentum"],
        opts["batch_size"],
        opts["augment"],
        opts["normalize"],
    ) == ("sgd", 0.01, 0.9, 32, False, "half")
    ckpt = _weights(out)
    assert ckpt["model_name"] == "lenet" and ckpt["epoch"] == 1
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "options", "history"}
    assert ckpt["rng"]["loader"]["epoch"] == 1


def test_evaluate_matches_training_summary(lenet_run, tmp_path, capsys):
    report = tmp_path / "eval.json"
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            os.path.join(lenet_run, "checkpoint.npz"),
            "--json",
            str(report),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "truck" in printed
    result = json.load(open(report))
    summary = json.load(open(os.path.join(lenet_run, "summary.json")))
    assert result["test_accuracy"] == summary["test_accuracy"]
    assert result["confusion_matrix"] == summary["confusion_matrix"]


def _interrupt_after(epoch):
    def hook(e):
        if e == epoch:
            raise KeyboardInterrupt

    return hook


@pytest.mark.parametrize(
    "model, flags",
    [
        # SGD + 1cycle (per-batch lr and momentum), augmentation, weight decay
        (
            "lenet",
            [
                "--schedule",
                "onecycle",
                "--augment",
                "--weight-decay",
                "5e-4",
                "--lr",
                "0.05",
                "--label-smoothing",
                "0.1",
                "--batch-size",
                "16",
                "--limit-train",
                "96",
            ],
        ),
        # batch norm running statistics, AdamW state, cosine schedule, 2 loader threads
        (
            "resnet9-tiny",
            [
                "--optimizer",
                "adamw",
                "--schedule",
                "cosine",
                "--batch-size",
                "4",
                "--limit-train",
                "8",
                "--limit-test",
                "8",
                "--num-workers",
                "2",
            ],
        ),
    ],
)
def test_resume_is_bit_identical(data_dir, tmp_path, monkeypatch, model, flags, capsys):
    common = ["--model", model, "--epochs", "2", "--seed", "3", *flags]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _train(data_dir, full, *common) == 0

    monkeypatch.setattr(train_mod, "_on_epoch_end", _interrupt_after(1))
    assert _train(data_dir, cut, *common) == 130  # "killed" after epoch 1's checkpoint
    assert "--resume" in capsys.readouterr().err
    assert _weights(cut)["epoch"] == 1
    monkeypatch.undo()
    assert main(["train", "--resume", "--out", str(cut)]) == 0  # everything else from ckpt

    a, b = _weights(full), _weights(cut)
    assert a["epoch"] == b["epoch"] == 2
    assert list(a["model"]) == list(b["model"])
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k].numpy(), b["model"][k].numpy(), err_msg=k)
    for i, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            other = b["optimizer"]["state"][i][k]
            if hasattr(v, "numpy"):
                np.testing.assert_array_equal(v.numpy(), other.numpy())
            else:
                assert v == other
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert a["scheduler"] == b["scheduler"]
    timing = ("seconds", "eval_seconds", "images_per_second")
    ha = [{k: v for k, v in r.items() if k not in timing} for r in a["history"]]
    hb = [{k: v for k, v in r.items() if k not in timing} for r in b["history"]]
    assert ha == hb
    lines = open(os.path.join(cut, "metrics.jsonl")).read().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("minigrad: error:"), err
    for n in needles:
        assert n in err, err
    return err


def test_unknown_model(data_dir, tmp_path, capsys):
    assert _train(data_dir, tmp_path / "o", "--model", "vgg99") == 2
    _one_line_error(capsys, "unknown model", "lenet", "resnet9")


def test_missing_data_dir(tmp_path, capsys):
    assert (
        main(["train", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    )
    _one_line_error(capsys, "not found", "--download", "--data-dir")


def test_truncated_data_file(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    make_fake_cifar(str(bad), PER_BATCH, TEST)
    path = bad / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    assert _train(str(bad), tmp_path / "o") == 2
    _one_line_error(capsys, "data_batch_3", "truncated")


def test_official_counts_reject_tiny_copy(data_dir, tmp_path, capsys):
    # without the test-only flag the structural validation wants 10,000 images per file
    assert main(["train", "--data-dir", data_dir, "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "data_batch_1", "10000")


def test_checkpoint_from_another_model(lenet_run, data_dir, tmp_path, capsys):
    ckpt = os.path.join(lenet_run, "checkpoint.npz")
    assert main(["evaluate", "--checkpoint", ckpt, "--model", "resnet9"]) == 2
    _one_line_error(capsys, "'lenet'", "resnet9")
    # resuming a lenet run as a resnet9 run
    assert _train(data_dir, lenet_run, "--resume", "--model", "resnet9-tiny") == 2
    _one_line_error(capsys, "'lenet' run", "--model")
    # weights of another model under a lenet label
    other = tmp_path / "other.npz"
    obj = serialization.load(ckpt)
    obj["model"] = {"fc.weight": np.zeros((10, 3), np.float32)}
    serialization.save(obj, str(other))
    assert main(["evaluate", "--checkpoint", str(other)]) == 2
    _one_line_error(capsys, "do not fit", "'lenet'")
    # not a checkpoint at all
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    assert main(["evaluate", "--checkpoint", str(junk)]) == 2
    _one_line_error(capsys, "not a minigrad checkpoint")


def test_existing_run_needs_resume(lenet_run, data_dir, capsys):
    assert _train(data_dir, lenet_run, "--epochs", "1") == 2
    _one_line_error(capsys, "--resume")


def test_debug_shows_traceback(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(tmp_path / "nowhere"),
                "--out",
                str(tmp_path / "o"),
                "--debug",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" in err and "minigrad: error:" in err


def test_bad_flag_is_one_line(capsys):
    assert main(["train", "--optimizer", "lbfgs"]) == 2
    _one_line_error_prefix = capsys.readouterr().err.strip().splitlines()
    assert len(_one_line_error_prefix) == 1 and "lbfgs" in _one_line_error_prefix[0]


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "minigrad",
            "train",
            "--model",
            "nope",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "unknown model 'nope'" in proc.stderr


# ----------------------------------------------------------------------------- resume overrides
SMALL = ["--limit-train", "32", "--limit-test", "32", "--batch-size", "16"]


def _records(out):
    return [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]


def test_resume_applies_new_hyperparameters(data_dir, tmp_path, monkeypatch):
    from minigrad import optim

    out = str(tmp_path / "r")
    assert _train(data_dir, out, "--epochs", "1", *SMALL) == 0  # sgd lr 0.01 momentum 0.9
    real_step = optim.SGD.step
    steps = []

    def step(self, *args, **kwargs):
        # the update each step really makes: d = g + wd*p; buf = m*buf + d; p -= lr*buf
        g = self.param_groups[0]
        p = g["params"][0]
        before = p.detach().numpy().copy()
        grad = p.grad.numpy().copy()
        buf = self.state[p]["momentum_buffer"].numpy().copy()
        result = real_step(self, *args, **kwargs)
        lr, m, wd = 0.05, 0.5, 0.1
        expected = before - np.float32(lr) * (np.float32(m) * buf + grad + np.float32(wd) * before)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-7)
        steps.append((g["lr"], g["momentum"], g["weight_decay"], g["nesterov"]))
        return result

    monkeypatch.setattr(optim.SGD, "step", step)
    assert (
        main(
            [
                "train",
                "--resume",
                "--out",
                out,
                "--epochs",
                "2",
                "--lr",
                "0.05",
                "--momentum",
                "0.5",
                "--weight-decay",
                "0.1",
            ]
        )
        == 0
    )
    assert len(steps) == 2 and set(steps) == {(0.05, 0.5, 0.1, False)}
    assert [r["lr"] for r in _records(out)] == [0.01, 0.05]
    group = _weights(out)["optimizer"]["param_groups"][0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.5, 0.1)
    opts = json.load(open(os.path.join(out, "summary.json")))["options"]
    assert (opts["lr"], opts["momentum"], opts["weight_decay"]) == (0.05, 0.5, 0.1)


def test_resume_with_new_seed_reshuffles(data_dir, tmp_path, monkeypatch):
    out = str(tmp_path / "s")
    assert _train(data_dir, out, "--epochs", "1", *SMALL) == 0
    seeds = []
    real = train_mod._train_epoch

    def spy(model, loader, *args, **kwargs):
        seeds.append(loader.seed)
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr(train_mod, "_train_epoch", spy)
    assert main(["train", "--resume", "--out", out, "--epochs", "2", "--seed", "7"]) == 0
    assert seeds == [7]
    assert _weights(out)["rng"]["loader"]["seed"] == 7


@pytest.mark.parametrize(
    "first, flags, needle",
    [
        ([], ["--optimizer", "adam"], "--optimizer adam"),
        ([], ["--schedule", "cosine"], "--schedule cosine"),
        (["--schedule", "onecycle"], ["--lr", "0.1"], "--lr 0.1"),
        (["--schedule", "onecycle"], ["--momentum", "0.5"], "--momentum 0.5"),
        (["--schedule", "cosine"], ["--epochs", "3"], "--epochs 3"),
        (["--schedule", "cosine"], ["--batch-size", "8"], "--batch-size 8"),
        (["--optimizer", "adam"], ["--momentum", "0.5"], "--momentum 0.5"),
    ],
)
def test_resume_refuses_changes_it_cannot_honour(data_dir, tmp_path, capsys, first, flags, needle):
    out = str(tmp_path / "x")
    assert _train(data_dir, out, "--epochs", "1", *SMALL, *first) == 0
    before = open(os.path.join(out, "metrics.jsonl")).read()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", out, *flags]) == 2
    _one_line_error(capsys, needle, "resumed run")
    assert open(os.path.join(out, "metrics.jsonl")).read() == before
    assert _weights(out)["epoch"] == 1


# ----------------------------------------------------------------------------- display
class _FakeBar:
    """Records what the training loop shows; iterates like tqdm."""

    bars: list = []

    def __init__(self, iterable=None, total=None, desc="", **kwargs):
        self.iterable, self.desc, self.postfixes = iterable, desc, []
        _FakeBar.bars.append(self)

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kwargs):
        self.postfixes.append(kwargs)

    def update(self, n=1):
        pass

    def close(self):
        pass


class _Clock:
    """A perf_counter that advances ``step`` seconds per call."""

    def __init__(self, step):
        self.t, self.step = 0.0, step

    def perf_counter(self):
        self.t += self.step
        return self.t


@pytest.mark.parametrize("seconds_per_call, expected", [(1.0, 6), (0.0, 2)])
def test_progress_refreshes_by_time(data_dir, tmp_path, monkeypatch, seconds_per_call, expected):
    monkeypatch.setattr("tqdm.auto.tqdm", _FakeBar)
    monkeypatch.setattr(train_mod, "time", _Clock(seconds_per_call))
    _FakeBar.bars = []
    assert (
        _train(
            data_dir,
            tmp_path / "p",
            "--epochs",
            "1",
            "--limit-train",
            "48",
            "--batch-size",
            "8",
            "--limit-test",
            "16",
        )
        == 0
    )
    (epoch_bar,) = [b for b in _FakeBar.bars if b.desc == "epoch 1/1"]
    # 6 batches: slow ones (1 s each) refresh every batch, instant ones first and last only
    assert len(epoch_bar.postfixes) == expected


def test_evaluation_shows_progress(data_dir, tmp_path, monkeypatch, lenet_run):
    monkeypatch.setattr("tqdm.auto.tqdm", _FakeBar)
    _FakeBar.bars = []
    assert _train(data_dir, tmp_path / "e", "--epochs", "1", *SMALL) == 0
    assert any("evaluating" in b.desc for b in _FakeBar.bars)
    _FakeBar.bars = []
    assert main(["evaluate", "--checkpoint", os.path.join(lenet_run, "checkpoint.npz")]) == 0
    assert any("evaluating" in b.desc for b in _FakeBar.bars)


def test_one_epoch_is_singular(data_dir, tmp_path, capsys, lenet_run):
    assert _train(data_dir, tmp_path / "one", "--epochs", "1", *SMALL) == 0
    out = capsys.readouterr().out
    assert "for 1 epoch:" in out and "1 epochs" not in out
    assert main(["evaluate", "--checkpoint", os.path.join(lenet_run, "checkpoint.npz")]) == 0
    out = capsys.readouterr().out
    assert "after 1 epoch:" in out and "1 epochs" not in out


@pytest.mark.parametrize("n", [1, 2, 5, 30])
def test_curves_have_whole_epoch_ticks(n):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from minigrad.app.train_files import curves_figure

    history = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "test_loss": 1.1 / e,
            "train_acc": 0.1 * e,
            "test_acc": 0.09 * e,
        }
        for e in range(1, n + 1)
    ]
    fig = curves_figure(history)
    try:
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)
