"""Evaluation for ``minigrad train`` / ``minigrad evaluate``: the test pass, the per-class
report, and a checkpoint's test accuracy.

Part of the app (``train.py`` runs the loop and calls :func:`_evaluate` after every epoch);
it imports the library, never the reverse.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg

from .. import backend
from ..distributed import launch as _dist
from ..models.registry import get_model
from ..tensor import data_of
from .train_data import _device, _limit, _loader, _to_tensor, _transforms, load_cifar
from .train_files import CLIError, load_checkpoint
from .train_options import _plural

PROGRESS_SECONDS = 0.5  # the progress bars' loss/accuracy refresh interval


def _np(x) -> np.ndarray:
    if isinstance(x, mg.Tensor):
        return backend.to_device(data_of(x), backend.CPU)
    return np.asarray(x)


def classification_report(y_true, y_pred, classes) -> dict:
    """Confusion matrix (rows: true class, columns: predicted) and per-class metrics."""
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        f1 = np.where(
            precision + recall > 0,
            2 * precision * recall / np.maximum(precision + recall, 1e-300),
            0.0,
        )
    per_class = {
        c: {
            "accuracy": float(recall[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    total = int(cm.sum())
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "correct": int(tp.sum()),
        "total": total,
        "per_class": per_class,
        "macro_f1": float(f1.mean()),
        "confusion_matrix": cm.tolist(),
    }


def _evaluate(model, loader, device, label_smoothing=0.0, desc="evaluating"):
    """(mean loss, labels, predictions) over ``loader`` in eval mode, with a progress bar."""
    from tqdm.auto import tqdm

    from ..nn import functional as F

    was_training = model.training
    model.eval()
    loss_sum, n = 0.0, 0
    labels, preds = [], []
    with mg.no_grad():
        for x, y in tqdm(
            loader,
            total=len(loader),
            desc=desc,
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            disable=_dist.quiet(),
            mininterval=PROGRESS_SECONDS,
        ):
            x, y = _to_tensor(x, device), _to_tensor(y, device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            b = int(y.shape[0])
            loss_sum += float(loss.item()) * b
            n += b
            labels.append(_np(y))
            preds.append(_np(logits.argmax(1)))
    model.train(was_training)
    return loss_sum / max(n, 1), np.concatenate(labels), np.concatenate(preds)


def _load_model_state(model, state, path, name) -> None:
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        msg = " ".join(str(e).split())
        if len(msg) > 300:
            msg = msg[:300] + "..."
        raise CLIError(
            f"{path}: its weights do not fit a {name!r} model ({msg}); the "
            "checkpoint is from another model or damaged"
        ) from e


# ----------------------------------------------------------------------------- evaluate
def evaluate_checkpoint(
    path: str,
    data_dir: str | None = None,
    device: str | None = None,
    model: str | None = None,
    batch_size: int = 500,
    limit_test: int | None = None,
    expected_counts=None,
) -> dict:
    """Test accuracy and per-class metrics of the model in a training checkpoint."""
    ckpt = load_checkpoint(path)
    name = ckpt["model_name"]
    if model is not None and model.lower() != name:
        raise CLIError(
            f"{path} holds a {name!r} model, not {model!r}: drop --model or pass "
            f"a {model!r} checkpoint"
        )
    opts = dict(ckpt["options"])
    dev = _device(device)
    data_dir = data_dir or ckpt["environment"].get("data_dir") or "data"
    counts = expected_counts or ckpt.get("expected_counts")
    full_test = load_cifar(data_dir, False, False, counts)
    classes = list(ckpt.get("classes") or full_test.classes)
    test_set = _limit(full_test, limit_test)
    mg.manual_seed(opts.get("seed") or 0)
    net = get_model(name, num_classes=len(classes))
    state = ckpt["model"]
    if isinstance(ckpt.get("ema"), dict):  # an --ema run: evaluate the averaged weights
        state = {k[len("module.") :]: v for k, v in ckpt["ema"].items() if k.startswith("module.")}
    _load_model_state(net, state, path, name)
    if dev.type != "cpu":
        net.to(dev)
    loader = _loader(
        test_set, {"num_workers": 0}, batch_size, False, _transforms(opts, train=False)
    )
    loss, y_true, y_pred = _evaluate(net, loader, dev)
    report = classification_report(y_true, y_pred, classes)
    return {
        "model": name,
        "epoch": int(ckpt["epoch"]),
        "test_accuracy": report["accuracy"],
        "test_loss": loss,
        **report,
    }


def format_report(result: dict) -> str:
    lines = [
        f"{result['model']} after {_plural(result['epoch'], 'epoch')}: test accuracy "
        f"{100 * result['test_accuracy']:.2f}% ({result['correct']}/{result['total']}), "
        f"test loss {result['test_loss']:.4f}",
        f"{'class':<12} {'accuracy':>9} {'precision':>10} {'recall':>8} {'f1':>7}",
    ]
    for c, m in result["per_class"].items():
        lines.append(
            f"{c:<12} {100 * m['accuracy']:8.2f}% {100 * m['precision']:9.2f}% "
            f"{100 * m['recall']:7.2f}% {m['f1']:7.4f}"
        )
    return "\n".join(lines)
