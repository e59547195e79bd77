"""The files of a training run: checkpoint, ``metrics.jsonl``, ``summary.json``, curves.

Split out of ``minigrad/train.py`` (which holds the options and the loop). Every write is
atomic: a temporary file in the same folder, renamed over the target; on any failure
(``KeyboardInterrupt``, a full disk) the temporary file is removed and the previous file is
left as it was. A checkpoint is checked field by field when it is read, so a damaged or
hand-edited one gives a one-line ``CLIError`` naming the field, never a ``KeyError`` later.
"""

from __future__ import annotations

import json
import numbers
import os

import minigrad as mg

from .. import serialization
from ..models.registry import model_names

CHECKPOINT_FORMAT = "minigrad-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CURVES = "curves.png"

# Options that define the training run (saved in the checkpoint, restored by --resume).
RUN_KEYS = (
    "model",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "nesterov",
    "schedule",
    "augment",
    "label_smoothing",
    "normalize",
    "seed",
    "limit_train",
    "clip_grad_norm",
    "ema",
)
# Run options added after version 1 was defined: a checkpoint without them means "off".
OPTIONAL_RUN_KEYS = {"clip_grad_norm": None, "ema": None}
# Options of the environment (taken from the current command line, also on --resume).
ENV_KEYS = ("data_dir", "download", "device", "out", "num_workers", "limit_test", "expected_counts")


class CLIError(Exception):
    """A user-facing error: the CLI prints ``minigrad: error: <message>`` and exits with 2."""


# ----------------------------------------------------------------------------- text files
def write_text_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_metrics(out: str, history: list[dict]) -> None:
    write_text_atomic(
        os.path.join(out, METRICS), "".join(json.dumps(r, sort_keys=False) + "\n" for r in history)
    )


def curves_figure(history: list[dict], title: str = ""):
    """The matplotlib figure of :func:`write_curves` (loss and accuracy against epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, scale, label in (
        (ax1, "loss", 1, "cross-entropy loss"),
        (ax2, "acc", 100, "accuracy (%)"),
    ):
        ax.plot(epochs, [scale * r[f"train_{key}"] for r in history], "o-", label="train")
        ax.plot(epochs, [scale * r[f"test_{key}"] for r in history], "o-", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
        if len(epochs) <= 12:  # one tick per epoch (MaxNLocator falls back to fractions)
            ax.set_xticks(epochs)
            if len(epochs) == 1:
                ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_curves(history: list[dict], path: str, title: str = "") -> str | None:
    """Loss and accuracy against epoch (train and test) as a PNG; returns a note when
    matplotlib is missing (the file is then skipped)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return (
            f"matplotlib is not installed: skipped {os.path.basename(path)} "
            "(pip install 'minigrad[plot]')"
        )
    fig = curves_figure(history, title)
    tmp = f"{path}.{os.getpid()}.tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        plt.close(fig)
    return None


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    path,
    *,
    model,
    optimizer,
    scheduler,
    loader,
    epoch,
    history,
    opts,
    classes,
    argv,
    epoch_seed,
    ema=None,
) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": opts["model"],
        "epoch": epoch,  # epochs finished
        "options": {k: opts.get(k) for k in RUN_KEYS},
        "environment": {k: opts.get(k) for k in ENV_KEYS if k != "expected_counts"},
        "expected_counts": opts.get("expected_counts"),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "rng": {
            "minigrad": mg.get_rng_state(),
            "loader": loader.state_dict(),
            "epoch_seed": epoch_seed,
        },
        "history": history,
        "classes": list(classes),
        "argv": list(argv),
    }
    serialization.save(ckpt, path)


def load_checkpoint(path: str) -> dict:
    """Read and check a training checkpoint; problems become one-line ``CLIError``s."""
    if not os.path.isfile(path):
        raise CLIError(
            f"no checkpoint at {path}: pass the checkpoint.npz that "
            "`minigrad train --out DIR` wrote"
        )
    try:
        ckpt = serialization.load(path, map_location="cpu")
    except (ValueError, RuntimeError, OSError) as e:
        msg = " ".join(str(e).split())
        raise CLIError(
            f"{msg} -- cannot read {path}: pass a checkpoint.npz written by "
            "`minigrad train` (re-run training if it is damaged)"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CLIError(
            f"{path} is a minigrad file but not a training checkpoint: pass the "
            "checkpoint.npz that `minigrad train` wrote"
        )
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CLIError(
            f"{path} has checkpoint version {ckpt.get('version')}, this minigrad "
            f"reads version {CHECKPOINT_VERSION}: re-run training with this version"
        )
    if ckpt.get("model_name") not in model_names():
        raise CLIError(
            f"{path} holds an unknown model {ckpt.get('model_name')!r} (known: "
            f"{', '.join(model_names())})"
        )
    problem = checkpoint_problem(ckpt)
    if problem:
        raise CLIError(
            f"{path} is damaged or was edited by hand: {problem}; re-run training "
            "(or restore the checkpoint.npz that `minigrad train` wrote)"
        )
    return ckpt


# The type every field must have: int/float/str/bool/dict/list, "num" (int or float, not
# bool), a tuple of those (any one), or None allowed where listed.
_INT, _NUM, _STR, _BOOL = "int", "num", "str", "bool"
_OPTION_TYPES = {
    "model": _STR,
    "epochs": _INT,
    "batch_size": _INT,
    "optimizer": _STR,
    "lr": _NUM,
    "momentum": _NUM,
    "weight_decay": _NUM,
    "nesterov": _BOOL,
    "schedule": _STR,
    "augment": _BOOL,
    "label_smoothing": _NUM,
    "normalize": _STR,
    "seed": _INT,
    "limit_train": (_INT, None),
    "clip_grad_norm": (_NUM, None),
    "ema": (_NUM, None),
}
_ENV_TYPES = {
    "data_dir": (_STR, None),
    "download": (_BOOL, None),
    "device": (_STR, None),
    "out": (_STR, None),
    "num_workers": (_INT, None),
    "limit_test": (_INT, None),
}
_HISTORY_TYPES = {
    k: _NUM for k in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
} | {"epoch": _INT}


def _is(value, kind) -> bool:
    if isinstance(kind, tuple):
        return any(_is(value, k) for k in kind)
    if kind is None:
        return value is None
    if kind == _BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, numbers.Integral)
    if kind == _NUM:
        return isinstance(value, numbers.Real)
    return isinstance(value, str)


def _fields(d: dict, types: dict, where: str) -> str | None:
    for key, kind in types.items():
        if key not in d:
            return f"{where} has no {key!r}"
        if not _is(d[key], kind):
            return f"{where}[{key!r}] is {d[key]!r} ({type(d[key]).__name__})"
    return None


def checkpoint_problem(ckpt: dict) -> str | None:
    """The first thing wrong with a checkpoint's structure (``None`` when it is sound)."""
    need = {
        "epoch": int,
        "options": dict,
        "environment": dict,
        "model": dict,
        "optimizer": dict,
        "rng": dict,
        "history": list,
        "classes": list,
    }
    for key, kind in need.items():
        if key not in ckpt:
            return f"it has no {key!r}"
        if not isinstance(ckpt[key], kind) or isinstance(ckpt[key], bool):
            return f"{key!r} is a {type(ckpt[key]).__name__}, not a {kind.__name__}"
    if ckpt["epoch"] < 0:
        return f"'epoch' is {ckpt['epoch']}"
    problem = _fields(OPTIONAL_RUN_KEYS | ckpt["options"], _OPTION_TYPES, "options") or _fields(
        ckpt["environment"], _ENV_TYPES, "environment"
    )
    if problem:
        return problem
    if not isinstance(ckpt.get("scheduler"), dict | None):
        return "'scheduler' is neither None nor a dict"
    counts = ckpt.get("expected_counts")
    if counts is not None and (
        not isinstance(counts, dict)
        or _fields(counts, {"train_batch": _INT, "test": _INT}, "expected_counts")
    ):
        return f"'expected_counts' is {counts!r}"
    rng = ckpt["rng"]
    if not isinstance(rng.get("minigrad"), dict):
        return "rng has no generator state 'minigrad'"
    if not isinstance(rng.get("loader"), dict):
        return "rng has no DataLoader state 'loader'"
    problem = _fields(rng["loader"], {"seed": _INT, "epoch": _INT}, "rng['loader']")
    if problem:
        return problem
    history = ckpt["history"]
    if len(history) != ckpt["epoch"]:
        return f"'history' has {len(history)} records for {ckpt['epoch']} epochs"
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            return f"history[{i}] is a {type(record).__name__}, not a dict"
        problem = _fields(record, _HISTORY_TYPES, f"history[{i}]")
        if problem:
            return problem
    if not all(isinstance(c, str) for c in ckpt["classes"]):
        return "'classes' are not all names (str)"
    return None
