"""Pictures of the backward graph: Graphviz DOT text, rendering, and a memory view.

* :func:`to_dot` -- DOT text of the graph that produced a tensor: one box per op (its name,
  output shape and dtype, bytes saved for backward), one ellipse per leaf that requires grad
  (named after the module parameter it is, when ``params`` is given, or ``tensor._name``).
* :func:`render` -- writes PNG or SVG through Graphviz's ``dot`` program.
* :func:`memory_report` -- the bytes the graph holds for backward, per op and per op family.
* :func:`grad_stats` -- per-parameter gradient norm, mean, std and max-abs after backward (the
  "vanishing gradients" picture).

Edges point the way the forward ran (input -> op), like most textbook pictures.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ..autograd.engine import collect_graph
from ..autograd.function import AccumulateGrad
from .explain import leaf_name, param_names, saved_items

__all__ = [
    "GradStats",
    "MemoryReport",
    "grad_stats",
    "graph_nodes",
    "memory_report",
    "render",
    "to_dot",
]


def _root_edge(tensor):
    if tensor.grad_fn is not None:
        return (tensor.grad_fn, tensor._output_nr)
    if tensor.requires_grad:
        return tensor._edge()
    return None


def graph_nodes(tensor) -> list:
    """Every node reachable from ``tensor``'s grad_fn, newest (root) first, leaves last."""
    edge = _root_edge(tensor)
    if edge is None:
        return []
    _, post = collect_graph([edge[0]])
    return sorted(post, key=lambda n: -n.seq if n.seq >= 0 else float("inf"))


def _output_meta(tensor, nodes) -> dict:
    """``{(id(node), output_nr): (shape, dtype)}``: each output's shape and dtype, read from
    the consumers' ``input_meta`` (Function nodes do not keep their own output shapes)."""
    meta = {}
    if tensor.grad_fn is not None:
        meta[(id(tensor.grad_fn), tensor._output_nr)] = (tuple(tensor.shape), tensor.dtype)
    for node in nodes:
        outs = getattr(node, "_outputs_meta", None)
        if outs:
            for i, (shape, dtype, _device) in enumerate(outs):
                meta.setdefault((id(node), i), (tuple(shape), dtype))
        for e, m in zip(node.next_edges, getattr(node, "input_meta", ()) or ()):
            if e is not None and m is not None:
                meta.setdefault((id(e[0]), e[1]), (tuple(m[0]), m[1]))
    return meta


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _esc(text: str) -> str:
    """A DOT string body: quotes and backslashes escaped, newlines as DOT's ``\\n``."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(node) -> str:
    """``minigrad.ops.conv`` -> ``conv``; leaves -> ``leaf``."""
    if isinstance(node, AccumulateGrad):
        return "leaf"
    return type(node).__module__.rsplit(".", 1)[-1]


def to_dot(tensor, show_shapes: bool = True, show_saved: bool = True, params=None) -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    ``params``: a Module (its ``named_parameters()``) or ``{name: tensor}``, to label leaves.
    A tensor with no graph gives a one-node graph describing the tensor.
    """
    names = param_names(params)
    lines = ["digraph minigrad {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    nodes = graph_nodes(tensor)
    if not nodes:
        label = leaf_name(tensor, names) or "tensor"
        if show_shapes:
            label += f"\n{_fmt_shape(tuple(tensor.shape))} {tensor.dtype}"
        label += "\nno graph (no grad_fn, requires_grad=False)"
        lines.append(f'  n0 [label="{_esc(label)}", shape=note];')
        lines.append("}")
        return "\n".join(lines) + "\n"
    meta = _output_meta(tensor, nodes)
    ids = {id(n): f"n{i}" for i, n in enumerate(nodes)}
    for node in nodes:
        nid = ids[id(node)]
        if isinstance(node, AccumulateGrad):
            leaf = node.leaf_ref()
            label = leaf_name(leaf, names) or "leaf"
            if show_shapes and leaf is not None:
                label += f"\n{_fmt_shape(tuple(leaf.shape))} {leaf.dtype}"
            color = "lightblue" if (leaf is not None and id(leaf) in names) else "lightgrey"
            lines.append(
                f'  {nid} [label="{_esc(label)}", shape=ellipse, style=filled, fillcolor={color}];'
            )
            continue
        label = node.name()
        if show_shapes:
            n_out = getattr(node, "n_outputs", 1)
            for i in range(n_out):
                m = meta.get((id(node), i))
                if m is not None:
                    prefix = f"out{i}: " if n_out > 1 else ""
                    label += f"\n{prefix}{_fmt_shape(m[0])} {m[1]}"
        if show_saved:
            items = saved_items(node, names)
            total = sum(s["nbytes"] for s in items)
            label += f"\nsaved: {_fmt_bytes(total)}" if items else "\nsaved: -"
        root = node is tensor.grad_fn
        style = ', style=filled, fillcolor="#ffe0a0"' if root else ""
        lines.append(f'  {nid} [label="{_esc(label)}", shape=box{style}];')
    for node in nodes:
        for e in node.next_edges:
            if e is not None and id(e[0]) in ids:
                lines.append(f"  {ids[id(e[0])]} -> {ids[id(node)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_INSTALL_HINT = (
    "Graphviz's `dot` program is not installed (or not on PATH); install it with "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install graphviz`, or write the text of minigrad.viz.to_dot() to a "
    ".dot file and render it elsewhere"
)


def render(tensor, path, show_shapes: bool = True, show_saved: bool = True, params=None) -> str:
    """Write a picture of ``tensor``'s graph to ``path`` (format from the suffix: .png, .svg,
    .pdf, or .dot for the text itself). Needs Graphviz's ``dot`` except for .dot."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf", "dot", "gv"):
        raise ValueError(
            f"render: cannot tell the format from {path!r}; use a .png, .svg, .pdf or .dot suffix"
        )
    dot_text = to_dot(tensor, show_shapes=show_shapes, show_saved=show_saved, params=params)
    if fmt in ("dot", "gv"):
        with open(path, "w") as f:
            f.write(dot_text)
        return path
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(f"render: {_INSTALL_HINT}")
    proc = subprocess.run(
        [exe, f"-T{fmt}", "-o", path], input=dot_text.encode(), capture_output=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"render: dot failed ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return path


# ----------------------------------------------------------------------------- memory view
class MemoryReport(dict):
    """A dict (``total_bytes``, ``by_family``, ``by_op``, ``nodes``) that prints as a table."""

    def __str__(self) -> str:
        lines = [
            f"bytes held for backward: {_fmt_bytes(self['total_bytes'])} "
            f"({self['total_bytes']} B, {self['nodes']} nodes; each buffer counted once)"
        ]
        w = max([len(k) for k in self["by_op"]] + [len("op")])
        lines.append(f"  {'op'.ljust(w)}  {'family':<12} {'nodes':>5}  {'bytes':>12}  share")
        total = max(self["total_bytes"], 1)
        for op, d in sorted(self["by_op"].items(), key=lambda kv: -kv[1]["bytes"]):
            lines.append(
                f"  {op.ljust(w)}  {d['family']:<12} {d['count']:>5}  "
                f"{_fmt_bytes(d['bytes']):>12}  {100 * d['bytes'] / total:5.1f}%"
            )
        lines.append(
            "  by family: "
            + ", ".join(
                f"{fam} {_fmt_bytes(b)}"
                for fam, b in sorted(self["by_family"].items(), key=lambda kv: -kv[1])
            )
        )
        return "\n".join(lines)


def _owner(array):
    """The array that owns the memory of ``array`` (follow ``.base`` through views)."""
    while getattr(array, "base", None) is not None and hasattr(array.base, "nbytes"):
        array = array.base
    return array


def memory_report(tensor) -> MemoryReport:
    """Total bytes the graph behind ``tensor`` holds for backward, per op and per op family.

    Counts every array a node saved (``ctx.save_for_backward``) by the memory that owns it
    (a view keeps its whole base alive), each buffer once: a buffer saved by two nodes is
    charged to the one that ran first in the forward. Parameters and inputs that a node saved
    are included (the graph keeps them alive too).
    """
    nodes = graph_nodes(tensor)
    seen = set()
    by_op: dict[str, dict] = {}
    by_family: dict[str, int] = {}
    total = 0
    for node in sorted(nodes, key=lambda n: n.seq):  # forward order
        if isinstance(node, AccumulateGrad):
            continue
        nbytes = 0
        for item in getattr(node, "_saved", ()) or ():
            data = getattr(item, "_data", item)
            if data is None or not hasattr(data, "nbytes"):
                continue
            owner = _owner(data)
            if id(owner) in seen:
                continue
            seen.add(id(owner))
            nbytes += int(owner.nbytes)
        name = node.name()
        fam = _family(node)
        d = by_op.setdefault(name, {"family": fam, "count": 0, "bytes": 0})
        d["count"] += 1
        d["bytes"] += nbytes
        by_family[fam] = by_family.get(fam, 0) + nbytes
        total += nbytes
    return MemoryReport(
        total_bytes=total,
        by_family=by_family,
        by_op=by_op,
        nodes=sum(1 for n in nodes if not isinstance(n, AccumulateGrad)),
    )


# ----------------------------------------------------------------------------- gradient view
class GradStats(dict):
    """``{parameter name: {"shape", "numel", "norm", "mean", "std", "max_abs"}}`` in the
    model's parameter order; prints as a table with a bar of log10(norm)."""

    def __str__(self) -> str:
        if not self:
            return "no parameter has a gradient (run backward first)"
        w = max(len(k) for k in self) + 2
        lines = [
            f"{'parameter'.ljust(w)}{'shape':<16}{'norm':>11}{'mean':>11}{'std':>11}"
            f"{'max_abs':>11}  log10(norm)"
        ]
        for name, d in self.items():
            bar = "#" * max(0, min(40, int(round(2 * (_log10(d["norm"]) + 10)))))
            lines.append(
                f"{name.ljust(w)}{_fmt_shape(d['shape']):<16}{d['norm']:>11.3e}"
                f"{d['mean']:>11.3e}{d['std']:>11.3e}{d['max_abs']:>11.3e}  "
                f"{_log10(d['norm']):6.2f} {bar}"
            )
        return "\n".join(lines)


def _log10(x: float) -> float:
    import math

    return math.log10(x) if x > 0 else float("-inf")


def grad_stats(model) -> GradStats:
    """Statistics of every parameter's ``.grad`` after ``backward()``, per parameter.

    ``model``: a Module (its ``named_parameters()``) or ``{name: tensor}``. Parameters without
    a gradient are left out. Values are Python floats computed in float64: ``norm`` (L2),
    ``mean``, ``std`` (unbiased, like ``Tensor.std()``; nan for one element) and ``max_abs``.
    Compare the first layer's ``norm`` with the last's to see gradients vanish or explode.
    """
    if hasattr(model, "named_parameters"):
        items = list(model.named_parameters())
    elif isinstance(model, dict):
        items = list(model.items())
    else:
        raise TypeError(
            f"grad_stats: expected a Module or a dict of tensors, got {type(model).__name__}"
        )
    out = GradStats()
    for name, p in items:
        if p.grad is None:
            continue
        g = p.grad.detach().double()
        n = g.numel()
        out[name] = {
            "shape": tuple(p.shape),
            "numel": n,
            "norm": float((g * g).sum().sqrt().item()),
            "mean": float(g.mean().item()) if n else float("nan"),
            "std": float(g.std().item()) if n > 1 else float("nan"),
            "max_abs": float(g.abs().max().item()) if n else 0.0,
        }
    return out
