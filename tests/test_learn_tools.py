"""The learner tools: graph pictures (minigrad.viz), the explained backward pass
(minigrad.autograd.explain), the memory view, and the conformance report."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import minigrad as mg
from minigrad import viz


def _mlp(batch=8):
    """loss = sum(tanh(relu(x @ W1 + b1) @ W2)), with named parameters."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((batch, 3)).astype(np.float32))
    params = {
        "fc1.weight": mg.Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True),
        "fc1.bias": mg.Tensor(np.zeros(4, np.float32), requires_grad=True),
        "fc2.weight": mg.Tensor(rng.standard_normal((4, 2)).astype(np.float32), requires_grad=True),
    }
    h = (x @ params["fc1.weight"] + params["fc1.bias"]).relu()
    loss = (h @ params["fc2.weight"]).tanh().sum()
    return loss, params


def _labels(dot):
    return re.findall(r'(n\d+) \[label="([^"]*)"', dot)


# ----------------------------------------------------------------------------- to_dot
def test_dot_structure_and_labels():
    loss, params = _mlp()
    dot = viz.to_dot(loss, params=params)
    assert dot.startswith("digraph minigrad {") and dot.rstrip().endswith("}")
    labels = dict(_labels(dot))
    ops = [lab.split("\\n")[0] for lab in labels.values()]
    # 6 ops (sum, tanh, matmul, relu, add, matmul) + 3 parameter leaves; x needs no grad
    assert len(labels) == 9
    assert sorted(o for o in ops if o.endswith("Backward")) == sorted(
        [
            "SumBackward",
            "TanhBackward",
            "MatMulBackward",
            "ReluBackward",
            "AddBackward",
            "MatMulBackward",
        ]
    )
    assert {"fc1.weight", "fc1.bias", "fc2.weight"} <= set(ops)
    text = " ".join(labels.values())
    assert "(8, 4) float32" in text  # relu / add output
    assert "(8, 2) float32" in text and "() float32" in text
    assert "(3, 4) float32" in text and "(4,) float32" in text  # leaves with shapes
    assert "saved: " in text
    assert len(re.findall(r"n\d+ -> n\d+;", dot)) == 8  # a tree: nodes - 1 edges


def test_dot_options_and_names():
    loss, params = _mlp()
    dot = viz.to_dot(loss, show_shapes=False, show_saved=False)
    assert "float32" not in dot and "saved:" not in dot
    # no params given: leaves are "leaf", or the tensor's _name
    params["fc1.bias"]._name = "my_bias"
    dot = viz.to_dot(loss)
    assert "my_bias" in dot and "fc1.weight" not in dot


def test_dot_module_params():
    nn = pytest.importorskip("minigrad.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("minigrad.nn.Linear not available")
    model = nn.Linear(3, 2)
    loss = model(mg.randn(4, 3)).sum()
    dot = viz.to_dot(loss, params=model)
    names = [lab.split("\\n")[0] for _, lab in _labels(dot)]
    assert "weight" in names and "bias" in names


def test_dot_saved_bytes():
    a = mg.Tensor(np.ones((10, 10)), requires_grad=True)  # float64: 800 bytes
    dot = viz.to_dot(a.exp().sum())
    assert "ExpBackward\\n(10, 10) float64\\nsaved: 800 B" in dot


def test_dot_no_graph_is_one_node():
    dot = viz.to_dot(mg.ones(2, 3))
    assert len(_labels(dot)) == 1 and "->" not in dot
    assert "(2, 3) float32" in dot and "no graph" in dot
    leaf = mg.ones(2, requires_grad=True)
    assert len(_labels(viz.to_dot(leaf))) == 1


def test_dot_multi_output_node():
    from minigrad.ops.pool import max_pool2d

    x = mg.randn(1, 1, 4, 4, requires_grad=True)
    dot = viz.to_dot(max_pool2d(x, 2).sum())
    assert "out0: (1, 1, 2, 2) float32" in dot


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` not installed (CI installs it in .ci/run)"
)
def test_render_png_and_svg(tmp_path):
    loss, params = _mlp()
    png = viz.render(loss, tmp_path / "g.png", params=params)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = viz.render(loss, tmp_path / "g.svg", params=params)
    assert "<svg" in open(svg).read() and "fc1.weight" in open(svg).read()


def test_render_without_dot_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    loss, _ = _mlp()
    with pytest.raises(RuntimeError, match="apt-get install graphviz.*brew install graphviz"):
        viz.render(loss, tmp_path / "g.png")
    with pytest.raises(ValueError, match="suffix"):
        viz.render(loss, tmp_path / "g.bmpx")
    viz.render(loss, tmp_path / "g.dot")  # the text needs no Graphviz
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


# ----------------------------------------------------------------------------- explain
def test_explain_mlp_trace():
    loss, params = _mlp()
    with mg.autograd.explain(params) as trace:
        loss.backward()
    ops = trace.ops()
    assert ops[:6] == [
        "SumBackward",
        "TanhBackward",
        "MatMulBackward",
        "ReluBackward",
        "AddBackward",
        "MatMulBackward",
    ]
    assert sorted(r["leaf"] for r in trace if "leaf" in r) == [
        "fc1.bias",
        "fc1.weight",
        "fc2.weight",
    ]
    (add,) = trace.find("AddBackward")
    assert add["upstream"] == [(8, 4)]
    assert add["input_grads"] == [(8, 4), (4,)]
    assert add["summed_axes"] == [None, [0]]  # the bias gradient was summed over the batch
    assert add["rule"].startswith("d(a+b)/da = 1")
    assert add["inputs"] == ["MatMulBackward", "fc1.bias"]
    (tanh,) = trace.find("TanhBackward")
    assert tanh["rule"] == "d(tanh a)/da = 1 - tanh(a)^2"
    assert [s["name"] for s in tanh["saved"]] == ["out"]
    mm = trace.find("MatMulBackward")[0]
    assert "grad @ b^T" in mm["rule"]
    assert {"name": "b=fc2.weight", "shape": (4, 2), "dtype": "float32", "nbytes": 32} in mm[
        "saved"
    ]
    assert all(r["seconds"] >= 0 for r in trace) and trace.total_seconds > 0
    # the leaves got the gradients the trace says
    assert params["fc1.bias"].grad.shape == (4,)
    text = str(trace)
    for word in ("AddBackward", "(0)", "fc1.bias", "d(tanh a)/da", "out(8, 2)"):
        assert word in text
    data = json.loads(trace.to_json())
    assert len(data["nodes"]) == len(trace) == 9
    assert data["nodes"][4]["summed_axes"] == [None, [0]]


def test_explain_batch_dims_of_matmul():
    a = mg.randn(5, 3, 4, requires_grad=True)
    b = mg.randn(4, 2, requires_grad=True)
    with mg.autograd.explain() as trace:
        (a @ b).sum().backward()
    (mm,) = trace.find("MatMulBackward")
    assert mm["input_grads"] == [(5, 3, 4), (4, 2)]
    assert mm["summed_axes"] == [None, [0]]  # b's gradient came back as (5, 4, 2)


def test_explain_records_nothing_without_backward():
    loss, _ = _mlp()
    with mg.autograd.explain() as trace:
        loss.detach()
    assert len(trace) == 0 and trace.ops() == []
    assert "no backward pass ran" in str(trace)
    assert json.loads(trace.to_json())["nodes"] == []


def test_explain_is_off_outside_the_block():
    from minigrad import autograd

    assert autograd.get_tracer() is None
    with mg.autograd.explain() as trace:
        assert autograd.get_tracer() is trace
    assert autograd.get_tracer() is None
    loss, _ = _mlp()
    loss.backward()
    assert len(trace) == 0  # the backward after the block was not recorded


def test_explain_cnn():
    from minigrad.ops.conv import conv2d
    from minigrad.ops.pool import max_pool2d

    x = mg.randn(2, 1, 6, 6)
    w = mg.randn(3, 1, 3, 3, requires_grad=True)
    b = mg.zeros(3, requires_grad=True)
    loss = max_pool2d(conv2d(x, w, b).relu(), 2).sum()
    with mg.autograd.explain({"conv.weight": w, "conv.bias": b}) as trace:
        loss.backward()
    (conv,) = trace.find("Conv2dBackward")
    assert conv["upstream"] == [(2, 3, 4, 4)]
    assert conv["input_grads"][1:3] == [(3, 1, 3, 3), (3,)]
    assert "im2col" in conv["rule"]
    assert "weight=conv.weight" in [s["name"] for s in conv["saved"]]
    (pool,) = trace.find("MaxPool2dBackward")
    assert pool["input_grads"][0] == (2, 3, 4, 4) and "argmax" in pool["rule"]


def test_explain_lstm_step():
    rnn = pytest.importorskip("minigrad.ops.rnn")
    N, In, H = 2, 3, 4
    x = mg.randn(N, In)
    h0, c0 = mg.zeros(N, H), mg.zeros(N, H)
    w_ih = mg.randn(4 * H, In, requires_grad=True)
    w_hh = mg.randn(4 * H, H, requires_grad=True)
    b_ih = mg.zeros(4 * H, requires_grad=True)
    from minigrad import kernels

    # the reference kernel: this test is about the trace, not about which variant is built
    with kernels.use("lstm_cell", "numpy"):
        h, c = rnn.lstm_cell(x, (h0, c0), w_ih, w_hh, b_ih)
        with mg.autograd.explain({"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih}) as trace:
            (h.sum() + c.sum()).backward()
    (cell,) = trace.find("LSTMCellBackward")
    assert cell["upstream"] == [(N, H), (N, H)]
    assert cell["input_grads"][0] == (N, 4 * H)
    assert "tanh(c)" in cell["rule"]
    assert {s["shape"] for s in cell["saved"]} >= {(N, 4 * H), (N, H)}
    assert "w_ih" in {r.get("leaf") for r in trace}


# ----------------------------------------------------------------------------- memory
def test_memory_report_sums():
    a = mg.Tensor(np.ones((10, 10)), requires_grad=True)  # 800 bytes
    y = a.exp()  # saves its output: 800 B
    z = (y * y).tanh()  # mul saves y (already counted); tanh saves its output: 800 B
    rep = viz.memory_report(z.sum())
    assert rep["total_bytes"] == 1600
    assert rep["by_op"]["ExpBackward"] == {"family": "elementwise", "count": 1, "bytes": 800}
    assert rep["by_op"]["MulBackward"]["bytes"] == 0  # the buffer was charged to exp
    assert sum(d["bytes"] for d in rep["by_op"].values()) == rep["total_bytes"]
    assert sum(rep["by_family"].values()) == rep["total_bytes"]
    assert rep["nodes"] == 4
    assert "bytes held for backward: 1.6 KiB" in str(rep)
    assert viz.memory_report(mg.ones(3))["total_bytes"] == 0


def test_memory_report_cnn_families():
    from minigrad.ops.conv import conv2d
    from minigrad.ops.pool import max_pool2d

    x = mg.randn(4, 1, 8, 8)
    w = mg.randn(2, 1, 3, 3, requires_grad=True)
    rep = viz.memory_report(max_pool2d(conv2d(x, w).relu(), 2).sum())
    assert {"conv", "pool", "elementwise"} <= set(rep["by_family"])
    assert rep["by_family"]["pool"] == 4 * 2 * 3 * 3 * 8  # int64 argmax indices
    assert rep["by_family"]["elementwise"] == 4 * 2 * 6 * 6 * 4  # relu output, float32


# ----------------------------------------------------------------------------- conformance
def test_conformance_add(tmp_path, capsys):
    pytest.importorskip("torch")
    from minigrad.learn import conformance

    assert conformance.main(["--op", "add", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "conformance.json").read_text())
    rows = data["rows"]
    assert [(r["op"], r["dtype"]) for r in rows] == [
        ("add", "float64"),
        ("add", "float32"),
        ("add", "float16"),
    ]
    assert all(r["status"] == "pass" for r in rows)
    assert rows[0]["gradcheck"] == "pass" and rows[0]["gradgradcheck"] == "pass"
    assert rows[0]["fwd_abs"] <= 1e-12 and 0 < rows[2]["fwd_abs"] < 1e-2
    assert data["summary"]["pass"] == 3 and data["summary"]["FAIL"] == 0
    md = (tmp_path / "conformance.md").read_text()
    assert "| add | default | float16 |" in md and "3 pass, 0 fail" in md
    out = capsys.readouterr().out
    assert re.search(r"add\s+default\s+float32\s+\S+\s+\S+\s+\S+\s+\S+\s+1e-05/1e-05", out)


def test_conformance_kernel_variants(tmp_path):
    pytest.importorskip("torch")
    from minigrad import kernels
    from minigrad.learn import conformance

    assert (
        conformance.main(
            ["--op", "relu", "--dtype", "float32", "--no-fd", "--quiet", "--out", str(tmp_path)]
        )
        == 0
    )
    rows = json.loads((tmp_path / "conformance.json").read_text())["rows"]
    built = [v for v in kernels.VARIANTS["cpu"] if v in kernels.available()["relu"]]
    assert [r["variant"] for r in rows] == built


def test_conformance_unknown_op_lists_valid(tmp_path, capsys):
    from minigrad.learn import conformance

    assert conformance.main(["--op", "nosuchop", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown op(s): nosuchop" in err and "add" in err and "matmul" in err
    assert not (tmp_path / "conformance.json").exists()


def test_conformance_unsupported_dtype_is_not_a_failure():
    pytest.importorskip("torch")
    from minigrad.autograd import DTypeError
    from minigrad.learn import conformance
    from minigrad.testing.opinfo import OpSpec, Sample

    def fn(a):  # a deliberate refusal: DTypeError naming the dtype
        if a.dtype == np.float16:
            raise DTypeError("no float16 here")
        return a * 2.0

    spec = OpSpec(
        "double", fn, lambda T, a: a * 2.0, lambda rng: [Sample((rng.uniform(-1, 1, (3,)),))]
    )
    rows = conformance.run([spec], finite_differences=False)
    assert [r["status"] for r in rows] == ["pass", "pass", "unsupported"]
    assert "no float16 here" in rows[2]["detail"]
