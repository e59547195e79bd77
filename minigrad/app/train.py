"""The CIFAR-10 training loop behind ``minigrad train`` and ``minigrad evaluate``.

``cli.py`` only parses arguments; everything here takes a plain ``dict`` of options so it can
be driven from Python as well.

Reproducibility. Every random draw derives from ``--seed`` and the epoch number:

* weight initialisation: ``minigrad.manual_seed(seed)`` right before the model is built;
* shuffling and augmentation: the DataLoader's order and per-batch transform generator are
  pure functions of ``(seed, epoch, batch index)`` (see ``minigrad/data/dataloader.py``),
  and the loader is told the epoch explicitly (``set_epoch``) before every epoch;
* anything else drawing from minigrad's host generator during an epoch (dropout): the
  generator is reseeded from ``(seed, epoch)`` at the start of every epoch.

So a run resumed from the checkpoint of epoch ``k`` replays epochs ``k+1..`` exactly as the
uninterrupted run does, and ends with bit-identical weights on the CPU.

Checkpoints (``checkpoint.npz``, written with ``minigrad.save``, atomically, at every epoch
end) hold the model, optimizer and scheduler state dicts, the RNG states (minigrad's host
generator and the DataLoader's seed/epoch), the finished epoch, the metric history, the model
name and the resolved options.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

import minigrad as mg

from ..data.dataloader import WorkerStartError
from ..distributed import launch as _dist
from ..models.registry import get_model, uses_batchnorm
from .train_data import _device, _limit, _loader, _to_tensor, _transforms, load_cifar
from .train_eval import (
    PROGRESS_SECONDS,
    _evaluate,
    _load_model_state,
    _np,
    classification_report,
    evaluate_checkpoint,
    format_report,
)
from .train_files import (
    CHECKPOINT,
    CURVES,
    ENV_KEYS,
    METRICS,
    RUN_KEYS,
    SUMMARY,
    CLIError,
    load_checkpoint,
    save_checkpoint,
    write_curves,
)
from .train_files import write_metrics as _write_metrics
from .train_files import write_text_atomic as _write_text_atomic
from .train_options import (
    NORMALIZATION,
    RECIPES,
    _ema,
    _eval_model,
    _plural,
    resolve_options,
)

__all__ = [
    "CLIError",
    "RECIPES",
    "NORMALIZATION",
    "resolve_options",
    "train",
    "evaluate_checkpoint",
    "load_checkpoint",
    "classification_report",
    "format_report",
    "load_cifar",
]


def _echo(msg: str = "") -> None:
    if _dist.is_main():  # one voice in a multi-rank run
        print(msg, flush=True)


# ----------------------------------------------------------------------------- pieces
def _epoch_seed(seed: int, epoch: int) -> int:
    """The seed of minigrad's host generator during ``epoch`` (independent streams)."""
    return int(
        np.random.SeedSequence([seed, 0x6D67, epoch]).generate_state(1, np.uint64)[0]
        >> np.uint64(1)
    )


def _optimizer(opts: dict, params):
    from .. import optim

    if opts["optimizer"] == "sgd":
        return optim.SGD(
            params,
            lr=opts["lr"],
            momentum=opts["momentum"],
            weight_decay=opts["weight_decay"],
            nesterov=bool(opts["nesterov"]),
        )
    cls = optim.Adam if opts["optimizer"] == "adam" else optim.AdamW
    return cls(params, lr=opts["lr"], weight_decay=opts["weight_decay"])


def _scheduler(opts: dict, optimizer, steps_per_epoch: int):
    """(scheduler or None, 'batch' | 'epoch'): when ``scheduler.step()`` is called."""
    from ..optim import lr_scheduler

    s, epochs = opts["schedule"], opts["epochs"]
    if s == "none":
        return None, "epoch"
    if s == "step":  # /10 at 1/3 and 2/3 of the run
        return lr_scheduler.StepLR(
            optimizer, step_size=max(1, math.ceil(epochs / 3)), gamma=0.1
        ), "epoch"
    if s == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch), "batch"
    return lr_scheduler.OneCycleLR(
        optimizer, max_lr=opts["lr"], epochs=epochs, steps_per_epoch=steps_per_epoch
    ), "batch"


# ----------------------------------------------------------------------------- training
def _on_epoch_end(epoch: int) -> None:
    """Hook called after each epoch's checkpoint is written (tests simulate a kill here)."""


def _train_epoch(
    model, loader, optimizer, scheduler, sched_unit, opts, device, epoch, tqdm, ema=None
):
    from ..nn import functional as F
    from ..nn.utils import clip_grad_norm_

    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    t0 = shown = time.perf_counter()
    bar = tqdm(
        loader,
        total=len(loader),
        desc=f"epoch {epoch}/{opts['epochs']}",
        unit="batch",
        leave=False,
        dynamic_ncols=True,
        disable=_dist.quiet(),
        mininterval=0.5,
    )
    for i, (x, y) in enumerate(bar):
        x, y = _to_tensor(x, device), _to_tensor(y, device)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=opts["label_smoothing"])
        optimizer.zero_grad()
        loss.backward()
        if opts.get("clip_grad_norm"):
            clip_grad_norm_(model.parameters(), opts["clip_grad_norm"])
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if scheduler is not None and sched_unit == "batch":
            scheduler.step()
        b = int(y.shape[0])
        lv = float(loss.item())
        if not math.isfinite(lv):
            raise FloatingPointError(
                f"the training loss became {lv} at epoch {epoch}, batch {i + 1}: lower --lr"
            )
        loss_sum += lv * b
        correct += int((_np(logits.argmax(1)) == _np(y)).sum())
        seen += b
        now = time.perf_counter()
        if i == 0 or now - shown >= PROGRESS_SECONDS or i + 1 == len(loader):
            shown, dt = now, now - t0
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}",
                acc=f"{100 * correct / seen:.2f}%",
                img_s=f"{seen / max(dt, 1e-9):.0f}",
                refresh=False,
            )
    bar.close()
    if scheduler is not None and sched_unit == "epoch":
        scheduler.step()
    seconds = time.perf_counter() - t0
    loss_sum, correct, seen = _dist.reduce_sums(loss_sum, correct, seen)  # over all ranks
    return loss_sum / max(seen, 1), correct / max(seen, 1), seen, seconds


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``: ``checkpoint`` holds epoch ``epoch`` (0: nothing was saved)."""

    def __init__(self, out: str, checkpoint: str, epoch: int):
        super().__init__(f"interrupted; last saved epoch: {epoch}")
        self.out, self.checkpoint, self.epoch = out, checkpoint, epoch


def _check_out(out: str) -> None:
    """Refuse an --out that cannot hold the run's files, before any work is done."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file, not a folder: pass a folder for the run's files")
    parent = out
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    parent = parent or "."
    if not os.path.isdir(parent):
        raise CLIError(
            f"--out {out}: {parent} is a file, not a folder: pass a folder for the run's files"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(
            f"--out {out} is not writable (no write permission in {parent}): choose another --out"
        )


def _write(path: str, saved_epoch: int, write, *args, **kwargs):
    """``write(*args, **kwargs)``; an OSError (disk full, permissions) becomes a CLIError."""
    if not _dist.is_main():  # rank 0 alone writes metrics, checkpoints and curves
        return None
    try:
        return write(*args, **kwargs)
    except OSError as e:
        kept = (
            f"the checkpoint of epoch {saved_epoch} is kept"
            if saved_epoch
            else "no checkpoint was saved"
        )
        raise CLIError(
            f"could not write {path} ({e.strerror or e}): {kept}; free some space "
            "or choose another --out, then run again"
        ) from e


def _apply_resume_overrides(optimizer, loader, opts: dict, saved: dict) -> None:
    """After loading the saved optimizer and loader state, make the hyperparameters given on
    the command line the ones the next step uses (the saved param groups hold the old ones)."""
    for group in optimizer.param_groups:
        for k in ("lr", "momentum", "weight_decay", "nesterov"):
            if k in group and opts[k] != saved.get(k):
                group[k] = type(group[k])(opts[k])
    if opts["seed"] != saved.get("seed"):
        loader.seed = int(opts["seed"])


def train(given: dict, argv: list[str] | None = None) -> dict:
    """Run ``minigrad train`` with options ``given`` (CLI names, ``None`` = not given).

    Returns the summary dict (also written to ``OUT/summary.json``). Ctrl-C raises
    :class:`TrainingInterrupted` saying which epoch, if any, the checkpoint holds.
    """
    argv = list(argv if argv is not None else sys.argv[1:])
    out = given.get("out") or os.path.join("runs", (given.get("model") or "lenet").lower())
    _check_out(out)
    progress = {"saved_epoch": 0}
    try:
        return _train(dict(given, out=out), argv, progress)
    except WorkerStartError as e:
        raise CLIError(f"{e}: pass a smaller --num-workers (0 builds batches inline)") from e
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted):
            raise
        raise TrainingInterrupted(
            out, os.path.join(out, CHECKPOINT), progress["saved_epoch"]
        ) from e


def _train(given: dict, argv: list[str], progress: dict) -> dict:
    from tqdm.auto import tqdm

    out = given["out"]
    if _dist.setup(given.get("device"), CLIError) > 1:  # under mpiexec: join the ranks
        _echo(f"data parallel over {_dist.world_size()} MPI ranks; --batch-size is per rank")
    ckpt_path = os.path.join(out, CHECKPOINT)
    ckpt = None
    if given.get("resume"):
        if os.path.exists(ckpt_path):
            ckpt = load_checkpoint(ckpt_path)
        else:
            _echo(f"note: no checkpoint in {out} yet; starting a new run")
    elif os.path.exists(ckpt_path):
        raise CLIError(
            f"{out} already holds a run ({CHECKPOINT}): add --resume to continue "
            "it, or choose another --out (or delete that folder)"
        )
    saved = None
    if ckpt is not None:
        saved = dict(ckpt["options"])
        saved["model"] = ckpt["model_name"]
        for k, v in ckpt["environment"].items():  # data dir, device, test subset, workers
            if given.get(k) is None and k not in ("out", "download"):
                given[k] = v
        if given.get("expected_counts") is None:
            given["expected_counts"] = ckpt.get("expected_counts")
    opts, notes = resolve_options(given, saved)
    opts["data_dir"] = opts.get("data_dir") or "data"
    for n in notes:
        _echo(f"note: {n}")
    device = _device(opts.get("device"))

    # data (errors here are the user's: missing/truncated files, bad archive)
    train_set = load_cifar(
        opts["data_dir"], True, bool(opts.get("download")), opts.get("expected_counts")
    )
    test_set = load_cifar(opts["data_dir"], False, False, opts.get("expected_counts"))
    classes = list(train_set.classes)
    train_set = _limit(train_set, opts["limit_train"])
    test_set = _limit(test_set, opts.get("limit_test"))
    drop_last = uses_batchnorm(opts["model"]) and len(train_set) > opts["batch_size"]
    train_loader = _loader(
        train_set,
        opts,
        opts["batch_size"],
        True,
        _transforms(opts, train=True),
        drop_last=drop_last,
        seed=opts["seed"],
    )
    train_loader = _dist.shard_loader(train_loader)  # this rank's share (several ranks)
    test_loader = _loader(
        test_set, opts, max(opts["batch_size"], 500), False, _transforms(opts, train=False)
    )
    steps = len(train_loader)
    if steps == 0:
        raise CLIError(
            f"the training set has {len(train_set)} images, fewer than one batch "
            f"of {opts['batch_size']}: lower --batch-size or raise --limit-train"
        )

    # model, optimizer, schedule: initialisation is a function of the seed only
    mg.manual_seed(opts["seed"])
    model = get_model(opts["model"], num_classes=len(classes))
    if device.type != "cpu":
        model.to(device)
    optimizer = _optimizer(opts, model.parameters())
    scheduler, sched_unit = _scheduler(opts, optimizer, steps)
    ema = _ema(opts, model)
    start_epoch, history = 0, []
    if ckpt is not None:
        _load_model_state(model, ckpt["model"], ckpt_path, opts["model"])
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt["scheduler"] is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            mg.set_rng_state(ckpt["rng"]["minigrad"])
            train_loader.load_state_dict(ckpt["rng"]["loader"])
            if ema is not None and ckpt.get("ema") is not None:
                ema.load_state_dict(ckpt["ema"])
        except (KeyError, ValueError, TypeError) as e:
            msg = " ".join(str(e).split())
            raise CLIError(
                f"{ckpt_path}: its optimizer, schedule or random state does not fit "
                f"the run ({msg}); the checkpoint is damaged"
            ) from e
        _apply_resume_overrides(optimizer, train_loader, opts, saved)
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        progress["saved_epoch"] = start_epoch
        _echo(f"resuming {opts['model']} from {ckpt_path} after epoch {start_epoch}")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create --out {out} ({e.strerror or e})") from e
    metrics_path = os.path.join(out, METRICS)
    if start_epoch == 0:
        _write(metrics_path, 0, _write_metrics, out, [])

    n_params = sum(p.numel() for p in model.parameters())
    _echo(
        f"training {opts['model']} ({n_params:,} parameters) on {device} for "
        f"{_plural(opts['epochs'], 'epoch')}: {len(train_set)} train / {len(test_set)} test "
        f"images, batch {opts['batch_size']}, {opts['optimizer']} lr {opts['lr']}, "
        f"schedule {opts['schedule']}, augment {'on' if opts['augment'] else 'off'}"
    )

    net = _dist.wrap_model(model)  # DistributedDataParallel with several ranks
    final = None
    for epoch in range(start_epoch, opts["epochs"]):
        mg.manual_seed(_epoch_seed(opts["seed"], epoch))
        train_loader.set_epoch(epoch)
        lr = float(optimizer.param_groups[0]["lr"])
        tr_loss, tr_acc, seen, secs = _train_epoch(
            net, train_loader, optimizer, scheduler, sched_unit, opts, device, epoch + 1, tqdm, ema
        )
        t_eval = time.perf_counter()
        te_loss, y_true, y_pred = _evaluate(
            _eval_model(model, ema), test_loader, device, desc=f"epoch {epoch + 1}: evaluating"
        )
        eval_secs = time.perf_counter() - t_eval
        te_acc = float((y_true == y_pred).mean()) if y_true.size else 0.0
        record = {
            "epoch": epoch + 1,
            "train_loss": tr_loss,
            "train_acc": tr_acc,
            "test_loss": te_loss,
            "test_acc": te_acc,
            "lr": lr,
            "seconds": secs,
            "eval_seconds": eval_secs,
            "images_per_second": seen / max(secs, 1e-9),
        }
        history.append(record)
        train_loader.set_epoch(epoch + 1)
        _write(
            ckpt_path,
            progress["saved_epoch"],
            save_checkpoint,
            ckpt_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            loader=train_loader,
            epoch=epoch + 1,
            history=history,
            opts=opts,
            classes=classes,
            argv=argv,
            epoch_seed=_epoch_seed(opts["seed"], epoch + 1),
            ema=ema,
        )
        progress["saved_epoch"] = epoch + 1
        _write(metrics_path, epoch + 1, _write_metrics, out, history)
        _echo(
            f"epoch {epoch + 1:>3}/{opts['epochs']}  train loss {tr_loss:.4f} "
            f"acc {100 * tr_acc:6.2f}%  |  test loss {te_loss:.4f} acc {100 * te_acc:6.2f}%"
            f"  |  {secs:.1f} s ({record['images_per_second']:.0f} img/s)"
        )
        final = (te_loss, y_true, y_pred)
        _on_epoch_end(epoch + 1)

    if final is None:  # resumed a run that had already finished: evaluate again
        _echo(f"the run in {out} already finished {_plural(start_epoch, 'epoch')}; re-evaluating")
        te_loss, y_true, y_pred = _evaluate(_eval_model(model, ema), test_loader, device)
        final = (te_loss, y_true, y_pred)
    done = progress["saved_epoch"]
    _write(metrics_path, done, _write_metrics, out, history)
    curves_path = os.path.join(out, CURVES)
    note = _write(
        curves_path,
        done,
        write_curves,
        history,
        curves_path,
        title=f"minigrad {opts['model']} on CIFAR-10",
    )
    if note:
        _echo(f"note: {note}")
    te_loss, y_true, y_pred = final
    report = classification_report(y_true, y_pred, classes)
    secs = [r["seconds"] for r in history]
    summary = {
        "model": opts["model"],
        "test_accuracy": report["accuracy"],
        "test_loss": te_loss,
        "test_correct": report["correct"],
        "test_images": report["total"],
        "train_loss": history[-1]["train_loss"] if history else None,
        "train_accuracy": history[-1]["train_acc"] if history else None,
        "epochs": len(history),
        "seconds_per_epoch": secs,
        "mean_seconds_per_epoch": float(np.mean(secs)) if secs else None,
        "total_train_seconds": float(np.sum(secs)),
        "classes": classes,
        "per_class": report["per_class"],
        "macro_f1": report["macro_f1"],
        "confusion_matrix": report["confusion_matrix"],
        "confusion_matrix_axes": "rows: true class, columns: predicted class",
        "options": {k: opts.get(k) for k in RUN_KEYS + ENV_KEYS if k != "expected_counts"},
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "openmp_threads": mg.backend_info().get("openmp_threads"),
        "command": " ".join(["minigrad", *argv]),
        "resumed": ckpt is not None,
        "minigrad_version": mg.__version__,
    }
    summary_path = os.path.join(out, SUMMARY)
    _write(
        summary_path, done, _write_text_atomic, summary_path, json.dumps(summary, indent=2) + "\n"
    )
    _echo(
        f"test accuracy {100 * report['accuracy']:.2f}% ({report['correct']}/"
        f"{report['total']}), test loss {te_loss:.4f}; wrote {METRICS}, {CHECKPOINT}, "
        f"{'' if note else CURVES + ', '}{SUMMARY} to {out}"
    )
    return summary
