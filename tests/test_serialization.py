"""minigrad.save / minigrad.load: exact round trips, atomic writes, and files that are not
checkpoints (never unpickled)."""

import json
import math
import os
import pickle
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim, serialization
from minigrad.serialization import load, save


class _Evil:
    """Unpickling this creates ``marker``: proof that pickle code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _equal(a, b):
    """Deep equality that also checks types and dtypes (and treats nan == nan)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, mg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    elif isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _equal(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b)
    else:
        assert a == b


def _nested():
    rng = np.random.default_rng(0)
    arrays = {
        str(dt): rng.standard_normal((3, 2)).astype(dt)
        for dt in (np.float16, np.float32, np.float64, np.complex64)
    }
    arrays.update(
        {
            "int8": np.arange(-3, 3, dtype=np.int8),
            "int32": np.arange(4, dtype=np.int32),
            "int64": np.array([-(2**62), 2**62]),
            "uint8": np.arange(250, 256, dtype=np.uint8),
            "uint64": np.array([2**64 - 1], dtype=np.uint64),
            "bool": np.array([True, False]),
            "zero_d": np.array(3.5),
            "empty": np.zeros((0, 4), np.float32),
            "strided": np.arange(12.0).reshape(3, 4).T[::2],
        }
    )
    return {
        "arrays": arrays,
        "tensors": [
            mg.tensor([[1.0, 2.0]], requires_grad=True),
            mg.tensor([1, 2, 3]),
            mg.tensor(np.float64(2.5)),
            mg.zeros(0, 3),
            mg.tensor([True, False]),
        ],
        "scalars": (
            None,
            True,
            False,
            0,
            -7,
            2**63 - 1,
            -(2**63),
            2**63,
            -(2**100),
            3**90,
            0.1,
            -0.0,
            1e308,
            float("inf"),
            float("-inf"),
            float("nan"),
            "",
            "héllo",
        ),
        "numpy_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.uint16(7)],
        1: "int key",
        (2, "a"): "tuple key",
        None: "none key",
        2.5: [],
        "nested": {"x": {}},
    }


def test_nested_round_trip(tmp_path):
    obj = _nested()
    save(obj, tmp_path / "x.npz")
    back = load(tmp_path / "x.npz")
    _equal(obj, back)


def test_returns_tensors_and_arrays_and_shares_objects(tmp_path):
    t = mg.ones(3)
    a = np.arange(3)
    save({"t1": t, "t2": t, "a1": a, "a2": a}, tmp_path / "x.npz")
    back = load(tmp_path / "x.npz", map_location="cpu")
    assert isinstance(back["t1"], mg.Tensor) and back["t1"].device == "cpu"
    assert type(back["a1"]) is np.ndarray
    assert back["t1"] is back["t2"] and back["a1"] is back["a2"]
    back["a1"][0] = 10  # writable, and owned by the caller
    assert a[0] == 0


def test_rng_state_round_trips_exactly(tmp_path):
    mg.manual_seed(1234)
    mg.randn(7)
    state = mg.get_rng_state()
    assert any(v > 2**63 for v in state["state"].values())  # 128-bit PCG64 integers
    save({"rng": state}, tmp_path / "rng.npz")
    expected = mg.randn(5).numpy().copy()
    mg.manual_seed(99)
    loaded = load(tmp_path / "rng.npz")["rng"]
    assert loaded == state
    mg.set_rng_state(loaded)
    np.testing.assert_array_equal(mg.randn(5).numpy(), expected)


def test_resumed_training_reproduces_losses_bit_for_bit(tmp_path):
    """Checklist 29: params, Adam moments, step counts, scheduler and RNG state survive a
    save/load, and the resumed run's next losses equal the uninterrupted run's exactly."""

    def make():
        w = mg.tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2), requires_grad=True)
        opt = optim.Adam([w], lr=0.05, amsgrad=True)
        return w, opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)

    def train(w, opt, sched, steps):
        losses = []
        for _ in range(steps):
            x = mg.randn(16, 4)
            loss = ((x @ w - 1.0) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        return losses

    mg.manual_seed(0)
    w, opt, sched = make()
    train(w, opt, sched, 10)
    save(
        {
            "model": {"w": w},
            "optim": opt.state_dict(),
            "sched": sched.state_dict(),
            "rng": mg.get_rng_state(),
        },
        tmp_path / "ckpt.npz",
    )
    expected = train(w, opt, sched, 10)

    mg.manual_seed(42)  # a different process state
    ckpt = load(tmp_path / "ckpt.npz")
    w2, opt2, sched2 = make()
    w2._data[...] = ckpt["model"]["w"].detach().numpy()
    opt2.load_state_dict(ckpt["optim"])
    sched2.load_state_dict(ckpt["sched"])
    mg.set_rng_state(ckpt["rng"])
    assert train(w2, opt2, sched2, 10) == expected


# ----------------------------------------------------------------------------- atomicity
def _boom_after_partial_write(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a checkpoint")
    raise KeyboardInterrupt


@pytest.mark.parametrize("existing", [True, False])
def test_interrupted_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, existing):
    path = tmp_path / "ckpt.npz"
    if existing:
        save({"w": mg.ones(3)}, path)
        before = path.read_bytes()
    monkeypatch.setattr(np, "savez", _boom_after_partial_write)
    with pytest.raises(KeyboardInterrupt):
        save({"w": mg.zeros(3)}, path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == (["ckpt.npz"] if existing else [])
    if existing:
        assert path.read_bytes() == before
        np.testing.assert_array_equal(load(path)["w"].numpy(), np.ones(3, np.float32))


def test_failed_rename_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"v": 1}, path)

    def fail(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        save({"v": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert load(path) == {"v": 1}


def test_unsupported_objects_are_rejected_before_writing(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"object at obj\['layers'\]\[1\]"):
        save({"layers": [1, object()]}, path)
    with pytest.raises(TypeError, match="dtype object"):
        save({"a": np.array([None, 1], dtype=object)}, path)
    with pytest.raises(TypeError, match="dict key"):
        save({frozenset(): 1}, path)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- bad files
def _valid_file(tmp_path):
    path = tmp_path / "good.npz"
    save({"w": mg.randn(64, 64), "step": 3}, path)
    return path


def test_truncated_file(tmp_path):
    data = _valid_file(tmp_path).read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"{bad}.*corrupt"):
            load(bad)


def test_random_bytes_and_empty_file(tmp_path):
    bad = tmp_path / "random.npz"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=f"{bad} is not a minigrad checkpoint"):
        load(bad)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        load(empty)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_plain_npz_without_header(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        load(path)


def test_wrong_format_tag_or_version(tmp_path):
    for header, match in [
        ({"format": "other", "version": 1, "root": None}, "not a minigrad"),
        ({"format": "minigrad-checkpoint", "version": 99, "root": None}, "version 99"),
        (
            {
                "format": "minigrad-checkpoint",
                "version": 1,
                "root": {"__mg__": "ndarray", "key": "a7"},
            },
            "missing",
        ),
    ]:
        path = tmp_path / "h.npz"
        blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez(path, minigrad_header=blob)
        with pytest.raises(ValueError, match=match):
            load(path)


def test_pickle_file_is_rejected_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": _Evil(marker)}))
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        load(path)
    assert not marker.exists()
    # a pickle hidden in a zip member that is not .npy is not unpickled either
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("data.pkl", pickle.dumps(_Evil(marker)))
    with pytest.raises(ValueError):
        load(zpath)
    assert not marker.exists()


def test_object_array_member_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    header = {
        "format": serialization.FORMAT_TAG,
        "version": serialization.FORMAT_VERSION,
        "root": {"__mg__": "dict", "items": [["w", {"__mg__": "ndarray", "key": "a0"}]]},
    }
    np.savez(
        path,
        allow_pickle=True,
        a0=np.array([_Evil(marker)], dtype=object),
        minigrad_header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
    )
    with pytest.raises(ValueError, match="corrupt"):
        load(path)
    assert not marker.exists()
    # the payload is live: loading it with pickle allowed would have created the marker
    with np.load(path, allow_pickle=True) as npz:
        npz["a0"]
    assert marker.exists()


# ----------------------------------------------------------------------------- devices
@pytest.mark.gpu
def test_gpu_tensors_saved_as_host_arrays(tmp_path):
    t = mg.tensor([[1.0, 2.0]], device="cuda", requires_grad=True)
    save({"t": t}, tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz", allow_pickle=False) as npz:
        assert type(npz["a0"]) is np.ndarray
    on_host = load(tmp_path / "g.npz", map_location="cpu")["t"]
    assert on_host.device == "cpu" and on_host.requires_grad
    on_device = load(tmp_path / "g.npz")["t"]
    assert on_device.is_cuda
    np.testing.assert_array_equal(on_device.detach().cpu().numpy(), [[1.0, 2.0]])
