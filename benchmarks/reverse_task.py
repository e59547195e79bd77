"""Run the digit-reversal memory task (minigrad.app.examples.train_reverse) and record the run.

    python benchmarks/reverse_task.py --model lstm --length 20 --hidden 128 --steps 20000
    python benchmarks/reverse_task.py --model transformer --length 20

Writes ``benchmarks/results/reverse_<model>_<length>.json``: final whole-sequence and digit
accuracy (1000 fresh sequences), steps, seconds, curriculum stages, the accuracy history
(every ``--eval-every`` steps) and the machine. The figures quoted in the README come from
these files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine_info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["lstm", "transformer"], default="lstm")
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--hidden", type=int, default=None, help="LSTM hidden size")
    p.add_argument("--no-curriculum", action="store_true", help="LSTM: train on --length only")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args(argv)

    from minigrad.app.examples import train_reverse

    kw = {}
    if args.model == "lstm":
        if args.hidden:
            kw["hidden"] = args.hidden
        kw["curriculum"] = not args.no_curriculum
    t0 = time.time()
    r = train_reverse(
        args.model,
        length=args.length,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        **kw,
    )
    record = {k: v for k, v in r.items() if k != "model"}
    record.update(
        command=" ".join(["python", "benchmarks/reverse_task.py"] + sys.argv[1:]),
        wall_seconds=time.time() - t0,
        model_kind=args.model,
        hidden=args.hidden,
        machine=machine_info(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))),
    )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"reverse_{args.model}_{args.length}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
