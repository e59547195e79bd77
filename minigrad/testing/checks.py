"""The battery every OpSpec goes through (used by tests/ and ``minigrad conformance``).

Imports torch: only tests, benchmarks and the conformance command import this module.
"""

from __future__ import annotations

import numpy as np
import torch

import minigrad as mg
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.testing.opinfo import OpSpec, Sample

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


def mg_args(sample: Sample, dtype, requires_grad=True, transform=None):
    """Sample args as minigrad tensors (float arrays in ``dtype``)."""
    mask = grad_mask(sample)
    out = []
    for a, g in zip(sample.args, mask):
        if isinstance(a, np.ndarray):
            arr = a.astype(dtype) if a.dtype.kind == "f" else a
            if transform is not None:
                arr = transform(arr)
            t = mg.Tensor(arr)
            if g and requires_grad:
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def torch_args(sample: Sample, dtype):
    mask = grad_mask(sample)
    tdtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32,
              np.dtype(np.float16): torch.float16}[np.dtype(dtype)]
    out = []
    for a, g in zip(sample.args, mask):
        if isinstance(a, np.ndarray):
            if a.dtype.kind == "f":
                t = torch.tensor(a, dtype=tdtype, requires_grad=bool(g))
            else:
                t = torch.from_numpy(a.copy())
            out.append(t)
        else:
            out.append(a)
    return out


def _diff_tensors(args, mask):
    return [a for a, g in zip(args, mask) if g and isinstance(a, (mg.Tensor, torch.Tensor))]


def mg_forward_backward(spec: OpSpec, sample: Sample, dtype, v: np.ndarray | None,
                        transform=None):
    args = mg_args(sample, dtype, transform=transform)
    out = spec.fn(*args, **sample.kwargs)
    grads = []
    inputs = _diff_tensors(args, grad_mask(sample))
    if v is not None and inputs and out.requires_grad:
        gs = mg.autograd.grad(out, inputs, grad_outputs=mg.Tensor(v.astype(out.dtype)),
                              allow_unused=True)
        grads = [None if g is None else g.numpy() for g in gs]
    return out.detach().numpy(), grads, inputs


def torch_forward_backward(spec: OpSpec, sample: Sample, dtype, v: np.ndarray | None):
    args = torch_args(sample, dtype)
    out = spec.ref(torch, *args, **sample.kwargs)
    grads = []
    inputs = _diff_tensors(args, grad_mask(sample))
    if v is not None and inputs and out.requires_grad:
        gs = torch.autograd.grad(out, inputs, grad_outputs=torch.from_numpy(
            v.astype(out.detach().numpy().dtype)), allow_unused=True)
        grads = [None if g is None else g.numpy() for g in gs]
    return out.detach().numpy(), grads


def assert_close(actual, expected, dtype, what: str, scale: float = 1.0):
    tol = TOL[np.dtype(dtype)]
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != expected {expected.shape}")
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"] * scale,
                               atol=tol["atol"] * scale, err_msg=what)


def upstream(rng, shape):
    return rng.standard_normal(shape)


def check_against_torch(spec: OpSpec, sample: Sample, dtype) -> dict:
    """Forward and backward vs PyTorch; returns the max abs/rel errors."""
    rng = np.random.default_rng(1)
    ref_out, _ = torch_forward_backward(spec, sample, dtype, None)
    v = upstream(rng, ref_out.shape)
    out, grads, _ = mg_forward_backward(spec, sample, dtype, v)
    ref_out, ref_grads = torch_forward_backward(spec, sample, dtype, v)
    n = max(1, max((a.size for a in sample.args if isinstance(a, np.ndarray)), default=1))
    scale = max(1.0, float(np.sqrt(n)) / 4)  # reductions accumulate rounding with size
    assert out.dtype == ref_out.dtype or np.dtype(dtype) != np.float32, (
        f"{spec.name}: dtype {out.dtype} != torch {ref_out.dtype}")
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
            np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-15,
                                       err_msg=f"{spec.name} grad")


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
            f"{spec.name}: grad {g.shape} {g.dtype} vs input {x.shape} {x.dtype}")
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
                f"{spec.name}: message {str(e)!r} does not match {pattern!r}") from e
        return
    raise AssertionError(f"{spec.name}: expected {exc.__name__} for {sample.name or sample.args}")
