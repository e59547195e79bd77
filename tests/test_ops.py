"""Every op in the OpSpec table through the same battery: forward and backward vs PyTorch
(float64 and float32), double backward vs PyTorch, float64 gradcheck (full Jacobian, and
v^T J u), gradgradcheck, non-contiguous inputs, inputs left unchanged, zero upstream gradient,
and bad inputs.

The PyTorch comparisons (forward, backward, double backward) also run with ``device="cuda"``
for every GPU variant (``cupy``, ``cuda``): minigrad on the GPU vs PyTorch CUDA (TF32 off),
and in float64 vs minigrad's float64 CPU result.  Those cases carry the ``gpu`` marker and skip
with one line of reason on a machine without a GPU."""

import numpy as np
import pytest
from conftest import cpu_variants, gpu_variants

from minigrad import kernels
from minigrad.testing import checks
from minigrad.testing.opinfo import all_specs

SPECS = all_specs()


def _cases(with_variants=True):
    rng = np.random.default_rng(0)
    for spec in SPECS:
        variants = cpu_variants(spec.kernel) if (spec.kernel and with_variants) else [None]
        for sample in spec.samples(rng):
            for variant in variants:
                vid = f"-{variant}" if variant else ""
                yield pytest.param(spec, sample, variant, id=f"{spec.name}-{sample.name}{vid}")


CASES = list(_cases())


def _device_cases():
    """CASES on the CPU (same ids), then every spec on "cuda" for each GPU variant. ``device``
    goes through conftest's ``device`` fixture (indirect), which skips "cuda" without a GPU."""
    for p in CASES:
        yield pytest.param(*p.values, "cpu", id=p.id)
    rng = np.random.default_rng(0)
    for spec in SPECS:
        variants = gpu_variants(spec.kernel) if spec.kernel else [None]
        for sample in spec.samples(rng):
            for variant in variants:
                vid = f"-{variant}" if variant else ""
                yield pytest.param(
                    spec,
                    sample,
                    variant,
                    "cuda",
                    marks=pytest.mark.gpu,
                    id=f"{spec.name}-{sample.name}{vid}-cuda",
                )


DEVICE_CASES = list(_device_cases())


def _use(spec, variant, device="cpu"):
    if variant is None:
        return kernels.use(spec.kernel, None) if spec.kernel else _Null()
    return kernels.use(spec.kernel, variant)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec,sample,variant,device", DEVICE_CASES, indirect=["device"])
def test_matches_torch(spec, sample, variant, device, dtype):
    with _use(spec, variant, device):
        checks.check_against_torch(spec, sample, dtype, device)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec,sample,variant,device", DEVICE_CASES, indirect=["device"])
def test_double_backward_matches_torch(spec, sample, variant, device, dtype):
    if not spec.gradgrad:
        pytest.skip("first-order only")
    with _use(spec, variant, device):
        try:
            checks.check_double_backward(spec, sample, dtype, device)
        except checks.OracleUnsupported as e:
            pytest.skip(str(e).splitlines()[0])


@pytest.mark.parametrize("spec,sample,variant", CASES)
def test_gradcheck(spec, sample, variant):
    if spec.extra.get("no_gradcheck"):
        pytest.skip("piecewise-constant gradient at ties (checked against torch instead)")
    with _use(spec, variant):
        assert checks.check_gradcheck(spec, sample)
        assert checks.check_gradcheck(spec, sample, fast_mode=True)


@pytest.mark.parametrize("spec,sample,variant", CASES)
def test_gradgradcheck(spec, sample, variant):
    if not spec.gradgrad:
        pytest.skip("first-order only")
    with _use(spec, variant):
        assert checks.check_gradgradcheck(spec, sample)


@pytest.mark.parametrize("spec,sample,variant", CASES)
def test_noncontiguous_inputs(spec, sample, variant):
    with _use(spec, variant):
        checks.check_noncontiguous(spec, sample)


@pytest.mark.parametrize("spec,sample,variant", CASES)
def test_inputs_unchanged_and_zero_grad(spec, sample, variant):
    with _use(spec, variant):
        checks.check_inputs_unchanged(spec, sample)
        checks.check_zero_grad(spec, sample)


ERRORS = [
    pytest.param(spec, s, exc, pat, id=f"{spec.name}-{i}")
    for spec in SPECS
    for i, (s, exc, pat) in enumerate(spec.errors)
]


@pytest.mark.parametrize("spec,sample,exc,pattern", ERRORS)
def test_bad_input_raises(spec, sample, exc, pattern):
    checks.check_error(spec, sample, exc, pattern)


def test_every_spec_has_samples():
    assert len(SPECS) >= 45
    for spec in SPECS:
        assert spec.samples(np.random.default_rng(0)), spec.name
