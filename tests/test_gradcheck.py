"""gradcheck / gradgradcheck themselves: on functions of several inputs and several outputs whose
gradient is wrong in exactly one input, one output or one element, they must fail and name
that place (and pass on the correct twin of each function)."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck


def leaves(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(mg.tensor(rng.uniform(0.5, 1.5, s), requires_grad=True) for s in shapes)


def _const(arr, like):
    return mg.tensor(np.asarray(arr, dtype=np.float64).reshape(like.shape))


# ----------------------------------------------------------------------------- several inputs
class ThreeInputs(Function):
    """y = a * b + c**2 (elementwise, a/b/c of one shape); ``wrong`` is the input whose
    gradient is scaled by 1.5 (None: all correct)."""

    @staticmethod
    def forward(ctx, a, b, c, wrong):
        ctx.save_for_backward(a, b, c)
        ctx.wrong = wrong
        return a * b + c * c

    @staticmethod
    def backward(ctx, grad):
        a, b, c = ctx.saved_tensors
        grads = [grad * b, grad * a, grad * c * 2]  # d/da = b, d/db = a, d/dc = 2c
        if ctx.wrong is not None:
            grads[ctx.wrong] = grads[ctx.wrong] * 1.5
        return (*grads, None)


def test_correct_three_input_function_passes():
    xs = leaves((2, 3), (2, 3), (2, 3))
    assert gradcheck(lambda a, b, c: ThreeInputs.apply(a, b, c, None), xs)
    assert gradcheck(lambda a, b, c: ThreeInputs.apply(a, b, c, None), xs, fast_mode=True)


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("wrong", [0, 1, 2])
def test_wrong_gradient_of_one_input_is_found_and_named(wrong, fast_mode):
    xs = leaves((2, 3), (2, 3), (2, 3))
    with pytest.raises(GradcheckError, match=rf"with respect to input {wrong}\b") as info:
        gradcheck(lambda a, b, c: ThreeInputs.apply(a, b, c, wrong), xs, fast_mode=fast_mode)
    for other in {0, 1, 2} - {wrong}:
        assert f"input {other}" not in str(info.value)
    assert not gradcheck(
        lambda a, b, c: ThreeInputs.apply(a, b, c, wrong),
        xs,
        fast_mode=fast_mode,
        raise_exception=False,
    )


def test_inputs_that_do_not_require_grad_are_skipped_but_counted():
    a, b, c = leaves((3,), (3,), (3,))
    a.requires_grad_(False)  # input 0 is a constant: its (wrong) gradient is never asked for
    assert gradcheck(lambda a, b, c: ThreeInputs.apply(a, b, c, 0), (a, b, c))
    with pytest.raises(GradcheckError, match=r"with respect to input 2\b"):
        gradcheck(lambda a, b, c: ThreeInputs.apply(a, b, c, 2), (a, b, c))


# ----------------------------------------------------------------------------- several outputs
class TwoOutputs(Function):
    """(a * b, a + b**2); ``wrong`` is the output whose backward contribution is off."""

    @staticmethod
    def forward(ctx, a, b, wrong):
        ctx.save_for_backward(a, b)
        ctx.wrong = wrong
        return a * b, a + b * b

    @staticmethod
    def backward(ctx, g0, g1):
        a, b = ctx.saved_tensors
        if ctx.wrong == 0:
            g0 = g0 * 0.5
        if ctx.wrong == 1:
            g1 = g1 * 0.5
        # y0 = a b: dy0/da = b, dy0/db = a;  y1 = a + b^2: dy1/da = 1, dy1/db = 2b
        return g0 * b + g1, g0 * a + g1 * b * 2, None


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("wrong", [None, 0, 1])
def test_wrong_gradient_of_one_output_is_found_and_named(wrong, fast_mode):
    xs = leaves((2, 2), (2, 2), seed=1)
    if wrong is None:
        assert gradcheck(lambda a, b: TwoOutputs.apply(a, b, None), xs, fast_mode=fast_mode)
        return
    with pytest.raises(GradcheckError, match=rf"for output {wrong} with respect to input 0"):
        gradcheck(lambda a, b: TwoOutputs.apply(a, b, wrong), xs, fast_mode=fast_mode)


def test_output_positions_count_non_tensor_results():
    xs = leaves((3,), (3,), seed=2)
    with pytest.raises(GradcheckError, match=r"for output 2 with respect to input 0"):
        gradcheck(lambda a, b: ("label", *TwoOutputs.apply(a, b, 1)), xs)


def test_an_output_that_ignores_backward_is_caught():
    """An output computed outside the graph (detached) still depends on the input numerically."""
    (x,) = leaves((3,), seed=3)
    with pytest.raises(GradcheckError, match=r"output 1 with respect to input 0"):
        gradcheck(lambda a: (a * 2, (a * 3).detach()), (x,))


# ----------------------------------------------------------------------------- one element
class OneWrongEntry(Function):
    """y = a * b (shape (2, 3)) with one wrong Jacobian entry: output element ``out_at``
    leaks 0.25 of its grad into input ``which``'s element ``in_at``."""

    @staticmethod
    def forward(ctx, a, b, which, out_at, in_at):
        ctx.save_for_backward(a, b)
        ctx.meta = (which, out_at, in_at)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        which, out_at, in_at = ctx.meta
        leak = np.zeros((2, 3, 2, 3))
        leak[in_at + out_at] = 0.25  # leak[in, out]: d input[in] += 0.25 grad[out]
        extra = (grad.reshape(1, 1, 2, 3) * _const(leak, mg.zeros(2, 3, 2, 3))).sum((2, 3))
        grads = [grad * b, grad * a]
        grads[which] = grads[which] + extra
        return (*grads, None, None, None)


@pytest.mark.parametrize(
    "which,out_at,in_at",
    [
        (0, (0, 0), (0, 0)),
        (1, (1, 2), (1, 2)),  # diagonal entry of input 1
        (1, (0, 1), (1, 0)),  # off-diagonal: output (0, 1) leaks into input element (1, 0)
    ],
)
def test_wrong_single_jacobian_entry_is_named(which, out_at, in_at):
    xs = leaves((2, 3), (2, 3), seed=4)
    want = (
        rf"for output 0 with respect to input {which}, at input element "
        rf"\({in_at[0]}, {in_at[1]}\) and output element \({out_at[0]}, {out_at[1]}\)"
    )
    with pytest.raises(GradcheckError, match=want):
        gradcheck(lambda a, b: OneWrongEntry.apply(a, b, which, out_at, in_at), xs)
    with pytest.raises(GradcheckError, match=rf"fast mode.*output 0 .*input {which}"):
        gradcheck(lambda a, b: OneWrongEntry.apply(a, b, which, out_at, in_at), xs, fast_mode=True)


def test_message_gives_both_values():
    xs = leaves((2, 3), (2, 3), seed=4)
    a = xs[0].detach().numpy()
    with pytest.raises(GradcheckError) as info:  # dy[1,2]/db[1,2] = a[1,2]; backward adds 0.25
        gradcheck(lambda a, b: OneWrongEntry.apply(a, b, 1, (1, 2), (1, 2)), xs)
    m = re.search(r"analytic (\S+) vs numeric (\S+)", str(info.value))
    assert float(m[1]) == pytest.approx(a[1, 2] + 0.25, rel=1e-8)
    assert float(m[2]) == pytest.approx(a[1, 2], rel=1e-8)


# ----------------------------------------------------------------------------- gradgradcheck
class ProductSquared(Function):
    """y = a**2 * b with first derivatives right and the second order wrong in one place:
    ``wrong`` = "a_wrt_b" (grad of a detaches b), "b_wrt_a" (grad of b detaches a),
    "b_wrt_v" (grad of b detaches the incoming grad) or None."""

    @staticmethod
    def forward(ctx, a, b, wrong):
        ctx.save_for_backward(a, b)
        ctx.wrong = wrong
        return a * a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        w = ctx.wrong
        b_in_da = b.detach() if w == "a_wrt_b" else b
        a_in_db = a.detach() if w == "b_wrt_a" else a
        g_in_db = grad.detach() if w == "b_wrt_v" else grad
        return grad * a * b_in_da * 2, g_in_db * a_in_db * a_in_db, None  # 2ab, a^2


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize(
    "wrong,named",
    [
        ("a_wrt_b", r"the gradient of input 0 with respect to input 1\b"),
        ("b_wrt_a", r"the gradient of input 1 with respect to input 0\b"),
        (
            "b_wrt_v",
            r"the gradient of input 1 with respect to grad_output 0 "
            r"\(the vector for output 0\)",
        ),
    ],
)
def test_gradgradcheck_names_the_wrong_second_derivative(wrong, named, fast_mode):
    xs = leaves((3,), (3,), seed=5)
    fn = lambda a, b: ProductSquared.apply(a, b, wrong)  # noqa: E731
    assert gradcheck(fn, xs)  # first order is right
    with pytest.raises(GradcheckError, match="gradgradcheck.*" + named):
        gradgradcheck(fn, xs, fast_mode=fast_mode)
    assert gradgradcheck(lambda a, b: ProductSquared.apply(a, b, None), xs, fast_mode=fast_mode)


class CubeOneElementDetached(Function):
    """y = a**3 with the second derivative wrong at element 2 only."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        m = _const([1.0, 1.0, 0.0, 1.0], a)
        a_mixed = a * m + a.detach() * (1 - m)  # same values; no gradient path at element 2
        return grad * a_mixed * a_mixed * 3


def test_gradgradcheck_names_the_element():
    (x,) = leaves((4,), seed=6)
    assert gradcheck(CubeOneElementDetached.apply, (x,))
    with pytest.raises(
        GradcheckError,
        match=r"gradient of input 0 with respect to input 0, at "
        r"input element \(2,\) and output element \(2,\)",
    ):
        gradgradcheck(CubeOneElementDetached.apply, (x,))


class TwoOutputsSecondOrder(Function):
    """(a**2, a**3); the backward of output 1 detaches its incoming grad."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a, a * a * a

    @staticmethod
    def backward(ctx, g0, g1):
        (a,) = ctx.saved_tensors
        return g0 * a * 2 + g1.detach() * a * a * 3


def test_gradgradcheck_names_the_grad_output_of_the_wrong_output():
    (x,) = leaves((3,), seed=7)
    assert gradcheck(TwoOutputsSecondOrder.apply, (x,))
    with pytest.raises(
        GradcheckError,
        match=r"with respect to grad_output 1 \(the vector for "
        r"output 1\)",
    ):
        gradgradcheck(TwoOutputsSecondOrder.apply, (x,))


def test_gradgradcheck_with_an_unused_input_keeps_names_aligned():
    """Input 0 does not reach the output (its gradient is None): the gradient of input 1 must
    still be called 'the gradient of input 1'."""
    a, b = leaves((3,), (4,), seed=8)
    fn = lambda a, b: CubeOneElementDetached.apply(b)  # noqa: E731
    with pytest.raises(GradcheckError, match=r"the gradient of input 1 with respect to input 1"):
        gradgradcheck(fn, (a, b))


def test_gradgradcheck_rejects_a_wrong_number_of_grad_outputs():
    (x,) = leaves((3,))
    with pytest.raises(ValueError, match="2 tensors but 1 grad_outputs"):
        gradgradcheck(lambda a: (a * 2, a * 3), (x,), grad_outputs=[mg.ones(3).double()])


# ----------------------------------------------------------------------------- tolerances
class Scale(Function):
    """y = c * a with backward c * (1 + rel) + abs_err: a gradient off by exactly that much."""

    @staticmethod
    def forward(ctx, a, c, rel, abs_err):
        ctx.meta = (c, rel, abs_err)
        return a * c

    @staticmethod
    def backward(ctx, grad):
        c, rel, abs_err = ctx.meta
        return grad * (c * (1 + rel) + abs_err), None, None, None


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_atol_and_rtol_each_mean_what_they_say(fast_mode):
    (x,) = leaves((1,), seed=9)  # one element: v^T J u error equals the entry's error * v * u
    big = lambda a: Scale.apply(a, 100.0, 5e-3, 0.0)  # noqa: E731  relative error 5e-3
    small = lambda a: Scale.apply(a, 1e-3, 0.0, 5e-3)  # noqa: E731  absolute error 5e-3
    # fast mode compares v^T J u: seed 5 draws |v u| = 1.06, so the errors keep their size
    kw = {"fast_mode": fast_mode, "raise_exception": False, "seed": 5}
    assert gradcheck(big, (x,), atol=0.0, rtol=1e-2, **kw)
    assert not gradcheck(big, (x,), atol=1e-2, rtol=0.0, **kw)
    assert gradcheck(small, (x,), atol=1e-2, rtol=0.0, **kw)
    assert not gradcheck(small, (x,), atol=0.0, rtol=1e-2, **kw)
    assert not gradcheck(big, (x,), atol=0.0, rtol=1e-3, **kw)
    assert gradgradcheck(lambda a: a * a * 100.0, (x,), atol=0.0, rtol=1e-6, **kw)
