"""Rank program for tests/test_distributed.py: run as ``mpiexec -n N python dist_worker.py MODE``.

Each mode checks its own results on every rank and exits non-zero (AssertionError) on a
mismatch; the expected values are computed locally from the same seeds (NumPy only).
"""

import os
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn
from minigrad.nn.parallel import DistributedDataParallel


def rank_array(seed, r, shape, dtype=np.float32):
    return np.random.default_rng([seed, r]).standard_normal(shape).astype(dtype)


def collectives(rank, world):
    for dtype in (np.float32, np.float64):
        tol = dict(rtol=1e-6 if dtype == np.float32 else 1e-13, atol=0)
        shape = (3, 5, 7)
        every = [rank_array(1, r, shape, dtype) for r in range(world)]
        for op, ref in (
            ("sum", np.sum(every, 0)),
            ("avg", np.mean(every, 0)),
            ("max", np.max(every, 0)),
        ):
            t = mg.tensor(every[rank].copy())
            dist.all_reduce(t, op=op)
            np.testing.assert_allclose(t.numpy(), ref.astype(dtype), **tol, err_msg=op)
            assert t.dtype == dtype
        for src in range(world):
            t = mg.tensor(rank_array(2, rank, (4, 6), dtype))
            dist.broadcast(t, src=src)
            np.testing.assert_array_equal(t.numpy(), rank_array(2, src, (4, 6), dtype))
        outs = [mg.zeros(2, 9, dtype=dtype) for _ in range(world)]
        dist.all_gather(outs, mg.tensor(rank_array(3, rank, (2, 9), dtype)))
        for r in range(world):
            np.testing.assert_array_equal(outs[r].numpy(), rank_array(3, r, (2, 9), dtype))
        big = mg.zeros(world, 2, 9, dtype=dtype)
        dist.all_gather(big, mg.tensor(rank_array(3, rank, (2, 9), dtype)))
        np.testing.assert_array_equal(big.numpy(), np.stack([o.numpy() for o in outs]))
        inputs = [rank_array(4, r, (world, 5), dtype) for r in range(world)]
        out = mg.zeros(5, dtype=dtype)
        dist.reduce_scatter(out, [mg.tensor(v) for v in inputs[rank]])
        np.testing.assert_allclose(out.numpy(), np.sum(inputs, 0)[rank], **tol)
    t = mg.tensor(np.arange(6, dtype=np.int64) * (rank + 1))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    np.testing.assert_array_equal(t.numpy(), np.arange(6) * world)
    work = dist.all_reduce(mg.ones(10), async_op=True)
    work.wait()
    dist.barrier()


class Net(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(8, hidden)
        self.fc2 = nn.Linear(hidden, 4)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


def ddp(rank, world):
    """DDP gradients = full-batch gradients; several buckets; no_sync accumulation."""
    mg.manual_seed(100 + rank)  # different init per rank: DDP must broadcast rank 0's
    local = Net()
    model = DistributedDataParallel(local, bucket_cap_mb=200 / 2**20)  # ~200 bytes a bucket
    assert len(model.bucket_sizes) > 1, model.bucket_sizes
    mg.manual_seed(100)
    ref = Net()  # rank 0's initialisation, built locally
    for p, q in zip(local.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    x = rank_array(5, 0, (6 * world, 8))
    y = np.random.default_rng(6).integers(0, 4, 6 * world)
    mine = slice(6 * rank, 6 * rank + 6)
    loss = nn.functional.cross_entropy(model(mg.tensor(x[mine])), mg.tensor(y[mine]))
    loss.backward()
    nn.functional.cross_entropy(ref(mg.tensor(x)), mg.tensor(y)).backward()
    for p, q in zip(local.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
    # gradient accumulation: two micro-batches, the first under no_sync
    local.zero_grad()
    ref.zero_grad()
    for step in range(2):
        xs = rank_array(7 + step, 0, (4 * world, 8))
        ys = np.random.default_rng(9 + step).integers(0, 4, 4 * world)
        part = slice(4 * rank, 4 * rank + 4)
        if step == 0:
            with model.no_sync():
                nn.functional.cross_entropy(
                    model(mg.tensor(xs[part])), mg.tensor(ys[part])
                ).backward()
            g0 = local.fc1.weight.grad.numpy().copy()
        else:
            nn.functional.cross_entropy(model(mg.tensor(xs[part])), mg.tensor(ys[part])).backward()
        nn.functional.cross_entropy(ref(mg.tensor(xs)), mg.tensor(ys)).backward()
    # after no_sync the local gradient was this rank's alone (differs between ranks)
    gathered = mg.zeros(world, *g0.shape)
    dist.all_gather(gathered, mg.tensor(g0))
    assert not np.allclose(gathered.numpy()[0], gathered.numpy()[-1])
    for p, q in zip(local.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
    # overlap: the first bucket (fc2, last layer) starts its all-reduce before backward
    # reaches the input (the gradient of x is the last thing backward computes)
    import minigrad.nn.parallel as parallel

    events = []
    launch = parallel._all_reduce_flat
    parallel._all_reduce_flat = lambda flat: (events.append("all-reduce"), launch(flat))[1]
    xin = mg.tensor(x[mine], requires_grad=True)
    xin.register_hook(lambda g: events.append("input grad"))
    local.zero_grad()
    nn.functional.cross_entropy(model(xin), mg.tensor(y[mine])).backward()
    parallel._all_reduce_flat = launch
    assert events[0] == "all-reduce" and "input grad" in events, events
    assert events.count("all-reduce") == len(model.bucket_sizes), events
    # buffers follow rank 0 at every forward
    bn_model = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4))
    d = DistributedDataParallel(bn_model)
    bn_model[1].running_mean.fill_(float(rank + 1))
    d(mg.tensor(x[:4]))
    assert float(bn_model[1].running_mean.numpy()[0]) != float(rank + 1) or rank == 0


class Partial(Net):
    def forward(self, x):  # fc2 takes no part in the loss
        return self.fc1(x)


def unused(rank, world):
    """A parameter without gradient: the next forward says which one (on every rank)."""
    model = DistributedDataParallel(Partial(), bucket_cap_mb=200 / 2**20)
    model(mg.ones(2, 8)).sum().backward()
    try:
        model(mg.ones(2, 8))
    except RuntimeError as e:
        assert "fc2.weight" in str(e) and "fc1.weight" not in str(e), e
        print(f"rank {rank}: {e}")
        return
    raise AssertionError("a parameter without gradient was not reported")


def mismatch(rank, world):
    try:
        DistributedDataParallel(Net(hidden=16 if rank == 0 else 17))
    except RuntimeError as e:
        assert "fc1.weight" in str(e) and "(16, 8)" in str(e) and "(17, 8)" in str(e), e
        print(f"rank {rank}: {e}")
        return
    raise AssertionError("mismatched parameters were not detected")


def hang(rank, world):
    if rank == world - 1:
        time.sleep(60)  # never joins: the others must give up after the timeout
        return
    t0 = time.perf_counter()
    try:
        dist.all_reduce(mg.ones(4))
    except dist.DistributedTimeoutError as e:
        print(f"rank {rank}: gave up after {time.perf_counter() - t0:.1f} s: {e}")
        raise  # uncaught: aborts the whole job


def die(rank, world):
    if rank == world - 1:
        os._exit(3)
    dist.all_reduce(mg.ones(4))


def lenet(rank, world):
    """2 ranks x batch 32 with DDP == 1 process x batch 64 over the same order (one epoch)."""
    from minigrad import optim
    from minigrad.data import CIFAR10, DataLoader, Subset, ToFloatCHW
    from minigrad.distributed.launch import shard_loader
    from minigrad.models.registry import get_model

    root, per_batch = sys.argv[2], int(sys.argv[3])
    data = Subset(
        CIFAR10(root, train=True, _expected_counts={"train_batch": per_batch, "test": per_batch}),
        np.arange(256),
    )

    def run(batch, distributed):
        mg.manual_seed(0)
        net = get_model("lenet")
        loader = DataLoader(data, batch_size=batch, shuffle=True, seed=3, transform=ToFloatCHW())
        model = net
        if distributed:
            loader = shard_loader(loader)
            model = DistributedDataParallel(net)
        opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        loader.set_epoch(1)
        steps = 0
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(mg.tensor(x)), mg.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        return net, steps

    ddp_net, ddp_steps = run(64 // world, True)
    ref_net, ref_steps = run(64, False)
    assert ddp_steps == ref_steps == 4, (ddp_steps, ref_steps)
    worst = 0.0
    for (name, p), q in zip(ddp_net.named_parameters(), ref_net.parameters()):
        a, b = p.detach().numpy(), q.detach().numpy()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6, err_msg=name)
        worst = max(worst, float(np.abs(a - b).max()))
    moved = max(float(np.abs(p.detach().numpy()).max()) for p in ddp_net.parameters())
    print(f"rank {rank}: largest weight difference {worst:.2e} (weights up to {moved:.2f})")


def early_exit():
    """``minigrad train``'s setup: a rank that exits early (here with status 2, as on a
    one-line CLI error) stops the job instead of leaving the others in a collective."""
    from minigrad.distributed import launch

    launch.setup()
    if dist.get_rank() == 0:
        print("rank 0 leaves early", flush=True)
        sys.exit(2)
    dist.all_reduce(mg.ones(3))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "early_exit":
        early_exit()
        sys.exit(0)
    dist.init_process_group("mpi", timeout=float(os.environ.get("WORKER_TIMEOUT", "60")))
    globals()[mode](dist.get_rank(), dist.get_world_size())
    dist.barrier()
    if dist.get_rank() == 0:
        print(f"{mode}: ok on {dist.get_world_size()} ranks")
    dist.destroy_process_group()
