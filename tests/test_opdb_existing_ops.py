"""minigrad's original ops (arithmetic, reductions, shapes, indexing, nn.functional) on PyTorch's
own sample inputs: every float64 sample of ``op_db`` (``torch.testing._internal.
common_methods_invocations``) for the mapped ops runs through both libraries; outputs, and the
gradient of the first input where the op is differentiable, must agree (the helpers of
tests/test_opdb_tensor_ops.py). Goal: at least 99% of each op's samples pass.

An op_db name resolves to ``mg.<name>``, ``mg.nn.functional.<name>`` or the Tensor method.
Per-op pass rates: ``python tests/test_opdb_existing_ops.py``.
"""

import sys

import pytest
import torch
from test_opdb_tensor_ops import _run_sample

# (op_db name, variant_test_name). Left out: dropout and the random factories (random values),
# the dtype casts (``mg.float`` is a dtype), ``to`` and ``item``.
OPS = [
    ("add", ""),
    ("sub", ""),
    ("mul", ""),
    ("div", "no_rounding_mode"),
    ("div", "trunc_rounding"),
    ("div", "floor_rounding"),
    ("pow", ""),
    ("neg", ""),
    ("abs", ""),
    ("exp", ""),
    ("log", ""),
    ("sqrt", ""),
    ("sin", ""),
    ("cos", ""),
    ("tanh", ""),
    ("sigmoid", ""),
    ("nn.functional.relu", ""),
    ("maximum", ""),
    ("minimum", ""),
    ("clamp", ""),
    ("where", ""),
    ("sum", ""),
    ("mean", ""),
    ("var", ""),
    ("var", "unbiased"),
    ("std", ""),
    ("std", "unbiased"),
    ("amax", ""),
    ("amin", ""),
    ("max", "reduction_with_dim"),
    ("max", "reduction_no_dim"),
    ("max", "binary"),
    ("min", "reduction_with_dim"),
    ("min", "reduction_no_dim"),
    ("min", "binary"),
    ("argmax", ""),
    ("argmin", ""),
    ("logsumexp", ""),
    ("softmax", ""),
    ("softmax", "with_dtype"),
    ("log_softmax", ""),
    ("log_softmax", "with_dtype"),
    ("matmul", ""),
    ("mm", ""),
    ("bmm", ""),
    ("reshape", ""),
    ("view", ""),
    ("permute", ""),
    ("transpose", ""),
    ("flatten", ""),
    ("squeeze", ""),
    ("squeeze", "multiple"),
    ("unsqueeze", ""),
    ("expand", ""),
    ("cat", ""),
    ("stack", ""),
    ("split", ""),
    ("split", "list_args"),
    ("chunk", ""),
    ("gather", ""),
    ("masked_fill", ""),
    ("nn.functional.conv2d", ""),
    ("nn.functional.max_pool2d", ""),
    ("nn.functional.avg_pool2d", ""),
    ("nn.functional.adaptive_avg_pool2d", ""),
    ("nn.functional.linear", ""),
    ("nn.functional.layer_norm", ""),
    ("nn.functional.batch_norm", ""),
    ("nn.functional.embedding", ""),
    ("nn.functional.cross_entropy", ""),
    ("nn.functional.nll_loss", ""),
    ("nn.functional.mse_loss", ""),
    ("nn.functional.l1_loss", ""),
    ("nn.functional.pad", "constant"),
    ("nn.functional.pad", "reflect"),
    ("nn.functional.pad", "replicate"),
    ("nn.functional.pad", "replicate_negative"),
    ("nn.functional.pad", "circular"),
    ("linspace", ""),
    ("linspace", "tensor_overload"),
    ("zeros_like", ""),
    ("ones_like", ""),
    ("full_like", ""),
    # more of minigrad's ops and layers that op_db covers
    ("arange", ""),
    ("zeros", ""),
    ("ones", ""),
    ("full", ""),
    ("eye", ""),
    ("broadcast_to", ""),
    ("clone", ""),
    ("contiguous", ""),
    ("expand_as", ""),
    ("reshape_as", ""),
    ("view_as", ""),
    ("unflatten", ""),
    ("narrow", ""),
    ("repeat", ""),
    ("t", ""),
    ("__getitem__", ""),
    ("eq", ""),
    ("ne", ""),
    ("ge", ""),
    ("gt", ""),
    ("le", ""),
    ("lt", ""),
    ("rsqrt", ""),
    ("square", ""),
    ("isposinf", ""),
    ("isneginf", ""),
    ("__radd__", ""),
    ("__rsub__", ""),
    ("__rmul__", ""),
    ("__rpow__", ""),
    ("__rmatmul__", ""),
    ("nn.functional.conv1d", ""),
    ("nn.functional.conv_transpose2d", ""),
    ("nn.functional.adaptive_max_pool2d", ""),
    ("nn.functional.unfold", ""),
    ("nn.functional.instance_norm", ""),
    ("nn.functional.interpolate", "linear"),
    ("nn.functional.interpolate", "bilinear"),
    ("nn.functional.leaky_relu", ""),
    ("nn.functional.silu", ""),
    ("nn.functional.gelu", ""),
    ("nn.functional.binary_cross_entropy", ""),
    ("nn.functional.binary_cross_entropy_with_logits", ""),
    ("linalg.vector_norm", ""),
    ("linalg.cross", ""),
    ("nn.functional.scaled_dot_product_attention", ""),
    ("nn.functional.group_norm", ""),
    ("nn.functional.pixel_shuffle", ""),
    ("nn.functional.pixel_unshuffle", ""),
    # the SVD-based norms and 5-d interpolation (tests/test_linalg_norms.py,
    # tests/test_resample_interpolate5d.py)
    ("linalg.matrix_norm", ""),
    ("linalg.norm", ""),
    ("linalg.norm", "subgradients_at_zero"),
    ("linalg.svdvals", ""),
    ("norm", "nuc"),
    ("norm", "fro"),
    ("norm", "inf"),
    ("nn.functional.interpolate", "nearest"),
    ("nn.functional.interpolate", "nearest-exact"),
    ("nn.functional.interpolate", "trilinear"),
]


def _op_db_all():
    from test_opdb_tensor_ops import _op_db

    _op_db()  # skips (or raises under CI) where PyTorch's test internals are unavailable
    from torch.testing._internal.common_methods_invocations import op_db

    return {(op.name, op.variant_test_name): op for op in op_db}


def _filtered(sample):
    """The reason minigrad intentionally does not run this sample, or None."""
    tensors = [sample.input, *sample.args, *sample.kwargs.values()]
    tensors += [t for v in list(tensors) if isinstance(v, (list, tuple)) for t in v]
    if any(
        isinstance(t, torch.Tensor) and (t.is_complex() or t.layout != torch.strided)
        for t in tensors
    ):
        return "complex or sparse tensors"
    if "out" in sample.kwargs:
        return "out= arguments"
    if sample.kwargs.get("sparse"):
        return "sparse gradients (embedding's sparse=True)"
    if sample.kwargs.get("dropout_p"):
        return "random dropout (attention's dropout_p > 0): no common values to compare"
    return None


def _rate(name, variant):
    op = _op_db_all().get((name, variant))
    if op is None:
        pytest.skip(f"{name}.{variant} has no OpInfo entry in this PyTorch")
    passed, failures = 0, []
    for sample in op.sample_inputs("cpu", torch.float64, requires_grad=False):
        if _filtered(sample):
            continue
        try:
            if _run_sample(name, op, sample) is None:
                continue
            passed += 1
        except Exception as e:  # collected and reported below
            failures.append(
                f"{type(e).__name__}: {str(e)[:300]} (input "
                f"{tuple(getattr(sample.input, 'shape', ()))}, args "
                f"{[getattr(a, 'shape', a) for a in sample.args]}, {sample.kwargs})"
            )
    return passed, failures


@pytest.mark.parametrize("name,variant", OPS, ids=[f"{n}.{v}" if v else n for n, v in OPS])
def test_op_db_samples(name, variant):
    passed, failures = _rate(name, variant)
    total = passed + len(failures)
    assert total, f"{name}: no sample ran"
    assert passed >= 0.99 * total, f"{name}: {passed}/{total} passed\n" + "\n".join(failures[:8])


if __name__ == "__main__":
    only = sys.argv[1:]
    for name, variant in OPS:
        if only and name not in only:
            continue
        p, f = _rate(name, variant)
        print(
            f"{name + ('.' + variant if variant else ''):42s} {p:5d}/{p + len(f):<5d}"
            + ("" if not f else "  " + f[0][:160])
        )
