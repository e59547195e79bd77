"""Recipe R1 in PyTorch: the reference figure `minigrad train --model lenet` is held to.

R1 = the PyTorch CIFAR-10 tutorial's LeNet, SGD lr 0.01 momentum 0.9, batch 32, 10 epochs,
inputs normalised with mean 0.5 / std 0.5, no augmentation, cross-entropy, shuffled batches
(the last, partial batch kept, as DataLoader does by default).

The data are read with ``minigrad.data.CIFAR10`` (only its file reader: identical bytes to
what ``minigrad train`` sees, same validation); everything else is PyTorch. The whole
training set is normalised once into a float tensor and batches are gathered by index, so
the timing is the model's (no DataLoader overhead), as in minigrad's vectorised pipeline.

    python benchmarks/cifar_torch_r1.py --data-dir /path/to/cifar [--threads 2] [--epochs 10]

Prints one line per epoch and writes ``benchmarks/results/cifar_torch_r1[-TAG].json`` with the
test accuracy (fraction) after every epoch and the seconds per epoch (training pass only;
evaluation timed separately).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from minigrad.data import CIFAR10  # noqa: E402


class LeNet(nn.Module):
    """The tutorial's ``Net`` (same layer names as ``minigrad.models.LeNet``)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def load_split(data_dir: str, train: bool, mean=(0.5,) * 3, std=(0.5,) * 3, limit=None):
    """(float32 NCHW normalised, int64 labels) as torch tensors."""
    ds = CIFAR10(data_dir, train=train)
    x, y = ds.data, ds.targets
    if limit:
        x, y = x[:limit], y[:limit]
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[
        :, None, None
    ]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


@torch.no_grad()
def evaluate(model, x, y, batch_size=1000):
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        loss_sum += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
    model.train()
    return correct / len(x), loss_sum / len(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data-dir",
        default="data",
        help="folder with cifar-10-batches-py/ or cifar-10-python.tar.gz",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch.set_num_threads (default: all cores, like minigrad's BLAS)",
    )
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)
    p.add_argument("--tag", default="", help="suffix of the result file name")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load_split(args.data_dir, True, limit=args.limit_train)
    xte, yte = load_split(args.data_dir, False, limit=args.limit_test)
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    gen = torch.Generator().manual_seed(args.seed)
    n = len(xtr)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads: LeNet R1 on "
        f"{n} train / {len(xte)} test images",
        flush=True,
    )
    epochs = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        secs = time.perf_counter() - t0
        t1 = time.perf_counter()
        acc, tloss = evaluate(model, xte, yte)
        rec = {
            "epoch": epoch,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "test_loss": tloss,
            "test_acc": acc,
            "seconds": secs,
            "eval_seconds": time.perf_counter() - t1,
        }
        epochs.append(rec)
        print(
            f"epoch {epoch:>3}/{args.epochs}  train loss {rec['train_loss']:.4f} acc "
            f"{100 * rec['train_acc']:6.2f}%  |  test loss {tloss:.4f} acc {100 * acc:6.2f}%"
            f"  |  {secs:.1f} s",
            flush=True,
        )

    secs = [r["seconds"] for r in epochs]
    result = {
        "framework": "torch",
        "torch_version": torch.__version__,
        "recipe": "R1",
        "model": "lenet",
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "seed": args.seed,
        "normalize": {"mean": [0.5] * 3, "std": [0.5] * 3},
        "augment": False,
        "train_images": n,
        "test_images": len(xte),
        "test_accuracy": epochs[-1]["test_acc"],
        "test_loss": epochs[-1]["test_loss"],
        "seconds_per_epoch": secs,
        "mean_seconds_per_epoch": float(np.mean(secs)),
        "total_train_seconds": float(np.sum(secs)),
        "history": epochs,
        "data_dir": os.path.abspath(args.data_dir),
        "command": " ".join(sys.argv),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
    }
    os.makedirs(args.out, exist_ok=True)
    name = "cifar_torch_r1" + (f"-{args.tag}" if args.tag else "") + ".json"
    path = os.path.join(args.out, name)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("test_accuracy", "test_loss", "mean_seconds_per_epoch", "threads")
            }
        )
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
