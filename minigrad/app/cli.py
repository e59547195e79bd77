"""``minigrad`` command line: train, evaluate, conformance, info, bench, data.

Parsing only; the work is in ``minigrad/train.py`` (and ``minigrad/tools/conformance.py``).
User errors (missing or damaged data, unknown model, a checkpoint of another model, bad
flags) print one line ``minigrad: error: ...`` saying what to do and exit with status 2;
``--debug`` shows the traceback as well. Ctrl-C exits with 130 after saying how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Commands implemented in minigrad/tools/ (see _tool_module): name -> one-line help.
TOOLS = {
    "info": "report the build, devices, kernel variants and versions",
    "bench": "benchmark the kernels side by side with PyTorch",
    "data": "check a CIFAR-10 copy, or convert image folders to it",
}


def _tool_module(name: str):
    """The module in minigrad/tools/ that runs ``minigrad <name>`` (imported on use)."""
    if name == "info":
        from .tools import info as module
    elif name == "bench":
        from .tools import bench as module
    else:
        from .tools import data as module
    return module


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage dump) and exits with 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"minigrad: error: {message} (see `{self.prog} --help`)\n")


def _counts(text: str) -> dict:
    """Hidden ``--expected-counts TRAIN_PER_BATCH,TEST`` for tiny synthetic CIFAR copies."""
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected TRAIN_PER_BATCH,TEST") from None
    return {"train_batch": a, "test": b}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def _at_least_one(text: str) -> int:
    v = _positive_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="minigrad",
        description="minigrad: train and evaluate CIFAR-10 models "
        "with a from-scratch deep-learning engine.",
    )
    sub = p.add_subparsers(
        dest="command", metavar="{train,evaluate,conformance,info,bench,data}", parser_class=_Parser
    )

    t = sub.add_parser(
        "train",
        help="train a CIFAR-10 model",
        description="Train a model on CIFAR-10. Flags left out take the model's recipe "
        "defaults (lenet: recipe R1, SGD lr 0.01 momentum 0.9, batch 32, 10 epochs, no "
        "augmentation, mean/std 0.5; resnet9*: crop+flip, per-channel normalisation, SGD "
        "Nesterov lr 0.4 with 1cycle, weight decay 5e-4, batch 512, label smoothing 0.1, "
        "10 epochs). With --resume they come from the checkpoint.",
    )
    t.add_argument(
        "--task",
        default="cifar10",
        choices=["cifar10", "charlm", "reverse"],
        help="cifar10 (default); charlm: character LM on --text FILE; reverse: "
        "reverse digit sequences of --length",
    )
    t.add_argument(
        "--arch",
        default=None,
        choices=["lstm", "transformer"],
        help="sequence tasks: the model (charlm default lstm, reverse transformer)",
    )
    t.add_argument("--text", default=None, metavar="FILE", help="charlm: the training text")
    t.add_argument("--steps", type=_positive_int, default=None, help="sequence tasks: steps")
    t.add_argument(
        "--length", type=_positive_int, default=None, help="reverse: sequence length (20)"
    )
    t.add_argument(
        "--model",
        default=None,
        help="lenet (default), resnet9, resnet9-small (width 0.5), resnet9-tiny (width 0.25)",
    )
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--optimizer", default=None, choices=["sgd", "adam", "adamw"])
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (the peak lr with --schedule onecycle)",
    )
    t.add_argument("--momentum", type=float, default=None, help="SGD momentum")
    t.add_argument("--weight-decay", type=float, default=None)
    t.add_argument(
        "--schedule",
        default=None,
        choices=["none", "cosine", "onecycle", "step"],
        help="lr schedule: none, cosine (per batch, to 0), onecycle (per batch), "
        "step (x0.1 after each third of the epochs)",
    )
    t.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crop (32, padding 4) + horizontal flip",
    )
    t.add_argument("--label-smoothing", type=float, default=None)
    t.add_argument(
        "--clip-grad-norm",
        type=float,
        default=None,
        metavar="MAX_NORM",
        help="clip the gradients' joint 2-norm to MAX_NORM before each step (off)",
    )
    t.add_argument(
        "--ema",
        type=float,
        default=None,
        metavar="DECAY",
        help="keep an exponential moving average of the weights (e.g. 0.999); "
        "evaluation, the summary and `minigrad evaluate` use the averaged weights",
    )
    t.add_argument("--device", default=None, help="cpu (default) or cuda[:N]")
    t.add_argument(
        "--data-dir",
        default=None,
        help="folder with cifar-10-batches-py/ or cifar-10-python.tar.gz (default ./data)",
    )
    t.add_argument(
        "--download",
        action="store_true",
        help="download the official archive into --data-dir if it is missing",
    )
    t.add_argument("--seed", type=_positive_int, default=None, help="seed of every random draw (0)")
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    t.add_argument(
        "--resume", action="store_true", help="continue the run whose checkpoint.npz is in --out"
    )
    t.add_argument(
        "--limit-train",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on the first N training images only",
    )
    t.add_argument(
        "--limit-test",
        type=_positive_int,
        default=None,
        metavar="N",
        help="evaluate on the first N test images only",
    )
    t.add_argument(
        "--num-workers",
        type=_positive_int,
        default=None,
        help="background threads preparing batches, default 0 (results do not depend on it)",
    )
    t.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="data-parallel training on N local processes (MPI ranks; "
        "needs the mpi extra); --batch-size is per process",
    )
    t.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    t.add_argument("--expected-counts", type=_counts, default=None, help=argparse.SUPPRESS)

    e = sub.add_parser(
        "evaluate",
        help="test accuracy of a saved checkpoint",
        description="Report test accuracy and per-class metrics of the model "
        "in a checkpoint written by `minigrad train`.",
    )
    e.add_argument("--checkpoint", required=True, metavar="PATH")
    e.add_argument(
        "--data-dir", default=None, help="CIFAR-10 folder (default: the one the run was trained on)"
    )
    e.add_argument("--model", default=None, help="fail unless the checkpoint holds this model")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=_at_least_one, default=500)
    e.add_argument("--limit-test", type=_at_least_one, default=None, metavar="N")
    e.add_argument(
        "--json", default=None, metavar="PATH", help="also write the full report as JSON to PATH"
    )
    e.add_argument("--debug", action="store_true")
    e.add_argument("--expected-counts", type=_counts, default=None, help=argparse.SUPPRESS)

    c = sub.add_parser("conformance", help="run the PyTorch conformance suite", add_help=False)
    c.add_argument("rest", nargs=argparse.REMAINDER)
    for name, text in TOOLS.items():  # parsed by their own modules in minigrad/tools/
        sub.add_parser(name, help=text, add_help=False).add_argument(
            "rest", nargs=argparse.REMAINDER
        )
    return p


def _train_sequence(args) -> int:
    from .examples import train_charlm, train_reverse
    from .train import CLIError

    seed = args.seed or 0
    if args.task == "charlm":
        if not args.text:
            raise CLIError("--task charlm needs --text FILE (any text file)")
        result = train_charlm(
            args.text,
            model=args.arch or "lstm",
            steps=args.steps or 2000,
            batch_size=args.batch_size or 32,
            lr=args.lr or 3e-3,
            seed=seed,
        )
        print(
            json.dumps(
                {k: v for k, v in result.items() if isinstance(v, (int, float)) and k != "model"}
            )
        )
    else:
        arch = args.arch or "transformer"
        result = train_reverse(
            arch,
            length=args.length or 20,
            steps=args.steps or (16000 if arch == "lstm" else 5000),
            seed=seed,
        )
        print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str))}))
    return 0


def _train(args, argv) -> int:
    if args.nproc is not None:  # re-run this command as N ranks under mpiexec
        from ..distributed.launch import launched_by_mpi, run_local_ranks
        from .train import CLIError

        if not launched_by_mpi():
            return run_local_ranks(args.nproc, argv, CLIError)
    if args.task != "cifar10":
        return _train_sequence(args)
    from .train import train

    given = {
        k: getattr(args, k)
        for k in (
            "model",
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "momentum",
            "weight_decay",
            "schedule",
            "augment",
            "label_smoothing",
            "clip_grad_norm",
            "ema",
            "device",
            "data_dir",
            "download",
            "seed",
            "out",
            "resume",
            "limit_train",
            "limit_test",
            "num_workers",
            "expected_counts",
        )
    }
    train(given, argv=argv)
    return 0


def _evaluate(args) -> int:
    from .train import CLIError, evaluate_checkpoint, format_report

    if args.json:  # refuse a path that cannot be written before the work, not after it
        folder = os.path.dirname(os.path.abspath(args.json))
        if (
            os.path.isdir(args.json)
            or not os.path.isdir(folder)
            or not os.access(folder, os.W_OK | os.X_OK)
        ):
            what = (
                "is a folder"
                if os.path.isdir(args.json)
                else f"{folder} is not a folder"
                if not os.path.isdir(folder)
                else f"{folder} is not writable"
            )
            raise CLIError(f"--json {args.json}: {what}; pass a file path in an existing folder")
    result = evaluate_checkpoint(
        args.checkpoint,
        data_dir=args.data_dir,
        device=args.device,
        model=args.model,
        batch_size=args.batch_size,
        limit_test=args.limit_test,
        expected_counts=args.expected_counts,
    )
    print(format_report(result), flush=True)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=2)
        except OSError as e:
            raise CLIError(f"could not write --json {args.json} ({e.strerror or e})") from e
    return 0


def _conformance(rest) -> int:
    try:
        from ..learn.conformance import main as conformance_main
    except ImportError as e:
        print(
            f"minigrad: error: the conformance suite is not available ({e}); it lives in "
            "minigrad/tools/conformance.py",
            file=sys.stderr,
        )
        return EXIT_USAGE
    rc = conformance_main(rest)
    return int(rc or 0)


def _interrupted_message(e: KeyboardInterrupt) -> str:
    """What a Ctrl-C left behind: the epoch the checkpoint holds, or nothing."""
    from .train import TrainingInterrupted

    if not isinstance(e, TrainingInterrupted):
        return "interrupted"
    if e.epoch == 0:
        return (
            f"interrupted before the first epoch ended: nothing was saved; run the same "
            f"command again to start over (in {e.out})"
        )
    return (
        f"interrupted: epoch {e.epoch} is saved in {e.checkpoint}; continue with "
        f"`minigrad train --resume --out {e.out}`"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minigrad`` console script and ``python -m minigrad``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["conformance"]:  # hand every later argument through untouched
        return _conformance(argv[1:])
    if argv[:1] and argv[0] in TOOLS:  # info, bench, data: their own parsers and errors
        module = _tool_module(argv[0])
        try:
            return int(module.main(argv[1:], prog=f"minigrad {argv[0]}") or 0)
        except SystemExit as e:  # --help, or a usage error already printed
            return int(e.code or 0)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed
        return int(e.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    debug = getattr(args, "debug", False)
    from .train import CLIError

    try:
        if args.command == "train":
            return _train(args, argv)
        return _evaluate(args)
    except CLIError as e:
        if debug:
            traceback.print_exc()
        print(f"minigrad: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as e:
        if debug:
            traceback.print_exc()
        print(f"minigrad: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        print(f"\n{_interrupted_message(e)}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
