"""The tensor ops of minigrad/ops/extra.py on PyTorch's own sample inputs: every float64 sample
of ``op_db`` (``torch.testing._internal.common_methods_invocations``) for an op with the same
name runs through both libraries; outputs, and the gradient of the first input where the op
is differentiable, must agree. Goal: at least 99% of each op's samples pass (all do today).

Skips when PyTorch's test internals cannot be imported (they need the ``expecttest`` package).
"""

import os
import warnings

import numpy as np
import pytest
import torch

import minigrad as mg

OPS = [
    "cumsum",
    "cumprod",
    "prod",
    "sort",
    "argsort",
    "topk",
    "kthvalue",
    "median",
    "flip",
    "roll",
    "repeat_interleave",
    "tile",
    "einsum",
    "index_select",
    "scatter",
    "scatter_add",
    "index_add",
    "take_along_dim",
    "tril",
    "triu",
    "diag",
    "diagonal",
    "trace",
    "outer",
    "kron",
    "cross",
    "norm",
    "cdist",
    "log1p",
    "expm1",
    "log2",
    "log10",
    "floor",
    "ceil",
    "round",
    "trunc",
    "sign",
    "sinh",
    "cosh",
    "asin",
    "acos",
    "atan",
    "atan2",
    "erf",
    "erfinv",
    "lgamma",
    "digamma",
    "lerp",
    "addcmul",
    "addcdiv",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "any",
    "all",
    "isfinite",
    "isnan",
    "isinf",
    "nan_to_num",
]


def _op_db():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as e:  # expecttest missing
        if os.environ.get("CI"):  # CI installs the test extra: there it must run
            raise
        pytest.skip(f"PyTorch's OpInfo database is unavailable: {e}")
    return {op.name: op for op in op_db if op.variant_test_name == ""}


def _mg(x, grad_first=False):
    if isinstance(x, torch.Tensor):
        return mg.tensor(x.detach().numpy().copy(), requires_grad=grad_first)
    if isinstance(x, (list, tuple)):
        return type(x)(_mg(v) for v in x)
    if isinstance(x, torch.dtype):
        return np.dtype(str(x).replace("torch.", ""))
    return x


def _outputs(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else (out,))]


def _call(name, op, lib, args, kwargs):
    if name == "einsum":  # op_db passes (operands, equation)
        return (torch.einsum if lib is torch else mg.einsum)(args[1], list(args[0]), **kwargs)
    if name == "where":  # op_db's where is (self, condition, other)
        return (torch if lib is torch else mg).where(args[1], args[0], *args[2:], **kwargs)
    if name == "nn.functional.embedding":  # op_db passes (weight, indices)
        f = torch.nn.functional.embedding if lib is torch else mg.nn.functional.embedding
        return f(args[1], args[0], *args[2:], **kwargs)
    return (op.op if lib is torch else _mg_fn(name))(*args, **kwargs)


def _mg_fn(name):
    """minigrad's callable for an op_db name: ``mg.<name>`` (dotted names such as
    ``nn.functional.conv2d`` walk the modules), else the Tensor method of the first input."""
    obj = mg
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return lambda first, *a, **k: getattr(first, name)(*a, **k)
    return obj


def _torch_has_grad(name, op, sample):
    """False where PyTorch's backward is not implemented for this sample (scatter's reduce)."""
    first = sample.input.detach().clone().requires_grad_()
    try:
        out = _outputs(_call(name, op, torch, (first,) + tuple(sample.args), sample.kwargs))[0]
        if out.requires_grad:
            torch.autograd.grad(out.sum(), first, allow_unused=True)
    except RuntimeError as e:
        return "not implemented" not in str(e)
    return True


def _run_sample(name, op, sample):
    first = sample.input
    diff = (
        isinstance(first, torch.Tensor)
        and first.dtype == torch.float64
        and op.supports_autograd
        and name != "einsum"
        and _torch_has_grad(name, op, sample)
    )
    t_first = first.detach().clone().requires_grad_(diff) if diff else first
    t_args = (t_first,) + tuple(sample.args)
    try:
        want = _call(name, op, torch, t_args, sample.kwargs)
    except Exception:  # PyTorch refuses this sample: nothing to compare
        return None
    m_args = (_mg(first, diff),) + tuple(_mg(a) for a in sample.args)
    got = _call(name, op, mg, m_args, {k: _mg(v) for k, v in sample.kwargs.items()})
    for g, w in zip(_outputs(got), _outputs(want)):
        wn = w.detach().numpy()
        assert g.shape == wn.shape, (g.shape, wn.shape)
        np.testing.assert_allclose(g.detach().numpy(), wn, rtol=1e-6, atol=1e-8, equal_nan=True)
    w0, g0 = _outputs(want)[0], _outputs(got)[0]
    if diff and w0.requires_grad and w0.dtype == torch.float64 and w0.numel():
        v = np.random.default_rng(0).standard_normal(tuple(w0.shape))
        (tg,) = torch.autograd.grad(w0, t_first, torch.from_numpy(v), allow_unused=True)
        (mgr,) = mg.autograd.grad(g0, [m_args[0]], mg.tensor(v), allow_unused=True)
        tg = np.zeros(first.shape) if tg is None else tg.numpy()
        mgr = np.zeros(first.shape) if mgr is None else mgr.numpy()
        np.testing.assert_allclose(mgr, tg, rtol=1e-6, atol=1e-8, equal_nan=True)
    return True


@pytest.mark.parametrize("name", OPS)
def test_op_db_samples(name):
    op = _op_db().get(name)
    if op is None:
        pytest.skip(f"{name} has no OpInfo entry in this PyTorch")
    passed, failures = 0, []
    for sample in op.sample_inputs("cpu", torch.float64, requires_grad=False):
        try:
            if _run_sample(name, op, sample) is None:
                continue
            passed += 1
        except Exception as e:  # collected and reported below
            failures.append(
                f"{type(e).__name__}: {str(e)[:200]} (input "
                f"{tuple(getattr(sample.input, 'shape', ()))}, args "
                f"{[getattr(a, 'shape', a) for a in sample.args]}, {sample.kwargs})"
            )
    total = passed + len(failures)
    assert total, f"{name}: no sample ran"
    assert passed >= 0.99 * total, f"{name}: {passed}/{total} passed\n" + "\n".join(failures[:8])
