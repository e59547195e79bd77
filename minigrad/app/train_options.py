"""What a training run is: the recipes (defaults per model), the flags given on the command
line merged over them or over a resumed run's saved options, and the checks on the result.

``--resume`` keeps the saved options; a flag given again overrides one from the next step
on (``--lr``, ``--momentum``, ``--weight-decay``, ``--seed``, ``--epochs``, ``--batch-size``,
``--augment``, ``--label-smoothing``, ...), except where the saved optimizer or schedule state
could not honour it: those are refused with one line (``_refuse_resume_changes``).
"""

from __future__ import annotations

from ..models.registry import model_names
from .train_files import ENV_KEYS, OPTIONAL_RUN_KEYS, RUN_KEYS, CLIError

__all__ = ["NORMALIZATION", "RECIPES", "ADAM_LR", "MAX_WORKERS", "resolve_options"]

NORMALIZATION = {
    # recipe R1 (the PyTorch tutorial): Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    # per-channel statistics of the CIFAR-10 training set
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

# Default options per model family: the flags a user leaves out come from here.
RECIPES = {
    # Recipe R1 of the CIFAR-10 issue: the PyTorch tutorial's LeNet recipe.
    "lenet": dict(
        epochs=10,
        batch_size=32,
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        weight_decay=0.0,
        nesterov=False,
        schedule="none",
        augment=False,
        label_smoothing=0.0,
        normalize="half",
    ),
    # DAWNBench-style ResNet-9: crop+flip, per-channel normalisation, SGD+Nesterov, 1cycle.
    "resnet9": dict(
        epochs=10,
        batch_size=512,
        optimizer="sgd",
        lr=0.4,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
        schedule="onecycle",
        augment=True,
        label_smoothing=0.1,
        normalize="cifar",
    ),
}
ADAM_LR = 1e-3  # default --lr for adam/adamw when the recipe's optimizer is SGD
MAX_WORKERS = 256  # --num-workers above this is a typo (each worker is a thread)


def _recipe(model: str) -> dict:
    return dict(RECIPES["lenet" if model == "lenet" else "resnet9"])


# ----------------------------------------------------------------------------- options
def resolve_options(given: dict, saved: dict | None = None) -> tuple[dict, list[str]]:
    """Merge explicitly given options (``None`` = not given) over the saved run's options
    (``--resume``) or the model's recipe. Returns (options, notes about overrides)."""
    notes: list[str] = []
    model = given.get("model")
    if saved is not None:
        if model is not None and model.lower() != saved["model"]:
            raise CLIError(
                f"the checkpoint in {given.get('out')} is a {saved['model']!r} run, not "
                f"{model!r}: drop --model to resume it, or pick another --out for a new run"
            )
        opts = {k: saved.get(k, OPTIONAL_RUN_KEYS.get(k)) for k in RUN_KEYS}
        changed = [
            k
            for k in RUN_KEYS
            if k != "model" and given.get(k) is not None and given[k] != saved.get(k)
        ]
        _refuse_resume_changes(changed, saved, given)
        for k in changed:
            notes.append(
                f"--{k.replace('_', '-')} {given[k]} overrides the checkpoint's {saved.get(k)}"
            )
            opts[k] = given[k]
    else:
        model = (model or "lenet").lower()
        if model not in model_names():
            raise CLIError(f"unknown model {model!r}: choose one of {', '.join(model_names())}")
        opts = _recipe(model)
        opts["model"] = model
        opts["seed"] = 0
        opts["limit_train"] = None
        opts.update(OPTIONAL_RUN_KEYS)
        if given.get("optimizer") not in (None, opts["optimizer"]) and given.get("lr") is None:
            opts["lr"] = ADAM_LR if given["optimizer"] in ("adam", "adamw") else opts["lr"]
        if given.get("optimizer") in ("adam", "adamw") and given.get("weight_decay") is None:
            opts["weight_decay"] = 0.0 if given["optimizer"] == "adam" else 1e-2
        for k in RUN_KEYS:
            if given.get(k) is not None:
                opts[k] = given[k]
    if opts["optimizer"] != "sgd" or opts["momentum"] == 0:
        opts["nesterov"] = False
    for k in ENV_KEYS:
        opts[k] = given.get(k)
    _check_options(opts)
    return opts, notes


def _refuse_resume_changes(changed: list[str], saved: dict, given: dict) -> None:
    """--resume applies a new --lr, --momentum, --weight-decay, --seed, --augment, ... from the
    next step on; changes the saved optimizer or schedule state cannot honour are refused."""
    schedule = saved.get("schedule")
    fixed = {
        "optimizer": "the optimizer state (momentum buffers, Adam moments) belongs to it",
        "schedule": "the schedule's state belongs to it",
    }
    if saved.get("optimizer") != "sgd":
        fixed["momentum"] = f"{saved.get('optimizer')} has no momentum option"
    if schedule != "none":
        fixed["lr"] = f"the {schedule} schedule sets the lr at every step"
        fixed["epochs"] = (
            f"the {schedule} schedule was planned for {_plural(saved.get('epochs'), 'epoch')}"
        )
    if schedule == "onecycle":
        fixed["momentum"] = "the onecycle schedule sets the momentum at every step"
    if schedule in ("onecycle", "cosine"):
        why = f"the {schedule} schedule was planned for a fixed number of steps per epoch"
        fixed["batch_size"] = fixed["limit_train"] = why
    for k in changed:
        if k in fixed:
            flag = f"--{k.replace('_', '-')}"
            raise CLIError(
                f"{flag} {given[k]} cannot change the resumed run's {saved.get(k)} "
                f"({fixed[k]}): drop {flag}, or start a new run with another --out"
            )


def _check_options(o: dict) -> None:
    def need(cond, msg):
        if not cond:
            raise CLIError(msg)

    need(
        o["model"] in model_names(),
        f"unknown model {o['model']!r}: choose one of {', '.join(model_names())}",
    )
    need(o["epochs"] >= 1, f"--epochs must be at least 1, got {o['epochs']}")
    need(o["batch_size"] >= 1, f"--batch-size must be at least 1, got {o['batch_size']}")
    need(
        o["optimizer"] in ("sgd", "adam", "adamw"),
        f"unknown optimizer {o['optimizer']!r}: choose sgd, adam or adamw",
    )
    need(
        o["schedule"] in ("none", "cosine", "onecycle", "step"),
        f"unknown schedule {o['schedule']!r}: choose none, cosine, onecycle or step",
    )
    need(o["lr"] > 0, f"--lr must be positive, got {o['lr']}")
    need(0 <= o["momentum"] < 1, f"--momentum must be in [0, 1), got {o['momentum']}")
    need(o["weight_decay"] >= 0, f"--weight-decay must be >= 0, got {o['weight_decay']}")
    need(
        0 <= o["label_smoothing"] < 1,
        f"--label-smoothing must be in [0, 1), got {o['label_smoothing']}",
    )
    need(
        o.get("clip_grad_norm") is None or o["clip_grad_norm"] > 0,
        f"--clip-grad-norm must be positive, got {o.get('clip_grad_norm')}",
    )
    need(
        o.get("ema") is None or 0 < o["ema"] < 1,
        f"--ema must be a decay in (0, 1), e.g. 0.999, got {o.get('ema')}",
    )
    for k in ("limit_train", "limit_test"):
        need(o.get(k) is None or o[k] >= 1, f"--{k.replace('_', '-')} must be at least 1")
    need(o["normalize"] in NORMALIZATION, f"unknown normalisation {o['normalize']!r}")
    need(0 <= o["seed"] < 2**63, f"--seed must be in [0, 2**63), got {o['seed']}")
    workers = o.get("num_workers") or 0
    need(
        0 <= workers <= MAX_WORKERS,
        f"--num-workers must be in [0, {MAX_WORKERS}], got {workers} (each worker is a "
        "thread; 2-4 are enough to hide the data preparation)",
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ema(opts: dict, model):
    """``--ema DECAY``: an exponential moving average of the weights (and BN statistics),
    updated after every optimizer step (``optim.swa_utils.AveragedModel``)."""
    if not opts.get("ema"):
        return None
    from ..optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(opts["ema"]), use_buffers=True)


def _eval_model(model, ema):
    """What evaluation runs: the averaged weights with --ema, else the model."""
    return model if ema is None else ema.module
