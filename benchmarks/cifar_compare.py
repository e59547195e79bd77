"""Per-epoch training time of the same CIFAR-10 network in minigrad and in PyTorch.

Times the training step (forward, cross-entropy, backward, SGD step) of ``--model`` (lenet,
resnet9, resnet9-small, resnet9-tiny) on the first ``--subset`` training images, on the
same machine with the same thread count, and extrapolates to a full 50,000-image epoch.
Both sides get the same pre-normalised float32 batches (no augmentation: the step is what
is compared; minigrad's crop/flip are vectorised NumPy and cost little next to it). The
PyTorch networks mirror ``minigrad.models`` layer for layer.

    python benchmarks/cifar_compare.py --data-dir DIR --model resnet9-small --subset 1024
    python benchmarks/cifar_compare.py --table          # R1 + ResNet rows from results/

``--table`` prints one markdown table from the JSON files in ``benchmarks/results/``: the
R1 row from ``cifar_torch_r1*.json`` and a minigrad run's ``summary.json``
(``--r1-summary``, default ``runs/lenet/summary.json``), plus every ``cifar_compare_*.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")
FULL_EPOCH = 50_000


def load_subset(data_dir, n, model):
    from minigrad.data import CIFAR10

    ds = CIFAR10(data_dir, train=True)
    x = ds.data[:n].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    if model == "lenet":
        mean, std = (0.5,) * 3, (0.5,) * 3
    else:
        mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    x = (x - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    return np.ascontiguousarray(x, dtype=np.float32), ds.targets[:n].astype(np.int64)


def _opt_kwargs(model):
    if model == "lenet":
        return dict(lr=0.01, momentum=0.9)
    return dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


# ----------------------------------------------------------------------------- torch side
def torch_model(name):
    import torch.nn as nn

    if name == "lenet":
        sys.path.insert(0, HERE)
        from cifar_torch_r1 import LeNet

        return LeNet()
    width = {"resnet9": 1.0, "resnet9-small": 0.5, "resnet9-tiny": 0.25}[name]
    c0, c1, c2, c3 = (max(8, int(round(c * width))) for c in (64, 128, 256, 512))

    def conv_bn(ci, co):
        return nn.Sequential(
            nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU()
        )

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.res1, self.res2 = conv_bn(c, c), conv_bn(c, c)

        def forward(self, x):
            return x + self.res2(self.res1(x))

    class ResNet9(nn.Module):
        def __init__(self):
            super().__init__()
            self.prep = conv_bn(3, c0)
            self.layer1 = nn.Sequential(conv_bn(c0, c1), nn.MaxPool2d(2), Residual(c1))
            self.layer2 = nn.Sequential(conv_bn(c1, c2), nn.MaxPool2d(2))
            self.layer3 = nn.Sequential(conv_bn(c2, c3), nn.MaxPool2d(2), Residual(c3))
            self.fc = nn.Linear(c3, 10, bias=False)

        def forward(self, x):
            x = self.layer3(self.layer2(self.layer1(self.prep(x))))
            return self.fc(x.amax(dim=(2, 3))) * 0.125

    return ResNet9()


def _images_per_second(step, n_images, batch, warmup):
    """Run ``warmup`` untimed steps, then time ``step(i)`` over every full batch."""
    for w in range(warmup):
        step(w * batch % n_images)
    t0 = time.perf_counter()
    n = 0
    for i in range(0, n_images - batch + 1, batch):
        step(i)
        n += batch
    return n / (time.perf_counter() - t0)


def time_torch(name, x, y, batch, threads, warmup=2):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(name)
    opt = torch.optim.SGD(model.parameters(), **_opt_kwargs(name))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step(i):
        logits = model(xt[i : i + batch])
        loss = F.cross_entropy(logits, yt[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return _images_per_second(step, len(x), batch, warmup), f"torch {torch.__version__}"


# ----------------------------------------------------------------------------- minigrad side
def time_minigrad(name, x, y, batch, warmup=2):
    import minigrad as mg
    from minigrad import optim
    from minigrad.models import get_model
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = get_model(name)
    opt = optim.SGD(model.parameters(), **_opt_kwargs(name))

    def step(i):
        logits = model(mg.Tensor(x[i : i + batch]))
        loss = F.cross_entropy(logits, mg.Tensor(y[i : i + batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return _images_per_second(step, len(x), batch, warmup), f"minigrad {mg.__version__}"


# ----------------------------------------------------------------------------- table
def _fmt_s(s):
    return "-" if s is None else (f"{s:.1f}" if s < 1000 else f"{s:.0f}")


def print_table(r1_summary):
    rows = []
    torch_r1 = sorted(glob.glob(os.path.join(RESULTS, "cifar_torch_r1*.json")))
    mg_r1 = None
    if r1_summary and os.path.exists(r1_summary):
        with open(r1_summary) as f:
            mg_r1 = json.load(f)
    for path in torch_r1:
        with open(path) as f:
            t = json.load(f)
        rows.append(
            (
                "R1 LeNet (full epochs, measured)",
                t["threads"],
                mg_r1["mean_seconds_per_epoch"] if mg_r1 else None,
                t["mean_seconds_per_epoch"],
                mg_r1["test_accuracy"] if mg_r1 else None,
                t["test_accuracy"],
            )
        )
    for path in sorted(glob.glob(os.path.join(RESULTS, "cifar_compare_*.json"))):
        with open(path) as f:
            c = json.load(f)
        rows.append(
            (
                f"{c['model']} batch {c['batch_size']} (from {c['subset']} images)",
                c["threads"],
                c["minigrad"]["seconds_per_epoch"],
                c["torch"]["seconds_per_epoch"],
                None,
                None,
            )
        )
    print(
        "| workload | threads | minigrad s/epoch | PyTorch s/epoch | ratio | "
        "minigrad test acc | PyTorch test acc |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, th, m, t, ma, ta in rows:
        ratio = f"{m / t:.1f}x" if m and t else "-"
        acc = lambda a: "-" if a is None else f"{100 * a:.2f}%"  # noqa: E731
        print(f"| {name} | {th} | {_fmt_s(m)} | {_fmt_s(t)} | {ratio} | {acc(ma)} | {acc(ta)} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data")
    p.add_argument(
        "--model",
        default="resnet9-small",
        choices=["lenet", "resnet9", "resnet9-small", "resnet9-tiny"],
    )
    p.add_argument("--subset", type=int, default=1024, help="training images timed")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-minigrad", action="store_true")
    p.add_argument("--table", action="store_true", help="print the table from results/")
    p.add_argument("--r1-summary", default=os.path.join("runs", "lenet", "summary.json"))
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--worker", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.table:
        print_table(args.r1_summary)
        return 0

    batch = args.batch_size or (32 if args.model == "lenet" else 512)
    batch = min(batch, args.subset)
    if args.worker:  # one framework in this process; the parent reads the JSON line
        x, y = load_subset(args.data_dir, args.subset, args.model)
        if args.worker == "minigrad":
            ips, version = time_minigrad(args.model, x, y, batch, args.warmup)
        else:
            ips, version = time_torch(args.model, x, y, batch, args.threads, args.warmup)
        print(json.dumps({"images_per_second": ips, "version": version}))
        return 0
    result = {
        "model": args.model,
        "batch_size": batch,
        "subset": args.subset,
        "threads": args.threads,
        "what": "train step: forward, loss, backward, SGD",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    for side in ("minigrad", "torch"):
        if getattr(args, f"skip_{side}"):
            continue
        # each framework in its own process: their OpenMP/BLAS thread pools would otherwise
        # spin against each other and distort the timings
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            side,
            "--data-dir",
            args.data_dir,
            "--model",
            args.model,
            "--subset",
            str(args.subset),
            "--batch-size",
            str(batch),
            "--threads",
            str(args.threads),
            "--warmup",
            str(args.warmup),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        ips, version = got["images_per_second"], got["version"]
        result[side] = {
            "images_per_second": ips,
            "seconds_per_epoch": FULL_EPOCH / ips,
            "version": version,
        }
        print(
            f"{side:>8}: {ips:8.1f} img/s -> {FULL_EPOCH / ips:8.1f} s per 50k-image epoch "
            f"({version}, {args.threads} threads)",
            flush=True,
        )
    if "minigrad" in result and "torch" in result:
        result["ratio"] = (
            result["minigrad"]["seconds_per_epoch"] / result["torch"]["seconds_per_epoch"]
        )
        print(f"minigrad / torch time per epoch: {result['ratio']:.1f}x")
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, f"cifar_compare_{args.model}.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
