"""minigrad.data: datasets, DataLoader, transforms, and the safe CIFAR-10 reader.

No network and no real CIFAR: a tiny synthetic CIFAR layout (same files, pickle keys and
protocol as make-cifar10, 20 images per batch file) is written into tmp_path.
"""

import functools
import gc
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (
    CIFAR10,
    Compose,
    DataLoader,
    Dataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RestrictedUnpickler,
    Subset,
    TensorDataset,
    ToFloatCHW,
    random_split,
    safe_extract,
)

N_FAKE = 20
COUNTS = {"train_batch": N_FAKE, "test": N_FAKE}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------- fake CIFAR
def _batch(seed, n=N_FAKE, label="batch"):
    g = np.random.default_rng(seed)
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in g.integers(0, 10, n)],
        b"data": g.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def make_fake_cifar(root, tar=False, mutate=None):
    """Write root/cifar-10-batches-py (or only root/cifar-10-python.tar.gz when ``tar``).

    ``mutate(name, batch_dict)`` may edit a batch before it is pickled. Returns the batches.
    """
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        b = _batch(i, label=name)
        if mutate is not None:
            mutate(name, b)
        batches[name] = b
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(b, f, protocol=4)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        meta = {
            b"label_names": [c.encode() for c in CLASSES],
            b"num_cases_per_batch": N_FAKE,
            b"num_vis": 3072,
        }
        pickle.dump(meta, f, protocol=4)
    if tar:
        path = os.path.join(root, "cifar-10-python.tar.gz")
        with tarfile.open(path, "w:gz") as t:
            t.add(folder, arcname="cifar-10-batches-py")
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    return batches


def _hwc(batch):
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# ----------------------------------------------------------------------------- loading
def test_load_extracted_folder(tmp_path):
    batches = make_fake_cifar(tmp_path)
    ds = CIFAR10(tmp_path, train=True, _expected_counts=COUNTS)
    assert len(ds) == 5 * N_FAKE
    assert ds.data.shape == (5 * N_FAKE, 32, 32, 3) and ds.data.dtype == np.uint8
    assert ds.data.flags.c_contiguous
    np.testing.assert_array_equal(ds.data[:N_FAKE], _hwc(batches["data_batch_1"]))
    np.testing.assert_array_equal(ds.data[-N_FAKE:], _hwc(batches["data_batch_5"]))
    assert ds.targets.dtype == np.int64
    assert ds.targets[:N_FAKE].tolist() == batches["data_batch_1"][b"labels"]
    assert ds.classes == CLASSES
    img, label = ds[3]
    assert img.shape == (32, 32, 3) and isinstance(label, int)
    imgs, labels = ds.get_batch([3, 0, 7])
    np.testing.assert_array_equal(imgs[0], img)
    assert labels.tolist() == [label, int(ds.targets[0]), int(ds.targets[7])]

    test = CIFAR10(tmp_path, train=False, _expected_counts=COUNTS)
    assert len(test) == N_FAKE
    np.testing.assert_array_equal(test.data, _hwc(batches["test_batch"]))


def test_load_tarball_extracts_safely(tmp_path):
    batches = make_fake_cifar(tmp_path, tar=True)
    assert not (tmp_path / "cifar-10-batches-py").exists()
    ds = CIFAR10(tmp_path, _expected_counts=COUNTS)
    assert ds.integrity == "structure"  # not the official MD5: accepted by validation only
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_3").is_file()
    np.testing.assert_array_equal(ds.data[:N_FAKE], _hwc(batches["data_batch_1"]))
    # no scratch folder left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]
    # second construction uses the folder
    assert len(CIFAR10(tmp_path, train=False, _expected_counts=COUNTS)) == N_FAKE


def test_tarball_with_matching_md5_override_is_trusted(tmp_path):
    make_fake_cifar(tmp_path, tar=True)
    md5 = _md5(tmp_path / "cifar-10-python.tar.gz")
    ds = CIFAR10(tmp_path, md5=md5, _expected_counts=COUNTS)
    assert ds.integrity == "md5"


def _wrong_shape(name, b):
    if name == "data_batch_2":
        b[b"data"] = b[b"data"][:, :3000]


def _bad_label(name, b):
    if name == "data_batch_3":
        b[b"labels"][5] = 10


def _negative_label(name, b):
    if name == "test_batch":
        b[b"labels"][0] = -1


def _wrong_dtype(name, b):
    if name == "data_batch_1":
        b[b"data"] = b[b"data"].astype(np.float32)


def _few_labels(name, b):
    if name == "data_batch_4":
        b[b"labels"] = b[b"labels"][:-1]


def _no_data_key(name, b):
    if name == "data_batch_5":
        del b[b"data"]


@pytest.mark.parametrize(
    "mutate, fname, msg",
    [
        (_wrong_shape, "data_batch_2", r"shape \(20, 3000\), expected \(20, 3072\)"),
        (_bad_label, "data_batch_3", "out of range 0..9"),
        (_negative_label, "test_batch", "out of range 0..9"),
        (_wrong_dtype, "data_batch_1", "uint8"),
        (_few_labels, "data_batch_4", "labels"),
        (_no_data_key, "data_batch_5", "missing key"),
    ],
)
def test_validation_errors_name_the_file(tmp_path, mutate, fname, msg):
    make_fake_cifar(tmp_path, mutate=mutate)
    train = fname != "test_batch"
    with pytest.raises(ValueError, match=msg) as exc:
        CIFAR10(tmp_path, train=train, _expected_counts=COUNTS)
    assert fname in str(exc.value)


def test_validation_tarball_checks_all_files_and_leaves_nothing(tmp_path):
    make_fake_cifar(tmp_path, tar=True, mutate=_negative_label)
    with pytest.raises(ValueError, match="test_batch.*out of range") as exc:
        CIFAR10(tmp_path, train=True, _expected_counts=COUNTS)  # train, but test_batch is bad
    assert "structural validation" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]


def test_official_counts_reject_tiny_copy(tmp_path):
    make_fake_cifar(tmp_path)
    with pytest.raises(ValueError, match=r"data_batch_1.*expected \(10000, 3072\)"):
        CIFAR10(tmp_path)


def test_missing_file(tmp_path):
    make_fake_cifar(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(ValueError, match="missing data_batch_4"):
        CIFAR10(tmp_path, _expected_counts=COUNTS)


def test_truncated_pickle(tmp_path):
    make_fake_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="data_batch_2.*truncated"):
        CIFAR10(tmp_path, _expected_counts=COUNTS)


def test_not_found_message(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        CIFAR10(tmp_path / "nowhere")
    msg = str(exc.value)
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg
    assert "minigrad data convert" in msg and "../shared" not in msg


# ----------------------------------------------------------------------------- unpickling
class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_restricted_unpickler_rejects_os_system(tmp_path):
    make_fake_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": _Evil(f"touch {marker}"), b"labels": [0] * N_FAKE}
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump(payload, f, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match=r"system.*forbidden") as exc:
        CIFAR10(tmp_path, _expected_counts=COUNTS)
    assert "data_batch_1" in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [eval, np.load, functools.partial, getattr])
def test_restricted_unpickler_rejects_other_globals(obj):
    data = pickle.dumps(obj, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="forbidden"):
        RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), like the official CIFAR files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        obj = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def _official_style_pickle(obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # Python 2 NumPy names the reconstructor numpy.core.multiarray
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


@pytest.mark.parametrize("style", ["official_py2", "make_cifar10_protocol4"])
def test_restricted_unpickler_loads_arrays(style):
    a = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    obj = {b"data": a, b"labels": [1, 2], b"batch_label": b"training batch 1 of 5"}
    if style == "official_py2":
        data = _official_style_pickle(obj)
        assert b"numpy.core.multiarray\n_reconstruct" in data
    else:
        data = pickle.dumps(obj, protocol=4)
    out = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    np.testing.assert_array_equal(out[b"data"], a)
    assert out[b"data"].dtype == np.uint8
    assert out[b"labels"] == [1, 2] and out[b"batch_label"] == b"training batch 1 of 5"


def test_official_style_files_load(tmp_path):
    batches = make_fake_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    for name, b in batches.items():
        (folder / name).write_bytes(_official_style_pickle(b))
    ds = CIFAR10(tmp_path, _expected_counts=COUNTS)
    np.testing.assert_array_equal(ds.data[:N_FAKE], _hwc(batches["data_batch_1"]))


# ----------------------------------------------------------------------------- tar safety
def _add_file(t, name, data=b"evil"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))


def _malicious(kind, tar_path, outside):
    with tarfile.open(tar_path, "w:gz") as t:
        _add_file(t, "cifar-10-batches-py/ok", b"fine")
        if kind == "dotdot":
            _add_file(t, "cifar-10-batches-py/../../" + outside.name + "/evil")
        elif kind == "absolute":
            _add_file(t, str(outside / "evil"))
        elif kind == "symlink":
            info = tarfile.TarInfo("cifar-10-batches-py/link")
            info.type, info.linkname = tarfile.SYMTYPE, str(outside)
            t.addfile(info)
            _add_file(t, "cifar-10-batches-py/link/evil")
        elif kind == "hardlink":
            info = tarfile.TarInfo("cifar-10-batches-py/hl")
            info.type, info.linkname = tarfile.LNKTYPE, str(outside / "evil")
            t.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("cifar-10-batches-py/null")
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            t.addfile(info)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_malicious_tarball_rejected(tmp_path, kind):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    tar_path = root / "cifar-10-python.tar.gz"
    _malicious(kind, tar_path, outside)
    with pytest.raises(ValueError, match="unsafe tar member"):
        CIFAR10(root, _expected_counts=COUNTS)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]
    # the helper alone writes nothing either (all members checked before extracting)
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="unsafe tar member"):
        safe_extract(tar_path, dest)
    assert list(dest.iterdir()) == [] and list(outside.iterdir()) == []


def test_not_a_tarball(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tar at all" * 10)
    with pytest.raises(ValueError, match="not a readable tar archive"):
        CIFAR10(tmp_path, _expected_counts=COUNTS)


# ----------------------------------------------------------------------------- download
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """Serve tmp_path/'srv' over HTTP on localhost; yields (folder, base URL)."""
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(srv_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv_dir, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fake_tarball(tmp_path, dest_dir):
    src = tmp_path / "src"
    batches = make_fake_cifar(src, tar=True)
    tar = dest_dir / "cifar-10-python.tar.gz"
    os.replace(src / "cifar-10-python.tar.gz", tar)
    return tar, batches


def test_download_from_local_server(tmp_path, http_dir):
    srv, base = http_dir
    tar, batches = _fake_tarball(tmp_path, srv)
    root = tmp_path / "root"
    ds = CIFAR10(
        root,
        download=True,
        url=f"{base}/cifar-10-python.tar.gz",
        md5=_md5(tar),
        _expected_counts=COUNTS,
    )
    assert ds.integrity == "md5"
    np.testing.assert_array_equal(ds.data[:N_FAKE], _hwc(batches["data_batch_1"]))
    assert sorted(p.name for p in root.iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]


def test_download_url_from_env(tmp_path, http_dir, monkeypatch):
    srv, base = http_dir
    tar, _ = _fake_tarball(tmp_path, srv)
    monkeypatch.setenv("MINIGRAD_CIFAR10_URL", f"{base}/cifar-10-python.tar.gz")
    ds = CIFAR10(
        tmp_path / "root", train=False, download=True, md5=_md5(tar), _expected_counts=COUNTS
    )
    assert len(ds) == N_FAKE


def test_download_corrupted_is_rejected(tmp_path, http_dir):
    srv, base = http_dir
    tar, _ = _fake_tarball(tmp_path, srv)
    good = _md5(tar)
    raw = bytearray(tar.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tar.write_bytes(bytes(raw))
    bad = _md5(tar)
    root = tmp_path / "root"
    with pytest.raises(ValueError) as exc:
        CIFAR10(
            root,
            download=True,
            url=f"{base}/cifar-10-python.tar.gz",
            md5=good,
            _expected_counts=COUNTS,
        )
    msg = str(exc.value)
    assert good in msg and bad in msg and "expected" in msg
    assert not root.exists()  # no .part, no tarball, no (empty) folder


def test_download_without_network_is_helpful(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    with pytest.raises(RuntimeError) as exc:
        CIFAR10(root, download=True, url=f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
    msg = str(exc.value)
    assert f"127.0.0.1:{port}" in msg
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg
    assert "minigrad data convert" in msg and "MINIGRAD_CIFAR10_URL" in msg
    assert "../shared" not in msg
    assert not root.exists()  # no .part, and no empty folder left behind


# ----------------------------------------------------------------------------- datasets
class _ListDataset(Dataset):
    """Per-sample only (no get_batch): exercises the collate path."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def _xy(n=10):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    return x, np.arange(n, dtype=np.int64) % 3


def test_tensor_dataset_and_subset():
    x, y = _xy()
    ds = TensorDataset(mg.tensor(x), y)
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, x[4])
    assert yi == y[4]
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[1][0], x[2])
    bx, by = sub.get_batch(np.array([2, 0]))
    np.testing.assert_array_equal(bx, x[[5, 7]])
    with pytest.raises(ValueError, match="first dimension"):
        TensorDataset(x, y[:-1])


def test_random_split():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], seed=0)
    ia = [int(a[i][0]) for i in range(len(a))]
    ib = [int(b[i][0]) for i in range(len(b))]
    assert sorted(ia + ib) == list(range(10))
    a2, _ = random_split(ds, [7, 3], seed=0)
    assert [int(a2[i][0]) for i in range(7)] == ia
    assert [len(s) for s in random_split(ds, [0.5, 0.5], seed=1)] == [5, 5]
    with pytest.raises(ValueError, match="sum"):
        random_split(ds, [3, 3])


# ----------------------------------------------------------------------------- DataLoader
@pytest.mark.parametrize("per_sample", [False, True])
def test_loader_batches_len_drop_last(per_sample):
    x, y = _xy(10)
    ds = _ListDataset(x, y) if per_sample else TensorDataset(x, y)
    dl = DataLoader(ds, batch_size=3)
    assert len(dl) == 4
    batches = list(dl)
    assert len(batches) == 4
    assert [b[0].shape for b in batches] == [(3, 2, 3)] * 3 + [(1, 2, 3)]
    assert batches[0][1].dtype == np.int64 and batches[0][0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    dl = DataLoader(ds, batch_size=3, drop_last=True)
    assert len(dl) == 3 and len(list(dl)) == 3
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2


def _aug():
    return Compose([RandomCrop(4, padding=1), RandomHorizontalFlip(), ToFloatCHW()])


def _images(n=23):
    g = np.random.default_rng(0)
    return g.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8), np.arange(n)


def _run(dl):
    return [tuple(np.copy(f) for f in b) for b in dl]


def _same(a, b):
    return len(a) == len(b) and all(
        all(np.array_equal(u, v) for u, v in zip(p, q)) for p, q in zip(a, b)
    )


def test_shuffle_deterministic_and_threads_match():
    x, y = _images()
    ds = TensorDataset(x, y)
    ref = _run(DataLoader(ds, batch_size=4, shuffle=True, seed=7, transform=_aug()))
    again = _run(DataLoader(ds, batch_size=4, shuffle=True, seed=7, transform=_aug()))
    assert _same(ref, again)
    for nw, pf in [(1, 1), (2, 2), (3, 1)]:
        dl = DataLoader(
            ds, batch_size=4, shuffle=True, seed=7, transform=_aug(), num_workers=nw, prefetch=pf
        )
        assert _same(ref, _run(dl))
    # every sample exactly once, and actually shuffled
    labels = np.concatenate([b[1] for b in ref])
    assert sorted(labels.tolist()) == list(range(len(x)))
    assert labels.tolist() != list(range(len(x)))
    # a different seed gives a different order
    other = _run(DataLoader(ds, batch_size=4, shuffle=True, seed=8))
    assert not np.array_equal(np.concatenate([b[1] for b in other]), labels)


def test_threads_match_on_per_sample_path():
    x, y = _images()
    ds = _ListDataset(x, y)
    a = _run(DataLoader(ds, batch_size=5, shuffle=True, seed=1, transform=_aug()))
    b = _run(DataLoader(ds, batch_size=5, shuffle=True, seed=1, transform=_aug(), num_workers=2))
    assert _same(a, b)


def test_epochs_differ_and_are_reproducible():
    x, y = _images()
    dl = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3, transform=_aug())
    e0 = _run(dl)
    assert dl.epoch == 1  # a full pass advances the epoch
    e1 = _run(dl)
    assert not np.array_equal(
        np.concatenate([b[1] for b in e0]), np.concatenate([b[1] for b in e1])
    )
    dl.set_epoch(0)
    assert _same(_run(dl), e0)
    dl.set_epoch(1)
    assert _same(_run(dl), e1)


def test_state_dict_resumes_mid_epoch():
    x, y = _images()

    def make(nw):
        return DataLoader(
            TensorDataset(x, y),
            batch_size=4,
            shuffle=True,
            seed=11,
            transform=_aug(),
            num_workers=nw,
        )

    dl = make(0)
    _run(dl)  # epoch 0
    ref = make(0)
    ref.set_epoch(1)
    full = _run(ref)
    it = iter(dl)
    first = [tuple(np.copy(f) for f in next(it)) for _ in range(2)]
    state = dl.state_dict()
    assert state == {"seed": 11, "epoch": 1, "batches_done": 2}
    del it
    for nw in (0, 2):
        resumed = make(nw)
        resumed.load_state_dict(state)
        rest = _run(resumed)
        assert _same(first + rest, full)
        assert resumed.epoch == 2


def test_seed_from_manual_seed():
    ds = TensorDataset(np.arange(50))
    mg.manual_seed(123)
    a = DataLoader(ds, batch_size=10, shuffle=True)
    mg.manual_seed(123)
    b = DataLoader(ds, batch_size=10, shuffle=True)
    assert a.seed == b.seed
    assert _same(_run(a), _run(b))
    g = np.random.default_rng(5)
    c = DataLoader(ds, batch_size=10, shuffle=True, generator=g)
    d = DataLoader(ds, batch_size=10, shuffle=True, generator=np.random.default_rng(5))
    assert _same(_run(c), _run(d))


class _Exploding(Dataset):
    def __init__(self, n=40, bad=17):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def get_batch(self, idx, rng=None):
        if self.bad in idx:
            raise KeyError(f"sample {self.bad} is broken")
        return (np.asarray(idx),)


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("minigrad-DataLoader-worker")]


def _wait_no_workers(timeout=5.0):
    end = time.monotonic() + timeout
    while _worker_threads() and time.monotonic() < end:
        gc.collect()
        time.sleep(0.02)
    return _worker_threads()


@pytest.mark.parametrize("nw", [0, 2])
def test_worker_exception_propagates(nw):
    dl = DataLoader(_Exploding(), batch_size=4, num_workers=nw)
    got = []
    with pytest.raises(KeyError, match="sample 17 is broken") as exc:
        for (b,) in dl:
            got.append(b)
    assert len(got) == 4  # batches 0..3 arrive, batch 4 holds sample 17
    if nw:
        assert any("batch 4" in n for n in getattr(exc.value, "__notes__", ["batch 4"]))
    del exc
    assert _wait_no_workers() == []


def test_abandoned_iterator_stops_workers():
    x, y = _images(200)
    dl = DataLoader(TensorDataset(x, y), batch_size=2, num_workers=2, prefetch=2)
    for i, _ in enumerate(dl):
        if i == 3:
            break
    assert _wait_no_workers() == []
    it = iter(dl)
    next(it)
    del it
    assert _wait_no_workers() == []
    assert dl.epoch == 0  # an unfinished pass does not advance the epoch


def test_interpreter_exits_with_live_loader_iterator():
    code = (
        "import numpy as np\n"
        "from minigrad.data import DataLoader, TensorDataset\n"
        "dl = DataLoader(TensorDataset(np.zeros((1000, 64))), batch_size=2, num_workers=2)\n"
        "IT = iter(dl)\n"
        "next(IT)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_collate_fn_and_dict_samples():
    class D(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i}

    b = next(iter(DataLoader(D(), batch_size=5)))
    assert b["x"].shape == (5, 2) and b["y"].tolist() == [0, 1, 2, 3, 4]
    dl = DataLoader(TensorDataset(np.arange(6)), batch_size=3, collate_fn=lambda s: len(s))
    assert list(dl) == [3, 3]


def test_device_output_tensors():
    x, y = _xy(7)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4, device="cpu"))
    bx, by = batches[0]
    assert isinstance(bx, mg.Tensor) and isinstance(by, mg.Tensor)
    assert bx.shape == (4, 2, 3) and bx.dtype == np.float32 and by.dtype == np.int64
    assert bx.device == "cpu"
    np.testing.assert_array_equal(bx.numpy(), x[:4])


@pytest.mark.gpu
def test_device_output_cuda():
    x, y = _xy(7)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, device="cuda", num_workers=2)
    bx, by = next(iter(dl))
    assert bx.device == "cuda:0" and by.device == "cuda:0"
    np.testing.assert_array_equal(bx.cpu().numpy(), x[:4])


def test_cifar_with_loader_and_transforms(tmp_path):
    make_fake_cifar(tmp_path)
    tf = Compose(
        [
            RandomCrop(32, padding=4),
            RandomHorizontalFlip(),
            ToFloatCHW(),
            Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        ]
    )
    ds = CIFAR10(tmp_path, transform=tf, _expected_counts=COUNTS)
    a = _run(DataLoader(ds, batch_size=16, shuffle=True, seed=0, num_workers=2))
    b = _run(DataLoader(ds, batch_size=16, shuffle=True, seed=0))
    assert _same(a, b)
    assert a[0][0].shape == (16, 3, 32, 32) and a[0][0].dtype == np.float32
    assert len(a) == 7 and a[-1][0].shape == (4, 3, 32, 32)
    img, _ = ds[0]  # per-sample path: the same transform on one image
    assert img.shape == (3, 32, 32)


# ----------------------------------------------------------------------------- transforms
def test_to_float_chw():
    x = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    out = ToFloatCHW()(x)
    assert out.shape == (5, 3, 6, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out, x.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    single = ToFloatCHW()(x[2])
    np.testing.assert_array_equal(single, out[2])


def test_normalize_values():
    x = np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = Normalize(mean, std)(x)
    ref = (x - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(Normalize(mean, std)(x[1]), ref[1], rtol=1e-5, atol=1e-6)
    assert not np.shares_memory(out, x)
    with pytest.raises(TypeError, match="ToFloatCHW"):
        Normalize(mean, std)(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="channels"):
        Normalize((0.1, 0.2), (1, 1))(x)


@pytest.mark.parametrize("layout", ["uint8_hwc", "float_chw"])
def test_random_flip_matches_loop(layout):
    g = np.random.default_rng(1)
    if layout == "uint8_hwc":
        x, col = g.integers(0, 256, (16, 5, 6, 3), dtype=np.uint8), 1
    else:
        x, col = g.random((16, 3, 5, 6)).astype(np.float32), 2
    out = RandomHorizontalFlip(p=0.5)(x, rng=np.random.default_rng(42))
    mask = np.random.default_rng(42).random(16) < 0.5
    assert 0 < mask.sum() < 16
    for i in range(16):
        ref = np.flip(x[i], axis=col) if mask[i] else x[i]
        np.testing.assert_array_equal(out[i], ref)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x[0]), np.flip(x[0], axis=col))
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)


@pytest.mark.parametrize("layout", ["uint8_hwc", "float_chw"])
def test_random_crop_matches_loop(layout):
    g = np.random.default_rng(2)
    n, h, w, pad, size = 12, 6, 7, 2, (5, 4)
    if layout == "uint8_hwc":
        x = g.integers(1, 256, (n, h, w, 3), dtype=np.uint8)
    else:
        x = (g.random((n, 3, h, w)) + 1).astype(np.float32)
    out = RandomCrop(size, padding=pad)(x, rng=np.random.default_rng(9))
    r = np.random.default_rng(9)
    oy = r.integers(0, h + 2 * pad - size[0] + 1, size=n)
    ox = r.integers(0, w + 2 * pad - size[1] + 1, size=n)
    for i in range(n):
        if layout == "uint8_hwc":
            p = np.pad(x[i], ((pad, pad), (pad, pad), (0, 0)))
            ref = p[oy[i] : oy[i] + size[0], ox[i] : ox[i] + size[1], :]
        else:
            p = np.pad(x[i], ((0, 0), (pad, pad), (pad, pad)))
            ref = p[:, oy[i] : oy[i] + size[0], ox[i] : ox[i] + size[1]]
        np.testing.assert_array_equal(out[i], ref)
    assert out.dtype == x.dtype and out.flags.c_contiguous
    # zeros come from the padding only
    assert (out == 0).any()
    single = RandomCrop(size, padding=pad)(x[0], rng=np.random.default_rng(0))
    assert single.shape == ((*size, 3) if layout == "uint8_hwc" else (3, *size))


def test_random_transforms_deterministic_with_seeds():
    x = np.random.default_rng(3).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    a = Compose([RandomCrop(8, padding=2, seed=5), RandomHorizontalFlip(seed=6)])
    b = Compose([RandomCrop(8, padding=2, seed=5), RandomHorizontalFlip(seed=6)])
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), a(x))  # the owned generator advances between calls
    r1 = a(x, rng=np.random.default_rng(0))
    r2 = b(x, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, a(x, rng=np.random.default_rng(1)))
    mg.manual_seed(4)
    c = RandomCrop(8, padding=2)
    mg.manual_seed(4)
    d = RandomCrop(8, padding=2)
    np.testing.assert_array_equal(c(x), d(x))


def test_restricted_load_refuses_a_pickle_asking_for_terabytes(tmp_path):
    """An array header of 32 TiB: a ValueError naming the file, not a MemoryError."""
    from numpy._core.multiarray import _reconstruct

    from minigrad.data.cifar10 import restricted_load

    class Huge:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (2**45,), b"b"))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Huge()}, protocol=4))
    with pytest.raises(ValueError, match="data_batch_1.*memory"):
        restricted_load(str(path))
