"""The GPU optimizer arithmetic, checked without a GPU.

``csrc/cuda/optim_math.h`` holds the per-element SGD and Adam/AdamW/AMSGrad update (and the
scalars rounded on the host) that the CUDA kernels in ``csrc/cuda/optim.cu`` run.  The same
header is compiled by the host compiler into ``_cuda.sgd_step_host`` / ``_cuda.adam_step_host``
(csrc/cuda/optim_host.cpp).  Here those host twins run several steps over a parameter list with
a 0-d, an empty, and odd-sized parameters, for every combination of the options, against

* ``minigrad.kernels.reference`` (the NumPy update rules, in
  ``minigrad/kernels/reference_optim.py``),
* ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` (float64, single-tensor path),

comparing parameters AND every state buffer (momentum, exp_avg, exp_avg_sq, the AMSGrad max).
A wrong sign, a swapped coefficient or a missing term in the kernel formula fails here on a CPU
machine.  The 0-d parameter also holds the reference to PyTorch: the GPU run of issue 12 found
the NumPy reference losing the momentum buffer of a 0-d parameter (a NumPy scalar rebinding on
``buf *= momentum``) whenever weight decay or maximize was on.
"""

from __future__ import annotations

import importlib
import itertools
import shutil

import numpy as np
import pytest

from minigrad.kernels import reference

SHAPES = [(), (0,), (1,), (7, 3), (257,), (3, 5, 2)]
STEPS = 5
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _cuda():
    try:
        return importlib.import_module("minigrad._cuda")
    except ImportError:
        if shutil.which("nvcc"):  # CI builds _cuda whenever nvcc exists: missing is a failure
            raise
        pytest.skip("minigrad._cuda is not built (no nvcc)")


def _params(rng, dtype):
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]


def _grads(rng, params):
    return [np.asarray(rng.standard_normal(p.shape), dtype=p.dtype) for p in params]


SGD_CASES = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=n, maximize=mx)
    for m, d, wd, n, mx in itertools.product(
        [0.0, 0.9], [0.0, 0.1], [0.0, 1e-2], [False, True], [False, True]
    )
    if not (n and (m == 0 or d != 0))  # Nesterov needs momentum and no dampening (as in torch)
    and not (m == 0 and d != 0)  # dampening without momentum is the m == 0 case again
]


def _sgd_runs(dtype, opts, steps=STEPS, seed=0):
    """(params, momentum buffers) after `steps` steps: reference, host twin, per-step grads."""
    cu = _cuda()
    rng = np.random.default_rng(seed)
    p_ref = _params(rng, dtype)
    p_twin = [a.copy() for a in p_ref]
    p0 = [a.copy() for a in p_ref]
    bufs_ref = [None] * len(p_ref)
    bufs_twin = [np.empty_like(a) for a in p_ref]
    grads = []
    for step in range(steps):
        g = _grads(rng, p_ref)
        grads.append(g)
        reference.sgd_step(
            p_ref,
            g,
            bufs_ref,
            0.1,
            opts["momentum"],
            opts["dampening"],
            opts["weight_decay"],
            opts["nesterov"],
            opts["maximize"],
        )
        fresh = [step == 0] * len(p_twin)  # what kernels/cuda.py passes: buffer created now
        cu.sgd_step_host(
            p_twin,
            g,
            bufs_twin if opts["momentum"] else [],
            fresh,
            0.1,
            opts["momentum"],
            opts["dampening"],
            opts["weight_decay"],
            opts["nesterov"],
            opts["maximize"],
        )
    return p0, grads, (p_ref, bufs_ref), (p_twin, bufs_twin)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opts", SGD_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_sgd_kernel_formula_matches_reference(dtype, opts):
    _, _, (p_ref, b_ref), (p_twin, b_twin) = _sgd_runs(dtype, opts)
    for i, (a, b) in enumerate(zip(p_twin, p_ref)):
        np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"param {i} {SHAPES[i]}")
    if opts["momentum"]:
        for i, (a, b) in enumerate(zip(b_twin, b_ref)):
            np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"buffer {i} {SHAPES[i]}")


@pytest.mark.parametrize("opts", SGD_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_sgd_kernel_formula_and_reference_match_torch(opts):
    torch = pytest.importorskip("torch")
    p0, grads, (p_ref, b_ref), (p_twin, b_twin) = _sgd_runs("float64", opts)
    tp = [torch.tensor(a, requires_grad=True) for a in p0]
    opt = torch.optim.SGD(tp, lr=0.1, foreach=False, **opts)
    for g in grads:
        for t, gi in zip(tp, g):
            t.grad = torch.tensor(gi)
        opt.step()
    for i, t in enumerate(tp):
        want = t.detach().numpy()
        np.testing.assert_allclose(p_twin[i], want, **TOL["float64"], err_msg=f"twin param {i}")
        np.testing.assert_allclose(p_ref[i], want, **TOL["float64"], err_msg=f"ref param {i}")
        if opts["momentum"]:
            buf = opt.state[t]["momentum_buffer"].numpy()
            np.testing.assert_allclose(b_twin[i], buf, **TOL["float64"], err_msg=f"twin buf {i}")
            np.testing.assert_allclose(b_ref[i], buf, **TOL["float64"], err_msg=f"ref buf {i}")


ADAM_CASES = [
    dict(weight_decay=wd, amsgrad=a, decoupled=dec, beta1=b1)
    for wd, a, dec, b1 in itertools.product([0.0, 1e-2], [False, True], [False, True], [0.9, 0.3])
    if not (dec and wd == 0)  # decoupled without weight decay is plain Adam again
]


def _adam_runs(dtype, opts, steps=STEPS, seed=1):
    cu = _cuda()
    rng = np.random.default_rng(seed)
    p_ref = _params(rng, dtype)
    p0 = [a.copy() for a in p_ref]
    state_ref = [[np.zeros_like(a) for a in p_ref] for _ in range(3)]  # m, v, vmax
    p_twin = [a.copy() for a in p_ref]
    state_twin = [[np.zeros_like(a) for a in p_ref] for _ in range(3)]
    grads = []
    for step in range(1, steps + 1):
        g = _grads(rng, p_ref)
        grads.append(g)
        args = (
            1e-2,
            opts["beta1"],
            0.999,
            1e-8,
            opts["weight_decay"],
            opts["amsgrad"],
            opts["decoupled"],
        )
        reference.adam_step(p_ref, g, *state_ref, step, *args)
        cu.adam_step_host(p_twin, g, *state_twin, [step] * len(p_twin), *args)
    return p0, grads, (p_ref, state_ref), (p_twin, state_twin)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opts", ADAM_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_adam_kernel_formula_matches_reference(dtype, opts):
    _, _, (p_ref, s_ref), (p_twin, s_twin) = _adam_runs(dtype, opts)
    names = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"][: 3 if opts["amsgrad"] else 2]
    for i, (a, b) in enumerate(zip(p_twin, p_ref)):
        np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"param {i} {SHAPES[i]}")
    for name, got, want in zip(names, s_twin, s_ref):
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"{name} {i} {SHAPES[i]}")


@pytest.mark.parametrize("opts", ADAM_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_adam_kernel_formula_matches_torch(opts):
    torch = pytest.importorskip("torch")
    p0, grads, (p_ref, s_ref), (p_twin, s_twin) = _adam_runs("float64", opts)
    tp = [torch.tensor(a, requires_grad=True) for a in p0]
    cls = torch.optim.AdamW if opts["decoupled"] else torch.optim.Adam
    opt = cls(
        tp,
        lr=1e-2,
        betas=(opts["beta1"], 0.999),
        eps=1e-8,
        weight_decay=opts["weight_decay"],
        amsgrad=opts["amsgrad"],
        foreach=False,
    )
    for g in grads:
        for t, gi in zip(tp, g):
            t.grad = torch.tensor(gi)
        opt.step()
    keys = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"][: 3 if opts["amsgrad"] else 2]
    for i, t in enumerate(tp):
        np.testing.assert_allclose(
            p_twin[i], t.detach().numpy(), **TOL["float64"], err_msg=f"twin param {i}"
        )
        np.testing.assert_allclose(
            p_ref[i], t.detach().numpy(), **TOL["float64"], err_msg=f"ref param {i}"
        )
        for k, key in enumerate(keys):
            want = opt.state[t][key].numpy()
            np.testing.assert_allclose(
                s_twin[k][i], want, **TOL["float64"], err_msg=f"twin {key} {i}"
            )


def test_host_twins_validate_arguments():
    cu = _cuda()
    p = [np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match="sgd_step_host: 'grads' has 0 entries"):
        cu.sgd_step_host(p, [], [], [], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="sgd_step_host"):
        cu.sgd_step_host(
            [np.zeros(3, np.int32)],
            [np.zeros(3, np.int32)],
            [],
            [],
            0.1,
            0.0,
            0.0,
            0.0,
            False,
            False,
        )
    with pytest.raises(ValueError, match="adam_step_host: step must be >= 1"):
        cu.adam_step_host(p, p, p, p, [], [0], 0.1, 0.9, 0.999, 1e-8, 0.0, False, False)
