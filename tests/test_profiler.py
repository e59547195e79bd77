"""minigrad.profiler: counts and FLOPs from shapes, the table layout, the Chrome trace."""

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd
from minigrad.models import LeNet
from minigrad.nn import functional as F
from minigrad.profiler import profile, record_function

N = 4
# LeNet on (4, 3, 32, 32), by hand: 2 * (output elements) * (multiply-adds per element)
CONV1 = 2 * (N * 6 * 28 * 28) * (3 * 5 * 5)  # 2,822,400
CONV2 = 2 * (N * 16 * 10 * 10) * (6 * 5 * 5)  # 1,920,000
FC = [2 * N * 120 * 400, 2 * N * 84 * 120, 2 * N * 10 * 84]  # 384,000 80,640 6,720


def _lenet_step(prof_kwargs=None):
    mg.manual_seed(0)
    model = LeNet()
    x = mg.randn(N, 3, 32, 32)
    if prof_kwargs is None:
        loss = model(x).sum()
        loss.backward()
        return model, loss, None
    with profile(**prof_kwargs) as prof:
        loss = model(x).sum()
        loss.backward()
    return model, loss, prof


def test_lenet_counts_and_flops_exact():
    _, _, prof = _lenet_step({})
    avg = {a.key: a for a in prof.key_averages()}
    assert avg["Conv2d"].count == 2
    assert avg["Conv2d"].flops == CONV1 + CONV2
    # conv1's input needs no gradient: only its weight gradient (one forward's worth)
    assert avg["Conv2dBackward"].count == 2
    assert avg["Conv2dBackward"].flops == CONV1 + 2 * CONV2
    # three linear layers forward, and two matmuls in each MatMulBackward (dX and dW)
    assert avg["MatMulBackward"].count == 3
    assert avg["MatMul"].count == 9
    assert avg["MatMul"].flops == 3 * sum(FC)
    top = [e for e in prof.events() if e.name == "MatMul" and e.parent is None]
    assert [e.flops for e in top] == FC
    nested = [e for e in prof.events() if e.name == "MatMul" and e.parent is not None]
    assert {e.parent.name for e in nested} == {"MatMulBackward"} and len(nested) == 6
    # bytes: inputs + outputs of fc3's matmul, (4, 84) @ (84, 10) -> (4, 10) float32
    assert top[2].io_bytes == 4 * (N * 84 + 84 * 10 + N * 10)
    assert avg["BiasReLUBackward"].count == 4
    assert all(e.dur >= 0 and e.self_dur >= 0 for e in prof.events())
    assert autograd.hooks.get_profiler() is None and autograd.get_tracer() is None


def test_attention_flops():
    q = mg.randn(2, 3, 5, 4, requires_grad=True)
    k = mg.randn(2, 3, 6, 4, requires_grad=True)
    v = mg.randn(2, 3, 6, 7, requires_grad=True)
    with profile() as prof:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    avg = {a.key: a for a in prof.key_averages()}
    fwd = 2 * 6 * 5 * 6 * 4 + 2 * 6 * 5 * 6 * 7
    assert avg["Attention"].flops == fwd
    assert avg["AttentionBackward"].flops == 2 * fwd


def test_profiling_does_not_change_results():
    m0, loss0, _ = _lenet_step()
    m1, loss1, _ = _lenet_step({"record_shapes": True})
    assert loss0.item() == loss1.item()
    for p0, p1 in zip(m0.parameters(), m1.parameters()):
        np.testing.assert_array_equal(p0.grad.numpy(), p1.grad.numpy())


def test_table_layout():
    _, _, prof = _lenet_step({})
    text = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    lines = text.splitlines()
    assert lines[0].startswith("---") and lines[2].startswith("---")
    cols = [c.strip() for c in lines[1].split("  ") if c.strip()]
    assert cols == [
        "Name",
        "Self CPU %",
        "Self CPU",
        "CPU total %",
        "CPU total",
        "CPU time avg",
        "# of Calls",
        "Total MFLOPs",
        "Total I/O",
    ]
    rows = lines[3:-2]
    assert len(rows) == 5 and lines[-2].startswith("---")
    assert lines[-1].startswith("Self CPU time total: ")
    selfs = [
        a.self_cpu_time_total
        for a in sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:5]
    ]
    assert [r.split()[0] for r in rows] == [
        a.key for a in sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:5]
    ]
    assert selfs == sorted(selfs, reverse=True)
    plain = profile(with_flops=False, with_bytes=False)
    with plain:
        (mg.randn(3, 3, requires_grad=True) @ mg.randn(3, 3)).sum().backward()
    header = plain.key_averages().table().splitlines()[1]
    assert header.split()[-3:] == ["#", "of", "Calls"]
    with pytest.raises(ValueError, match="unknown sort_by"):
        prof.key_averages().table(sort_by="nope")


def test_chrome_trace_well_formed(tmp_path):
    _, _, prof = _lenet_step({"record_shapes": True})
    with profile() as prof2, record_function("step"):
        (mg.randn(2, 3, requires_grad=True) * 2.0).sum().backward()
    for p in (prof, prof2):
        path = p.export_chrome_trace(tmp_path / "trace.json")
        data = json.loads(open(path).read())
        events = data["traceEvents"]
        assert events and len(events) == len(p.events())
        for ev in events:
            assert {"name", "ph", "ts", "dur", "pid", "tid", "args"} <= set(ev)
            assert ev["ph"] == "X" and ev["dur"] >= 0 and ev["ts"] >= 0
        stack = []  # on one thread, events are disjoint or nested
        for ev in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= ev["ts"] + 1e-3:
                stack.pop()
            if stack:
                assert ev["ts"] + ev["dur"] <= stack[-1]["ts"] + stack[-1]["dur"] + 1e-3, ev
            stack.append(ev)
    names = {e.name for e in prof2.events()}
    assert "step" in names
    step = next(e for e in prof2.events() if e.name == "step")

    def root(e):
        while e.parent is not None:
            e = e.parent
        return e

    assert all(root(e) is step for e in prof2.events())
    assert any(e.parent is step for e in prof2.events())


def test_no_profiler_after_exit_and_errors():
    with pytest.raises(ValueError):
        with profile():
            mg.randn(2, 3) @ mg.randn(4, 5)
    assert autograd.hooks.get_profiler() is None
    with profile():
        with pytest.raises(RuntimeError, match="already recording"):
            profile().__enter__()
    assert autograd.hooks.get_profiler() is None


def test_explain_still_sees_backward_inside_profile():
    x = mg.randn(3, requires_grad=True)
    seen = []

    class Tracer:
        def record(self, node, *rest):
            seen.append(node.name())

    with autograd.tracing(Tracer()), profile() as prof:
        (x * x).sum().backward()
    assert "MulBackward" in seen
    assert any(e.name == "MulBackward" for e in prof.events())
