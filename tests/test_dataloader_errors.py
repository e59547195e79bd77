"""DataLoader misuse and misbehaving datasets: clear errors like PyTorch's, never a silently
short epoch, nothing printed by a half-built iterator."""

import gc
import sys
import threading

import numpy as np
import pytest

from minigrad.data import DataLoader, Dataset, TensorDataset


def _ds(n=20):
    return TensorDataset(np.arange(n, dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": "4"}, TypeError, "batch_size"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -3}, ValueError, "batch_size"),
        ({"num_workers": 1.5}, TypeError, "num_workers"),
        ({"num_workers": True}, TypeError, "num_workers"),
        ({"num_workers": -1}, ValueError, "num_workers"),
        ({"prefetch": 0}, ValueError, "prefetch"),
        ({"prefetch": 2.5}, TypeError, "prefetch"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_are_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DataLoader(_ds(), **kwargs)


def test_numpy_integers_are_fine():
    dl = DataLoader(_ds(), batch_size=np.int64(4), num_workers=np.int32(0), seed=np.uint8(3))
    assert len(dl) == 5 and dl.num_workers == 0


class _StopsEarly(Dataset):
    """A dataset whose item 9 raises StopIteration (e.g. a next() on an exhausted iterator)."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 9:
            raise StopIteration
        return np.float32(i)


@pytest.mark.parametrize("nw", [0, 2])
def test_stop_iteration_in_dataset_is_an_error(nw):
    dl = DataLoader(_StopsEarly(), batch_size=4, num_workers=nw)
    got = []
    with pytest.raises(RuntimeError, match="StopIteration") as exc:
        for b in dl:
            got.append(b)
    assert "batch 2" in str(exc.value)
    assert len(got) == 2  # batches 0 and 1; batch 2 holds item 9
    assert dl.epoch == 0  # an epoch that failed does not count as finished


class _NoLen(Dataset):
    def __len__(self):
        raise OSError("the dataset's file went away")

    def __getitem__(self, i):
        return i


def test_failed_iterator_construction_prints_nothing(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u))
    dl = DataLoader(_ds(), batch_size=4)
    dl.dataset = _NoLen()
    with pytest.raises(OSError, match="went away"):
        iter(dl)
    gc.collect()
    assert seen == [], [str(u.exc_value) for u in seen]


def test_failed_thread_start_stops_the_started_workers(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u))
    real_start = threading.Thread.start
    started = []

    def start(self):
        if self.name.startswith("minigrad-DataLoader-worker") and len(started) == 2:
            raise RuntimeError("can't start new thread")
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    dl = DataLoader(_ds(200), batch_size=4, num_workers=5)
    with pytest.raises(RuntimeError, match="could not start DataLoader worker thread 3 of 5"):
        iter(dl)
    monkeypatch.undo()
    for t in started:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in started)
    gc.collect()
    assert seen == []
