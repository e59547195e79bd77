"""The battery every OpSpec goes through (used by tests/ and ``minigrad conformance``).

PyTorch (the oracle) is imported inside the functions that call it, on first use: importing
this module does not import torch (tests/test_no_torch_import.py holds that).

``device`` ("cpu" or "cuda"): minigrad tensors are created on that device and PyTorch's oracle
runs there too (TF32 off on CUDA, so float32 is float32); results come back to the host for
comparison.  On "cuda" the float64 results are also held to minigrad's float64 CPU result.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad.learn.gradcheck import gradcheck, gradgradcheck
from minigrad.testing.opinfo import OpSpec, Sample


def _torch():
    """PyTorch, imported on first use."""
    import torch

    return torch


TOL = {
    np.dtype(np.float64): {"rtol": 1e-7, "atol": 1e-9},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5},
    np.dtype(np.float16): {"rtol": 1e-2, "atol": 1e-2},
}


def _is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def grad_mask(sample: Sample) -> tuple:
    if sample.grad is not None:
        return sample.grad
    return tuple(_is_float_array(a) for a in sample.args)


def _host(t) -> np.ndarray:
    """A minigrad or torch tensor's values as a NumPy array (copied off the GPU)."""
    t = t.detach().cpu()
    if not isinstance(t, mg.Tensor):  # a torch tensor
        return t.numpy(force=True)  # force: PyTorch's ZeroTensor (e.g. 2nd derivative of abs)
    return t.numpy()


def torch_device(device: str) -> str:
    """PyTorch's device for the oracle; on CUDA with TF32 off (float32 really is float32)."""
    if device != "cpu":
        torch = _torch()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


def mg_args(sample: Sample, dtype, requires_grad=True, transform=None, device="cpu"):
    """Sample args as minigrad tensors (float arrays in ``dtype``) on ``device``."""
    mask = grad_mask(sample)
    out = []
    for a, g in zip(sample.args, mask):
        if isinstance(a, np.ndarray):
            arr = a.astype(dtype) if a.dtype.kind == "f" else a
            if transform is not None:
                arr = transform(arr)
            t = mg.Tensor(arr) if device == "cpu" else mg.tensor(arr, device=device)
            if g and requires_grad:
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def torch_args(sample: Sample, dtype, device="cpu"):
    torch = _torch()
    mask = grad_mask(sample)
    tdtype = {
        np.dtype(np.float64): torch.float64,
        np.dtype(np.float32): torch.float32,
        np.dtype(np.float16): torch.float16,
    }[np.dtype(dtype)]
    out = []
    for a, g in zip(sample.args, mask):
        if isinstance(a, np.ndarray):
            if a.dtype.kind == "f":
                t = torch.tensor(
                    a, dtype=tdtype, device=torch_device(device), requires_grad=bool(g)
                )
            else:
                t = torch.from_numpy(a.copy()).to(device)
            out.append(t)
        else:
            out.append(a)
    return out


def _diff_tensors(args, mask):
    return [a for a, g in zip(args, mask) if g and isinstance(a, (mg.Tensor, _torch().Tensor))]


def mg_forward_backward(
    spec: OpSpec, sample: Sample, dtype, v: np.ndarray | None, transform=None, device="cpu"
):
    args = mg_args(sample, dtype, transform=transform, device=device)
    out = spec.fn(*args, **sample.kwargs)
    grads = []
    inputs = _diff_tensors(args, grad_mask(sample))
    if v is not None and inputs and out.requires_grad:
        gs = mg.autograd.grad(
            out,
            inputs,
            grad_outputs=mg.tensor(v.astype(out.dtype), device=out.device),
            allow_unused=True,
        )
        grads = [None if g is None else _host(g) for g in gs]
    return _host(out), grads, inputs


def torch_forward_backward(spec: OpSpec, sample: Sample, dtype, v: np.ndarray | None, device="cpu"):
    torch = _torch()
    args = torch_args(sample, dtype, device)
    out = spec.ref(torch, *args, **sample.kwargs)
    grads = []
    inputs = _diff_tensors(args, grad_mask(sample))
    if v is not None and inputs and out.requires_grad:
        gs = torch.autograd.grad(
            out,
            inputs,
            grad_outputs=torch.from_numpy(v.astype(_host(out).dtype)).to(out.device),
            allow_unused=True,
        )
        grads = [None if g is None else _host(g) for g in gs]
    return _host(out), grads


def assert_close(actual, expected, dtype, what: str, scale: float = 1.0):
    tol = TOL[np.dtype(dtype)]
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != expected {expected.shape}")
    np.testing.assert_allclose(
        actual, expected, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale, err_msg=what
    )


def upstream(rng, shape):
    return rng.standard_normal(shape)


def check_against_torch(spec: OpSpec, sample: Sample, dtype, device="cpu") -> dict:
    """Forward and backward vs PyTorch (on ``device``); returns the max abs/rel errors.  On a
    GPU, float64 results are also compared with minigrad's float64 CPU result."""
    rng = np.random.default_rng(1)
    ref_out, _ = torch_forward_backward(spec, sample, dtype, None, device)
    v = upstream(rng, ref_out.shape)
    out, grads, _ = mg_forward_backward(spec, sample, dtype, v, device=device)
    ref_out, ref_grads = torch_forward_backward(spec, sample, dtype, v, device)
    if device != "cpu" and np.dtype(dtype) == np.float64:
        cpu_out, cpu_grads, _ = mg_forward_backward(spec, sample, dtype, v)
        assert_close(out, cpu_out, dtype, f"{spec.name}[{sample.name}] {device} vs cpu forward")
        for k, (g, cg) in enumerate(zip(grads, cpu_grads)):
            if g is not None and cg is not None:
                assert_close(g, cg, dtype, f"{spec.name}[{sample.name}] {device} vs cpu grad {k}")
    n = max(1, max((a.size for a in sample.args if isinstance(a, np.ndarray)), default=1))
    scale = max(1.0, float(np.sqrt(n)) / 4)  # reductions accumulate rounding with size
    assert out.dtype == ref_out.dtype or np.dtype(dtype) != np.float32, (
        f"{spec.name}: dtype {out.dtype} != torch {ref_out.dtype}"
    )
    assert_close(out, ref_out, dtype, f"{spec.name}[{sample.name}] forward", scale)
    assert len(grads) == len(ref_grads), f"{spec.name}: {len(grads)} grads vs {len(ref_grads)}"
    errors = {"forward": _err(out, ref_out)}
    for k, (g, rg) in enumerate(zip(grads, ref_grads)):
        if rg is None:
            assert g is None or not np.any(g), f"{spec.name}: grad {k} should be None/zero"
            continue
        assert g is not None, f"{spec.name}[{sample.name}]: grad {k} missing"
        assert_close(g, rg, dtype, f"{spec.name}[{sample.name}] grad of input {k}", scale)
        errors[f"grad{k}"] = _err(g, rg)
    return errors


class OracleUnsupported(Exception):
    """PyTorch cannot compute the reference for this case (nothing to compare with)."""


def _second_order(fwd, grad, sample, args, inputs, v, weights):
    """d/d(inputs) of sum_i <w_i, (d out/d input_i) v>, computed with create_graph; entries
    that do not depend on the inputs come back as None.  ``fwd``/``grad`` are the framework's
    op call and autograd.grad; ``v``/``weights`` are already tensors of that framework."""
    out = fwd(*args, **sample.kwargs)
    if not inputs or not out.requires_grad:
        return None
    gs = grad(out, inputs, grad_outputs=v(out), create_graph=True, allow_unused=True)
    terms = [(g * w).sum() for g, w in zip(gs, weights) if g is not None and g.requires_grad]
    if not terms:
        return [None] * len(inputs)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    ggs = grad(total, inputs, allow_unused=True)
    return [None if g is None else _host(g) for g in ggs]


def check_double_backward(spec: OpSpec, sample: Sample, dtype, device="cpu"):
    """Double backward vs PyTorch on ``device`` (and, on a GPU in float64, vs minigrad's
    float64 CPU result): the gradient of <w, J^T v> with respect to every input."""
    torch = _torch()
    rng = np.random.default_rng(3)
    ref_out, _ = torch_forward_backward(spec, sample, dtype, None, device)
    v = upstream(rng, ref_out.shape)
    mask = grad_mask(sample)
    shapes = [np.shape(a) for a, g in zip(sample.args, mask) if g and isinstance(a, np.ndarray)]
    w = [upstream(rng, s) for s in shapes]

    def run_mg(dev):
        args = mg_args(sample, dtype, device=dev)
        inputs = _diff_tensors(args, mask)
        ws = [mg.tensor(x.astype(dtype), device=dev) for x in w]
        return _second_order(
            spec.fn,
            mg.autograd.grad,
            sample,
            args,
            inputs,
            lambda out: mg.tensor(v.astype(out.dtype), device=dev),
            ws,
        )

    targs = torch_args(sample, dtype, device)
    tinputs = _diff_tensors(targs, mask)
    tws = [torch.tensor(x, dtype=tinputs[0].dtype, device=device) for x in w] if tinputs else []
    others = []
    try:
        want = _second_order(
            lambda *a, **k: spec.ref(torch, *a, **k),
            torch.autograd.grad,
            sample,
            targs,
            tinputs,
            lambda out: torch.tensor(v, dtype=out.dtype, device=device),
            tws,
        )
        others.append(("torch", want))
    except RuntimeError as e:  # e.g. no double backward for torch's fused CPU attention
        if "not implemented" not in str(e):
            raise
        if device == "cpu":
            raise OracleUnsupported(f"PyTorch has no double backward here: {e}") from e
    got = run_mg(device)
    n = max(1, max((a.size for a in sample.args if isinstance(a, np.ndarray)), default=1))
    scale = max(1.0, float(np.sqrt(n)) / 4)
    if device != "cpu" and (np.dtype(dtype) == np.float64 or not others):
        others.append(("minigrad cpu", run_mg("cpu")))  # (the only oracle if torch has none)
    for who, ref in others:
        if ref is None or got is None:
            assert (ref is None) == (got is None) or not any(
                g is not None and np.any(g) for g in (got or ref or [])
            ), f"{spec.name}[{sample.name}]: second-order graph exists on one side only"
            continue
        for k, (g, r) in enumerate(zip(got, ref)):
            g = np.zeros(shapes[k]) if g is None else g
            r = np.zeros(shapes[k]) if r is None else r
            assert_close(
                g,
                r,
                dtype,
                f"{spec.name}[{sample.name}] double backward, input {k}, vs {who}",
                scale,
            )


def _err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.size == 0:
        return (0.0, 0.0)
    abs_err = float(np.max(np.abs(a - b)))
    rel_err = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
    return (abs_err, rel_err)


def _closure(spec: OpSpec, sample: Sample, args):
    """fn over only the differentiable tensors (others fixed), for gradcheck."""
    mask = grad_mask(sample)
    idx = [i for i, g in enumerate(mask) if g]

    def fn(*diff):
        full = list(args)
        for i, t in zip(idx, diff):
            full[i] = t
        return spec.fn(*full, **sample.kwargs)

    return fn, [args[i] for i in idx]


def check_gradcheck(spec: OpSpec, sample: Sample, fast_mode=False) -> bool:
    args = mg_args(sample, np.float64)
    fn, diff = _closure(spec, sample, args)
    if not diff:
        return True
    return gradcheck(fn, diff, fast_mode=fast_mode)


def check_gradgradcheck(spec: OpSpec, sample: Sample) -> bool:
    args = mg_args(sample, np.float64)
    fn, diff = _closure(spec, sample, args)
    if not diff:
        return True
    return gradgradcheck(fn, diff)


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values in a strided (non-C-contiguous) array."""
    if a.ndim == 0:
        return a
    wide = np.repeat(a, 2, axis=-1)[..., ::2]
    assert np.array_equal(wide, a)
    return wide


def check_noncontiguous(spec: OpSpec, sample: Sample, dtype=np.float64):
    rng = np.random.default_rng(2)
    out, _, _ = mg_forward_backward(spec, sample, dtype, None)
    v = upstream(rng, out.shape)
    out, grads, _ = mg_forward_backward(spec, sample, dtype, v)
    out2, grads2, _ = mg_forward_backward(spec, sample, dtype, v, transform=noncontiguous)
    np.testing.assert_allclose(out2, out, rtol=1e-12, atol=0, err_msg=f"{spec.name} forward")
    for g, g2 in zip(grads, grads2):
        if g is not None:
            np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-15, err_msg=f"{spec.name} grad")


def check_inputs_unchanged(spec: OpSpec, sample: Sample, dtype=np.float64):
    args = mg_args(sample, dtype)
    before = [a.detach().numpy().copy() if isinstance(a, mg.Tensor) else None for a in args]
    out = spec.fn(*args, **sample.kwargs)
    if out.requires_grad:
        out.backward(mg.ones_like(out))
    for a, b in zip(args, before):
        if b is not None:
            assert np.array_equal(a.detach().numpy(), b), f"{spec.name} modified its input"


def check_zero_grad(spec: OpSpec, sample: Sample, dtype=np.float64):
    args = mg_args(sample, dtype)
    out = spec.fn(*args, **sample.kwargs)
    inputs = _diff_tensors(args, grad_mask(sample))
    if not inputs or not out.requires_grad:
        return
    gs = mg.autograd.grad(out, inputs, grad_outputs=mg.zeros_like(out), allow_unused=True)
    for g, x in zip(gs, inputs):
        if g is None:
            continue
        assert g.shape == x.shape and g.dtype == x.dtype, (
            f"{spec.name}: grad {g.shape} {g.dtype} vs input {x.shape} {x.dtype}"
        )
        assert not np.any(g.numpy()), f"{spec.name}: zero upstream gave non-zero grad"


def check_error(spec: OpSpec, sample: Sample, exc, pattern):
    import re

    args = []
    for a in sample.args:
        args.append(mg.Tensor(a) if isinstance(a, np.ndarray) else a)
    try:
        spec.fn(*args, **sample.kwargs)
    except exc as e:
        if not re.search(pattern, str(e)):
            raise AssertionError(
                f"{spec.name}: message {str(e)!r} does not match {pattern!r}"
            ) from e
        return
    raise AssertionError(f"{spec.name}: expected {exc.__name__} for {sample.name or sample.args}")
