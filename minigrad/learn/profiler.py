"""``minigrad.profiler``: where the time goes, per op, with PyTorch's ``torch.profiler`` API.

::

    from minigrad.profiler import profile

    with profile() as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")   # open in https://ui.perfetto.dev

Every :class:`~minigrad.autograd.Function` call is one event named after its class
(``MatMul``, ``Conv2d``), every backward node one event named after the node
(``MatMulBackward``). Ops a backward formula calls (``MatMul`` inside ``MatMulBackward``) are
recorded too, as children of that node, so a node's *self* time excludes them, as in
PyTorch. Each event carries its FLOPs (matmul, conv2d, attention: counted from the shapes,
two per multiply-add, as ``torch.profiler`` with ``with_flops=True``) and its bytes (inputs
plus outputs; for a backward node the gradients in and out).

How it hooks in: ``Function.apply`` hands each call to the profiler while one records
(``autograd.hooks.set_profiler``), and the backward loop reports each node to the tracer hook
(``autograd.set_tracer``) that ``explain`` also uses. Nothing is recorded when no profiler is
active; the cost then is one ``is not None`` test per op.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import weakref

from .. import autograd
from ..tensor import Tensor

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg"]


# ----------------------------------------------------------------------------- FLOPs
def _prod(shape) -> int:
    return math.prod(int(s) for s in shape)


def _matmul_flops(args, out) -> int:
    # (..., M, K) @ (..., K, N): one multiply-add per (output element, k)
    return 2 * _prod(out.shape) * int(args[0].shape[-1])


def _conv2d_flops(args, out) -> int:
    # each output element: (C_in / groups) * KH * KW multiply-adds; the bias is not counted
    return 2 * _prod(out.shape) * _prod(args[1].shape[1:])


def _attention_flops(args, out) -> int:
    q, k, v = args[0], args[1], args[2]
    batch = _prod(out.shape[:-2])
    L, S = int(q.shape[-2]), int(k.shape[-2])
    # q k^T: L x S dot products of length E; softmax(.) v: L x Ev dot products of length S
    return 2 * batch * L * S * int(q.shape[-1]) + 2 * batch * L * S * int(v.shape[-1])


_FLOPS = {"MatMul": _matmul_flops, "Conv2d": _conv2d_flops, "Attention": _attention_flops}
# Fused backward nodes compute their gradients in one kernel (no nested ops to count), from
# the forward's FLOPs: conv2d, one forward's worth for the input gradient and one for the
# weight gradient, each when needed; attention, two forwards' worth (dP and dV like P v, dQ
# and dK like q k^T), as torch's FLOP counter.
_FUSED_BACKWARD = {
    "Conv2dBackward": lambda node, f: f * (node.needs_input_grad[0] + node.needs_input_grad[1]),
    "AttentionBackward": lambda node, f: 2 * f,
}


def _nbytes(items) -> int:
    return sum(t.nbytes for t in items if isinstance(t, Tensor))


# ----------------------------------------------------------------------------- events
class FunctionEvent:
    """One timed call: ``name``, ``kind`` ("forward", "backward" or "user"), start ``ts`` and
    ``dur`` in microseconds, ``flops``, ``io_bytes``, ``input_shapes``, thread id."""

    __slots__ = (
        "name",
        "kind",
        "ts",
        "dur",
        "self_dur",
        "flops",
        "io_bytes",
        "input_shapes",
        "tid",
        "parent",
    )

    def __init__(self, name, kind, ts, dur, flops=0, io_bytes=0, input_shapes=None):
        self.name, self.kind, self.ts, self.dur = name, kind, ts, dur
        self.self_dur = dur
        self.flops, self.io_bytes, self.input_shapes = flops, io_bytes, input_shapes
        self.tid = threading.get_ident()
        self.parent = None

    @property
    def end(self) -> float:
        return self.ts + self.dur

    def __repr__(self) -> str:
        return (
            f"<FunctionEvent {self.name} {self.kind} ts={self.ts:.3f}us "
            f"dur={self.dur:.3f}us flops={self.flops}>"
        )


class FunctionEventAvg:
    """The events of one name together (PyTorch's ``FunctionEventAvg``); times in us."""

    def __init__(self, key: str):
        self.key = key
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.flops = 0
        self.io_bytes = 0
        self.input_shapes = None

    def add(self, ev: FunctionEvent) -> None:
        self.count += 1
        self.cpu_time_total += ev.dur
        self.self_cpu_time_total += ev.self_dur
        self.flops += ev.flops
        self.io_bytes += ev.io_bytes

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / max(self.count, 1)

    def __repr__(self) -> str:
        return (
            f"<FunctionEventAvg key={self.key} count={self.count} "
            f"self_cpu_time_total={self.self_cpu_time_total:.3f}us "
            f"cpu_time_total={self.cpu_time_total:.3f}us flops={self.flops}>"
        )


def _format_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_share(us: float, total: float) -> str:
    return "NaN" if total == 0 else f"{us * 100.0 / total:.2f}%"


def _format_memory(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


_SORT_KEYS = (
    "cpu_time",
    "cpu_time_total",
    "self_cpu_time_total",
    "self_cpu_time",
    "count",
    "flops",
    "io_bytes",
)


class EventList(list):
    """A list of :class:`FunctionEventAvg` (from ``key_averages()``) or events, with
    PyTorch's ``table()``."""

    def __init__(self, items=(), with_flops=True, with_bytes=True):
        super().__init__(items)
        self.with_flops, self.with_bytes = with_flops, with_bytes

    def table(
        self,
        sort_by: str | None = None,
        row_limit: int = 100,
        header: str | None = None,
        max_name_column_width: int = 55,
        time_unit: str | None = None,
        top_level_events_only: bool = False,
    ) -> str:
        """The summary table in ``torch.profiler``'s layout: Name, Self CPU %, Self CPU,
        CPU total %, CPU total, CPU time avg, # of Calls, then Total FLOPs (scaled, when any
        event has some) and Total I/O (input + output bytes)."""
        events = [e if isinstance(e, FunctionEventAvg) else _avg_of(e) for e in self]
        if not events:
            return ""
        if sort_by is not None:
            key = sort_by.replace("cuda", "device")
            if key not in _SORT_KEYS:
                raise ValueError(
                    f"table: unknown sort_by {sort_by!r}; expected one of {', '.join(_SORT_KEYS)}"
                )
            events = sorted(events, key=lambda e: getattr(e, key), reverse=True)

        def fmt_time(us):
            scale = {"s": 1e6, "ms": 1e3, "us": 1.0}.get(time_unit)
            return _format_time(us) if scale is None else f"{us / scale:.3f}{time_unit}"

        name_w = min(max(len(e.key) for e in events) + 4, max_name_column_width)
        headers = [
            "Name",
            "Self CPU %",
            "Self CPU",
            "CPU total %",
            "CPU total",
            "CPU time avg",
            "# of Calls",
        ]
        widths = [name_w] + [12] * 6
        flops = [e.flops for e in events if e.flops > 0]
        with_flops = self.with_flops and bool(flops)
        if with_flops:  # PyTorch scales by the smallest non-zero count
            units = ["FLOPs", "KFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs"]
            level = int(max(0, min(math.log10(min(flops)) / 3, len(units) - 1)))
            flops_scale = 10.0 ** (-3 * level)
            headers.append(f"Total {units[level]}")
            widths.append(12)
        if self.with_bytes:
            headers.append("Total I/O")
            widths.append(12)
        row = "".join("{:>" + str(w) + "}  " for w in widths)
        sep = "".join("-" * w + "  " for w in widths)
        total_self = sum(e.self_cpu_time_total for e in events)
        out = []
        if header is not None:
            out += ["=" * (len(sep) - 2), header]
        out += [sep, row.format(*headers), sep]
        for e in events[:row_limit]:
            name = e.key
            if len(name) >= max_name_column_width - 3:
                name = name[: max_name_column_width - 3] + "..."
            values = [
                name,
                _format_share(e.self_cpu_time_total, total_self),
                fmt_time(e.self_cpu_time_total),
                _format_share(e.cpu_time_total, total_self),
                fmt_time(e.cpu_time_total),
                fmt_time(e.cpu_time),
                e.count,
            ]
            if with_flops:
                values.append("--" if e.flops <= 0 else f"{e.flops * flops_scale:8.3f}")
            if self.with_bytes:
                values.append(_format_memory(e.io_bytes))
            out.append(row.format(*values))
        out += [sep, f"Self CPU time total: {fmt_time(total_self)}"]
        return "\n".join(out) + "\n"


def _avg_of(ev: FunctionEvent) -> FunctionEventAvg:
    a = FunctionEventAvg(ev.name)
    a.add(ev)
    return a


# ----------------------------------------------------------------------------- the profiler
_active = None  # the recording profile, if any


def _now_us() -> float:
    return time.perf_counter_ns() / 1e3


class profile:  # PyTorch's name
    """Record every op's forward call and every backward node inside the ``with`` block.

    ``with_flops`` and ``with_bytes`` choose the table's last columns (the events always carry
    both); ``record_shapes`` keeps each forward call's input shapes (``group_by_input_shape``).
    ``activities``, ``profile_memory``, ``with_stack`` and ``with_modules`` are accepted for
    PyTorch compatibility and ignored. One profile at a time; an op another thread runs
    while one is being timed is not recorded. Times are host times: on CUDA they measure
    launches unless the code synchronises (``minigrad.cuda``-style sync) inside the block.
    """

    def __init__(
        self,
        activities=None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = True,
        with_modules: bool = False,
        with_bytes: bool = True,
        enabled: bool = True,
    ):
        self.record_shapes, self.with_flops, self.with_bytes = record_shapes, with_flops, with_bytes
        self.enabled = enabled
        self.busy = False
        self._events: list[FunctionEvent] = []
        self._node_flops = weakref.WeakKeyDictionary()  # forward FLOPs of each fused node
        self._prev_tracer = None
        self._t0 = 0.0

    # -- context manager
    def __enter__(self):
        global _active
        if not self.enabled:
            return self
        if autograd.hooks.get_profiler() is not None:
            raise RuntimeError("profile: another minigrad profile is already recording")
        self._t0 = _now_us()
        self._prev_tracer = autograd.set_tracer(self)
        autograd.hooks.set_profiler(self)
        _active = self
        return self

    def __exit__(self, *exc):
        global _active
        if not self.enabled:
            return False
        autograd.hooks.set_profiler(None)
        autograd.set_tracer(self._prev_tracer)
        _active = None
        return False

    def start(self):
        return self.__enter__()

    def stop(self):
        self.__exit__(None, None, None)

    # -- hooks called by autograd
    def forward(self, cls, args, kwargs):
        """``Function.apply`` while recording: time the call, count its FLOPs and bytes."""
        self.busy = True
        t0 = _now_us()
        try:
            out = cls.apply(*args, **kwargs)
        finally:
            self.busy = False
        t1 = _now_us()
        outs = out if isinstance(out, tuple) else (out,)
        name = cls.__name__
        if name.endswith("Backward"):  # an op used by a backward formula: not the node's name
            name += ".apply"
        rule = _FLOPS.get(name)
        flops = rule(args, outs[0]) if rule is not None else 0
        if flops and name + "Backward" in _FUSED_BACKWARD and outs[0].grad_fn is not None:
            self._node_flops[outs[0].grad_fn] = flops
        shapes = None
        if self.record_shapes:
            shapes = [list(a.shape) if isinstance(a, Tensor) else [] for a in args]
        self._events.append(
            FunctionEvent(
                name, "forward", t0, t1 - t0, flops, _nbytes(args) + _nbytes(outs), shapes
            )
        )
        return out

    def record(self, node, grads, in_grads, seconds, raw_grads) -> None:
        """The backward loop's tracer hook: one call after each node has run."""
        if self._prev_tracer is not None:  # keep explain (or another tracer) working
            self._prev_tracer.record(node, grads, in_grads, seconds, raw_grads)
        if isinstance(node, autograd.AccumulateGrad):
            return
        end = _now_us()
        name = node.name()
        flops = 0
        rule = _FUSED_BACKWARD.get(name)
        if rule is not None and not autograd.is_grad_enabled():  # create_graph: nested ops
            flops = int(rule(node, self._node_flops.get(node, 0)))
        ev = FunctionEvent(
            name,
            "backward",
            end - seconds * 1e6,
            seconds * 1e6,
            flops,
            _nbytes(grads) + _nbytes(in_grads),
        )
        self._close(ev, end)

    def _close(self, ev: FunctionEvent, end: float) -> None:
        """Adopt the events that ran inside ``ev`` (recorded earlier, ending after its start)
        as children, then append it."""
        child_time = 0.0
        start = ev.ts
        for other in reversed(self._events):
            if other.end <= start:
                break
            if other.parent is None and other.tid == ev.tid:
                other.parent = ev
                child_time += other.dur
                if other.ts < ev.ts:  # clocks read a few ns apart: keep the nesting exact
                    ev.ts = other.ts
        ev.dur = end - ev.ts
        ev.self_dur = max(0.0, ev.dur - child_time)
        self._events.append(ev)

    # -- results
    def events(self) -> EventList:
        """Every recorded event, in the order they finished."""
        return EventList(self._events, self.with_flops, self.with_bytes)

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """One :class:`FunctionEventAvg` per name (and input shapes, when asked)."""
        groups: dict = {}
        for ev in self._events:
            key = (ev.name, str(ev.input_shapes) if group_by_input_shape else None)
            avg = groups.get(key)
            if avg is None:
                avg = groups[key] = FunctionEventAvg(ev.name)
                avg.input_shapes = ev.input_shapes if group_by_input_shape else None
            avg.add(ev)
        return EventList(groups.values(), self.with_flops, self.with_bytes)

    def export_chrome_trace(self, path) -> str:
        """Write the events as Chrome trace-event JSON (complete "X" events, times in us),
        which chrome://tracing and https://ui.perfetto.dev open."""
        pid = os.getpid()
        trace = []
        for ev in sorted(self._events, key=lambda e: (e.ts, -e.dur)):
            args = {"kind": ev.kind, "flops": ev.flops, "io_bytes": ev.io_bytes}
            if ev.input_shapes is not None:
                args["input_shapes"] = ev.input_shapes
            trace.append(
                {
                    "name": ev.name,
                    "cat": ev.kind,
                    "ph": "X",
                    "ts": round(ev.ts - self._t0, 3),
                    "dur": round(ev.dur, 3),
                    "pid": pid,
                    "tid": ev.tid,
                    "args": args,
                }
            )
        path = os.fspath(path)
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)
        return path


class record_function:  # PyTorch's name
    """Label a region: ``with record_function("data"): ...`` adds one "user" event whose
    children are the ops run inside it. Does nothing when no profile is recording."""

    def __init__(self, name: str):
        self.name = name
        self._prof = None

    def __enter__(self):
        self._prof = _active
        self._t0 = _now_us()
        return self

    def __exit__(self, *exc):
        prof = self._prof
        if prof is not None and prof is _active:
            end = _now_us()
            prof._close(FunctionEvent(self.name, "user", self._t0, end - self._t0), end)
        return False
