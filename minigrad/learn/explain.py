"""An explained backward pass: what every node of the graph did, in the order backward ran it.

::

    with minigrad.autograd.explain() as trace:
        loss.backward()
    print(trace)          # a readable table
    trace.to_json()       # the same as data

For each node the trace keeps: the op, the shapes of the upstream gradient(s) and of each input
gradient, the local rule (``d(a*b)/da = b``), the axes the engine summed to undo broadcasting,
the tensors the node saved for backward (which its backward reads through
``ctx.saved_tensors``), and the time spent. Leaves (``AccumulateGrad``) show where each
parameter's gradient lands.

Where the rules come from (in this order), so a new op documents itself:

1. a ``rule = "..."`` class attribute on the Function;
2. the ``# d...`` comments inside its ``backward`` (the convention of ``minigrad/ops``);
3. :data:`RULES` below, for ops whose backward has no such comment.

Nothing here runs unless a trace is active: the backward loop tests ``hooks.tracer is
None`` once per node (see ``minigrad/autograd/engine.py``).
"""

from __future__ import annotations

import inspect
import json
import re

from ..autograd.function import AccumulateGrad, Function, broadcast_axes
from ..autograd.hooks import set_tracer

__all__ = ["RULES", "Trace", "explain", "local_rule", "param_names"]

# Rules for ops whose backward has no ``# d...`` comment (keyed by Function class name).
RULES: dict[str, str] = {
    "AccumulateGrad": "leaf.grad += grad",
    "Neg": "d(-a)/da = -1",
    "Maximum": "d max(a,b)/da = 1 where a > b, 1/2 on ties, else 0",
    "Minimum": "d min(a,b)/da = 1 where a < b, 1/2 on ties, else 0",
    "Clamp": "d clamp(a)/da = 1 inside [lo, hi], 0 where clamped",
    "Where": "d where(c,a,b)/da = c, d/db = not c",
    "MaskedFill": "d masked_fill(a)/da = 0 where filled, else 1",
    "Cast": "identity (the engine casts grad back to the input dtype)",
    "ToDevice": "identity (grad moved back to the source device)",
    "Copy": "identity",
    "Reshape": "grad reshaped back to the input shape",
    "Permute": "grad permuted by the inverse permutation",
    "BroadcastTo": "identity; the engine sums the broadcast axes",
    "Cat": "grad split back into the pieces along dim",
    "Pad": "grad with the padding cropped off",
    "Gather": "d gather(a)/da: scatter-add grad back to the gathered positions",
    "ScatterAdd": "d scatter_add(g)/dg: gather at the same indices",
    "IndexAdd": "adjoint of indexing: gather grad at the same key",
    "IndexPut": "overwritten slots get no gradient; the value gets grad at the key",
    "LSTMCell": (
        "c = f*c_prev + i*g, h = o*tanh(c): dc += dh*o*(1-tanh(c)^2); "
        "d(pre-i) = dc*g*i(1-i), d(pre-f) = dc*c_prev*f(1-f), d(pre-g) = dc*i*(1-g^2), "
        "d(pre-o) = dh*tanh(c)*o(1-o); dc_prev = dc*f"
    ),
    "Attention": (
        "out = P v, P = softmax(s q k^T): dv = P^T g, dP = g v^T, "
        "dS = P*(dP - rowsum(dP*P)), dq = s dS k, dk = s dS^T q"
    ),
    "AvgPool2dBackward": "linear: its adjoint is average pooling again",
    "MaxPool2dBackward": "adjoint of the scatter-add: gather grad at the argmax indices",
}

_RULE_COMMENT = re.compile(r"#\s*(.*\bd[\s(|].*)$")
_rule_cache: dict[type, str] = {}


def local_rule(node) -> str:
    """The local derivative rule of a graph node (a Function instance or AccumulateGrad)."""
    cls = type(node)
    if cls in _rule_cache:
        return _rule_cache[cls]
    rule = getattr(cls, "rule", None)
    if not isinstance(rule, str):
        rule = None
    if rule is None and isinstance(node, Function):
        try:
            source = inspect.getsource(cls.backward)
        except (OSError, TypeError):
            source = ""
        found = [m.group(1).strip() for m in map(_RULE_COMMENT.search, source.splitlines()) if m]
        rule = "; ".join(found) or None
    if rule is None:
        rule = RULES.get(cls.__name__, "(no rule documented)")
    _rule_cache[cls] = rule
    return rule


def param_names(params) -> dict[int, str]:
    """``{id(tensor): name}`` from a Module (``named_parameters``), a dict, or None."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items = params.named_parameters()
    elif isinstance(params, dict):
        items = params.items()
    else:
        items = params
    return {id(t): name for name, t in items}


def leaf_name(leaf, names: dict[int, str]) -> str | None:
    if leaf is None:
        return None
    return names.get(id(leaf)) or getattr(leaf, "_name", None)


def _shape(x):
    return None if x is None else tuple(int(s) for s in x.shape)


def _fmt_shape(s) -> str:
    if s is None:
        return "-"
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _input_names(cls) -> list[str]:
    """Names of the forward's positional parameters after ctx (``a``, ``b``, ``x``, ...)."""
    try:
        sig = inspect.signature(cls.forward)
    except (TypeError, ValueError):
        return []
    names = []
    for p in list(sig.parameters.values())[1:]:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names.append(p.name + "[]")
            break
    return names


def saved_items(node, names: dict[int, str] | None = None) -> list[dict]:
    """What ``node`` keeps for backward: ``[{"name", "shape", "dtype", "nbytes"}]``.

    A saved input is named after the forward's parameter (``a``, ``weight``) or the parameter
    it is (``fc1.weight``); a saved output is ``out``; anything else (an array the forward
    made, or an input that needs no gradient) is ``const``.
    """
    names = names or {}
    saved = getattr(node, "_saved", ()) or ()
    arg_names = _input_names(type(node)) if saved else []
    edges = getattr(node, "next_edges", ())
    out = []
    for item in saved:
        if item is None or not hasattr(item, "shape") or not hasattr(item, "dtype"):
            continue
        label = "const"  # an array the forward made, or an input that needs no gradient
        grad_fn = getattr(item, "grad_fn", None)
        if grad_fn is node:
            label = "out"
        else:
            edge = None
            if grad_fn is not None:
                edge = (grad_fn, item._output_nr)
            elif getattr(item, "_accumulator", None) is not None:
                edge = (item._accumulator, 0)
            for k, e in enumerate(edges):
                if e is not None and edge is not None and e[0] is edge[0] and e[1] == edge[1]:
                    label = arg_names[k] if k < len(arg_names) else f"input{k}"
                    break
            pname = names.get(id(item)) or getattr(item, "_name", None)
            if pname:
                label = pname if label == "const" else f"{label}={pname}"
        data = getattr(item, "_data", item)
        out.append(
            {
                "name": label,
                "shape": _shape(item),
                "dtype": str(item.dtype),
                "nbytes": int(getattr(data, "nbytes", 0)),
            }
        )
    return out


class Trace:
    """The record of one or more backward passes run inside ``with explain() as trace:``."""

    def __init__(self, params=None):
        self.records: list[dict] = []
        self._names = param_names(params)
        self._prev = None
        self._active = False

    # ------------------------------------------------------------------ context manager
    def __enter__(self):
        self._prev = set_tracer(self)
        self._active = True
        return self

    def __exit__(self, *exc):
        set_tracer(self._prev)
        self._active = False
        return False

    # ------------------------------------------------------------------ called by run_backward
    def record(self, node, grads, in_grads, seconds, raw_grads=()):
        is_leaf = isinstance(node, AccumulateGrad)
        entry = {
            "step": len(self.records),
            "op": node.name(),
            "upstream": [_shape(g) for g in grads],
            "input_grads": [_shape(g) for g in in_grads],
            "summed_axes": [],
            "saved": [],
            "inputs": [],
            "rule": local_rule(node),
            "seconds": float(seconds),
        }
        if is_leaf:
            leaf = node.leaf_ref()
            entry["leaf"] = leaf_name(leaf, self._names) or "leaf"
            entry["input_grads"] = []
        else:
            meta = getattr(node, "input_meta", ())
            for raw, m in zip(raw_grads, meta):
                if raw is None or m is None or tuple(raw.shape) == tuple(m[0]):
                    entry["summed_axes"].append(None)
                else:
                    entry["summed_axes"].append(list(broadcast_axes(tuple(raw.shape), tuple(m[0]))))
            entry["saved"] = saved_items(node, self._names)
            entry["inputs"] = [self._describe_edge(e) for e in node.next_edges]
        self.records.append(entry)

    def _describe_edge(self, edge):
        if edge is None:
            return None
        nxt = edge[0]
        if isinstance(nxt, AccumulateGrad):
            return leaf_name(nxt.leaf_ref(), self._names) or "leaf"
        return nxt.name()

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def ops(self) -> list[str]:
        return [r["op"] for r in self.records]

    def find(self, op: str) -> list[dict]:
        """Records whose op is ``op`` (``"AddBackward"``) or starts with it (``"Add"``)."""
        return [r for r in self.records if r["op"] == op or r["op"].startswith(op)]

    @property
    def total_seconds(self) -> float:
        return sum(r["seconds"] for r in self.records)

    def to_dict(self) -> dict:
        return {"nodes": self.records, "total_seconds": self.total_seconds}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        if not self.records:
            return (
                "explain: no backward pass ran inside this block, so nothing was recorded "
                "(call loss.backward() inside `with minigrad.autograd.explain() as trace:`)"
            )
        header = [
            "#",
            "node",
            "upstream grad",
            "input grads",
            "summed axes",
            "saved for backward",
            "time",
            "local rule",
        ]
        rows = []
        for r in self.records:
            if "leaf" in r:
                node = f"{r['op']}({r['leaf']})"
                ins = "-> .grad"
            else:
                node = r["op"]
                # only inputs that take a gradient (non-tensor args like shapes are left out)
                ins = (
                    ", ".join(
                        _fmt_shape(s)
                        for s, i in zip(r["input_grads"], r["inputs"])
                        if i is not None
                    )
                    or "-"
                )
            axes = ", ".join(
                "-" if a is None else "(" + ",".join(map(str, a)) + ")"
                for a, i in zip(r["summed_axes"], r["inputs"])
                if i is not None
            )
            if not any(a is not None for a in r["summed_axes"]):
                axes = "-"
            saved = ", ".join(f"{s['name']}{_fmt_shape(s['shape'])}" for s in r["saved"]) or "-"
            rows.append(
                [
                    str(r["step"]),
                    node,
                    ", ".join(_fmt_shape(s) for s in r["upstream"]) or "-",
                    ins,
                    axes,
                    saved,
                    _fmt_time(r["seconds"]),
                    r["rule"],
                ]
            )
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header) - 1)]
        lines = []
        for row in [header] + rows:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths)] + [row[-1]]
            lines.append("  ".join(cells).rstrip())
        lines.insert(1, "-" * min(120, len(lines[0])))
        lines.append(
            f"{len(self.records)} nodes, {_fmt_time(self.total_seconds)} in backward "
            "(summed axes: the engine reduced a broadcast gradient over them)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<explain trace: {len(self.records)} nodes>"


def _fmt_time(s: float) -> str:
    if s == 0:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    return f"{s * 1e3:.2f}ms"


def explain(params=None) -> Trace:
    """``with minigrad.autograd.explain() as trace: loss.backward()`` records every node that
    backward visits. ``params``: a Module or ``{name: tensor}`` dict, to name the leaves."""
    return Trace(params)
