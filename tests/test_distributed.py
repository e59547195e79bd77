"""minigrad.distributed, DistributedDataParallel, DistributedSampler and ``train --nproc``.

The multi-rank tests start real MPI jobs (``mpiexec -n N`` from the mpich wheel of the
``mpi`` extra) in subprocesses and are skipped when mpi4py is missing. The NCCL backend is
tested here with a fake ``cupy``/``nccl`` pair (threads stand in for ranks); its 1-rank path
on a real GPU is in the ``gpu`` test.
"""

import math
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn
from minigrad.data import DistributedSampler
from minigrad.distributed.store import FileStore

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "dist_worker.py")


def _mpiexec():
    if not dist.is_available():
        return None
    from minigrad.distributed.launch import find_mpiexec

    return find_mpiexec()


if os.environ.get("MINIGRAD_REQUIRE_MPI") == "1" and _mpiexec() is None:  # CI: never skip
    raise RuntimeError(
        "MINIGRAD_REQUIRE_MPI=1 but mpi4py/mpiexec are missing: pip install -e '.[mpi]'"
    )
needs_mpi = pytest.mark.skipif(
    _mpiexec() is None, reason="needs the mpi extra: pip install 'minigrad[mpi]'"
)


def run_mpi(n, args, timeout=120, env=None):
    cmd = [_mpiexec(), "-n", str(n), sys.executable, *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE, env=full_env
    )


# ----------------------------------------------------------------------------- engine hook
def test_post_accumulate_grad_hook_sees_the_accumulated_grad_and_runs_early():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    v = mg.tensor([0.5], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    v.register_hook(lambda g: seen.append("v"))  # a plain leaf: runs last
    y = (w * 3).sum() * v.exp().exp()  # w's gradient is complete before v's ops backward
    y.backward()
    y2 = (w * 3).sum()
    y2.backward()
    assert seen[0] == pytest.approx([3 * math.exp(math.exp(0.5))] * 2)
    assert seen[1] == "v"
    assert seen[2] == pytest.approx([3 * math.exp(math.exp(0.5)) + 3] * 2)  # accumulated
    handle.remove()
    (w * 1).sum().backward()
    assert len(seen) == 3
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)


# ----------------------------------------------------------------------------- sampler
@pytest.mark.torch
@pytest.mark.parametrize("n", [1, 7, 10, 33])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_pytorch(monkeypatch, n, replicas, shuffle, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    data = list(range(n))
    for epoch in (0, 3):
        ours0 = DistributedSampler(data, replicas, 0, shuffle=shuffle, seed=5, drop_last=drop_last)
        perm = ours0.permutation(epoch)  # torch's randperm swapped for our permutation
        monkeypatch.setattr(
            torch, "randperm", lambda k, generator=None, _p=perm: torch.as_tensor(_p)
        )
        for rank in range(replicas):
            ours = DistributedSampler(
                data, replicas, rank, shuffle=shuffle, seed=5, drop_last=drop_last
            )
            theirs = TorchSampler(
                data, replicas, rank, shuffle=shuffle, seed=5, drop_last=drop_last
            )
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs)
            assert len(ours) == len(theirs)


def test_sampler_order_is_the_dataloader_order_and_ranks_interleave():
    data = mg.data.TensorDataset(mg.tensor(np.arange(40)))
    loader = mg.data.DataLoader(data, batch_size=8, shuffle=True, seed=11)
    loader.set_epoch(2)
    whole = [b[0] for b in loader]
    shards = []
    for r in range(2):
        s = DistributedSampler(data, num_replicas=2, rank=r, shuffle=True, seed=11)
        sl = mg.data.ShardedLoader(data, s, batch_size=4, seed=11)
        sl.set_epoch(2)
        shards.append([b[0] for b in sl])
    for k, batch in enumerate(whole):
        merged = np.empty(8, dtype=np.int64)
        merged[0::2], merged[1::2] = shards[0][k], shards[1][k]
        np.testing.assert_array_equal(merged, batch)


def test_sampler_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(5), num_replicas=2, rank=2)


# ----------------------------------------------------------------------------- api errors
def test_without_a_process_group():
    assert dist.get_rank() == 0 and dist.get_world_size() == 1
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(mg.ones(3))
    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("gloo")


# ----------------------------------------------------------------------------- nccl (fake)
class _FakeStream:
    ptr = 7
    done = True


class _FakeCupy:
    """Just what NCCLBackend touches; arrays are NumPy (pointers via ctypes)."""

    class cuda:
        class runtime:
            @staticmethod
            def getDeviceCount():
                return 8

        class Device:
            used = []

            def __init__(self, i):
                self.i = i

            def use(self):
                _FakeCupy.cuda.Device.used.append(self.i)

        @staticmethod
        def get_current_stream():
            return _FakeStream()

    zeros = staticmethod(np.zeros)


class _Ptr:
    def __init__(self, arr):
        self.ptr = arr.ctypes.data


class _Arr(np.ndarray):
    """A NumPy array whose ``.data.ptr`` is its address, like a CuPy array's."""

    @property
    def data(self):
        return _Ptr(self)


def _view(ptr, count, dtype):
    import ctypes

    buf = (ctypes.c_char * (count * np.dtype(dtype).itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype)


class _FakeNccl:
    """Threads are the ranks: each collective meets at a barrier and reads the others' buffers."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_FLOAT16, NCCL_INT32, NCCL_INT64 = 7, 8, 6, 2, 4
    NCCL_UINT8, NCCL_INT8 = 1, 0
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3
    DTYPES = {7: np.float32, 8: np.float64, 2: np.int32, 4: np.int64}

    def __init__(self, world):
        self.world = world
        self.barrier = threading.Barrier(world)
        self.slots = [None] * world
        self.ids = []

    def get_unique_id(self):
        uid = tuple(int(v) for v in np.random.default_rng(0).integers(0, 256, 128))
        self.ids.append(uid)
        return uid

    def NcclCommunicator(self, ndev, uid, rank):
        assert ndev == self.world and uid == self.ids[0]
        return _FakeComm(self, rank)


_REDUCE = {0: np.sum, 1: np.prod, 2: np.max, 3: np.min}


class _FakeComm:
    def __init__(self, fake, rank):
        self.fake, self.rank = fake, rank

    def _exchange(self, arr):
        self.fake.slots[self.rank] = arr.copy()
        self.fake.barrier.wait()
        every = list(self.fake.slots)
        self.fake.barrier.wait()
        return every

    def allReduce(self, send, recv, count, dtype, op, stream):
        dt = self.fake.DTYPES[dtype]
        every = self._exchange(_view(send, count, dt))
        _view(recv, count, dt)[:] = _REDUCE[op](every, axis=0)

    def broadcast(self, send, recv, count, dtype, root, stream):
        dt = self.fake.DTYPES[dtype]
        every = self._exchange(_view(send, count, dt))
        _view(recv, count, dt)[:] = every[root]

    def allGather(self, send, recv, count, dtype, stream):
        dt = self.fake.DTYPES[dtype]
        every = self._exchange(_view(send, count, dt))
        _view(recv, count * self.fake.world, dt)[:] = np.concatenate(every)

    def reduceScatter(self, send, recv, count, dtype, op, stream):
        dt = self.fake.DTYPES[dtype]
        every = self._exchange(_view(send, count * self.fake.world, dt))
        total = _REDUCE[op](every, axis=0)
        _view(recv, count, dt)[:] = total[self.rank * count : (self.rank + 1) * count]

    def check_async_error(self):
        pass

    def abort(self):
        pass


@pytest.mark.parametrize("world", [1, 3])
def test_nccl_backend_with_fake_nccl(tmp_path, world):
    from minigrad.distributed._nccl import NCCLBackend

    fake = _FakeNccl(world)
    errors, results = [], {}

    def rank_main(rank):
        try:
            store = FileStore(str(tmp_path / "store"), timeout=20)
            b = NCCLBackend(rank, world, store=store, cupy=_FakeCupy, nccl=fake)
            x = np.arange(6, dtype=np.float32).view(_Arr) * (rank + 1)
            b.all_reduce(x, "avg")
            y = np.full(4, rank, dtype=np.float64).view(_Arr)
            b.broadcast(y, world - 1)
            out = np.zeros((world, 2), dtype=np.int64).view(_Arr)
            b.all_gather(out, np.array([rank, 10 * rank], dtype=np.int64).view(_Arr))
            rs = np.zeros(2, dtype=np.float32).view(_Arr)
            b.reduce_scatter(rs, np.arange(2 * world, dtype=np.float32).view(_Arr), "max")
            results[rank] = (np.asarray(x), np.asarray(y), np.asarray(out), np.asarray(rs))
        except BaseException as e:
            errors.append(e)
            fake.barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    mean_factor = sum(range(1, world + 1)) / world
    for r in range(world):
        x, y, out, rs = results[r]
        np.testing.assert_allclose(x, np.arange(6) * mean_factor, rtol=1e-6)
        np.testing.assert_array_equal(y, np.full(4, world - 1))
        np.testing.assert_array_equal(out, [[k, 10 * k] for k in range(world)])
        np.testing.assert_array_equal(rs, np.arange(2 * world)[2 * r : 2 * r + 2])
    assert len(fake.ids) == 1  # rank 0 alone drew the id; the others read it from the store


def test_nccl_rejects_unsupported_dtype():
    from minigrad.distributed._nccl import _nccl_dtype

    with pytest.raises(TypeError, match="complex128"):
        _nccl_dtype(_FakeNccl, np.complex128)


def test_file_store_times_out(tmp_path):
    with pytest.raises(TimeoutError, match="nccl_unique_id"):
        FileStore(str(tmp_path), timeout=0.05).get("nccl_unique_id")


@pytest.mark.gpu
def test_nccl_one_rank_on_a_gpu(tmp_path):
    if not mg.backend.cuda_available():
        pytest.skip("needs a CUDA GPU and CuPy")
    pytest.importorskip("cupy.cuda.nccl")
    dist.init_process_group("nccl", rank=0, world_size=1, store=FileStore(str(tmp_path)))
    try:
        t = mg.tensor(np.arange(5, dtype=np.float32)).to("cuda")
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        dist.broadcast(t, src=0)
        out = mg.zeros(1, 5).to("cuda")
        dist.all_gather(out, t)
        np.testing.assert_array_equal(out.cpu().numpy()[0], np.arange(5))
        model = nn.Linear(5, 3).to("cuda")
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp(t.reshape(1, 5)).sum().backward()
        assert model.weight.grad is not None
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- MPI jobs
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_on_random_tensors(n):
    r = run_mpi(n, [WORKER, "collectives"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"collectives: ok on {n} ranks" in r.stdout


@needs_mpi
def test_ddp_gradients_equal_full_batch_gradients_with_buckets_and_no_sync():
    r = run_mpi(2, [WORKER, "ddp"])
    assert r.returncode == 0, r.stdout + r.stderr


@needs_mpi
def test_ddp_detects_mismatched_parameter_shapes_on_every_rank():
    r = run_mpi(2, [WORKER, "mismatch"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("rank 1 has 'fc1.weight' of shape (17, 8)") == 2


@needs_mpi
def test_ddp_names_a_parameter_that_got_no_gradient():
    r = run_mpi(2, [WORKER, "unused"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("produced no gradient for fc2.") == 2


@needs_mpi
def test_a_hung_rank_makes_the_others_give_up_with_a_message():
    r = run_mpi(2, [WORKER, "hang"], env={"WORKER_TIMEOUT": "2"}, timeout=60)
    assert r.returncode != 0
    assert "did not complete within 2 s" in r.stdout + r.stderr


@needs_mpi
def test_a_dead_rank_stops_the_job():
    r = run_mpi(2, [WORKER, "die"], timeout=60)
    assert r.returncode != 0


@needs_mpi
def test_lenet_two_ranks_of_32_equal_one_rank_of_64(tmp_path):
    sys.path.insert(0, HERE)
    from fake_cifar import make_fake_cifar

    make_fake_cifar(str(tmp_path), per_batch=64)
    r = run_mpi(2, [WORKER, "lenet", str(tmp_path), "64"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lenet: ok on 2 ranks" in r.stdout


# ----------------------------------------------------------------------------- minigrad train
def _train_cli(args, tmp_path, timeout=300):
    cmd = [
        sys.executable,
        "-m",
        "minigrad",
        "train",
        "--data-dir",
        str(tmp_path / "data"),
        "--expected-counts",
        "64,64",
        "--limit-train",
        "256",
        "--limit-test",
        "32",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _weights(folder):
    from minigrad.app.train import load_checkpoint

    ckpt = load_checkpoint(os.path.join(folder, "checkpoint.npz"))
    return {k: np.asarray(v.numpy()) for k, v in ckpt["model"].items()}, ckpt


def _assert_same_weights(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


@needs_mpi
def test_train_nproc_2_equals_one_process_with_twice_the_batch_and_resumes(tmp_path):
    sys.path.insert(0, HERE)
    from fake_cifar import make_fake_cifar

    make_fake_cifar(str(tmp_path / "data"), per_batch=64)
    two, one = tmp_path / "two", tmp_path / "one"
    out = _train_cli(
        ["--nproc", "2", "--batch-size", "32", "--epochs", "1", "--out", str(two)], tmp_path
    )
    assert out.count("epoch   1/1") == 1  # rank 0 alone reports
    assert "2 MPI ranks" in out
    _train_cli(["--batch-size", "64", "--epochs", "1", "--out", str(one)], tmp_path)
    w2, ckpt2 = _weights(two)
    w1, ckpt1 = _weights(one)
    _assert_same_weights(w2, w1)
    assert ckpt2["history"][0]["train_loss"] == pytest.approx(
        ckpt1["history"][0]["train_loss"], rel=1e-5
    )
    assert sorted(os.listdir(two)) == sorted(os.listdir(one))  # no per-rank files
    # the 2-rank checkpoint resumes on 2 ranks, and on 1 rank with batch 64: same epoch 2
    shutil.copytree(two, tmp_path / "two_on_one")
    _train_cli(["--nproc", "2", "--epochs", "2", "--resume", "--out", str(two)], tmp_path)
    _train_cli(
        ["--batch-size", "64", "--epochs", "2", "--resume", "--out", str(tmp_path / "two_on_one")],
        tmp_path,
    )
    _assert_same_weights(_weights(two)[0], _weights(tmp_path / "two_on_one")[0])
    assert _weights(two)[1]["epoch"] == 2


def test_nproc_without_mpi_is_a_one_line_error_naming_the_extra(monkeypatch, capsys):
    from minigrad.app import cli
    from minigrad.distributed import launch

    monkeypatch.setattr(launch, "mpi_available", lambda: False)
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    rc = cli.main(["train", "--nproc", "2", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "minigrad[mpi]" in err and "--nproc" in err


@needs_mpi
def test_a_rank_leaving_early_stops_the_job_after_the_exit_grace():
    r = run_mpi(
        2,
        [WORKER, "early_exit"],
        env={"MINIGRAD_DIST_EXIT_GRACE": "2", "MINIGRAD_DIST_TIMEOUT": "60"},
        timeout=50,
    )
    assert r.returncode != 0
    assert "rank 0/2 is exiting while other ranks are still running" in r.stdout + r.stderr
