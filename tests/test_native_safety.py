"""Native-code safety: calls that used to crash the interpreter now raise a Python exception.

Each case runs in a fresh interpreter (a crash there fails the test instead of killing pytest)
and checks the exception type and that the message names the op and the offending values.
The hypothesis fuzz of every ``_C`` (and ``_cuda`` host-side) binding is tests/fuzz_native.py,
run here as a subprocess too. Issue 15, items 1 and 4 and the systematic fuzz.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from minigrad.kernels import native

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG = 2**63 - 1

needs_C = pytest.mark.skipif(native.load_C() is None, reason="minigrad._C is not built")


def run_python(code: str, timeout: float = 120, args=()) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; fail with the signal's name if it crashed."""
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode < 0:
        pytest.fail(
            f"the interpreter died with {signal.Signals(-r.returncode).name}\n"
            f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
        )
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    return r


def expect_error(call: str, exc: str, *words: str, setup: str = "") -> None:
    """In a subprocess: ``call`` must raise ``exc`` whose message contains every word."""
    code = f"""
        import numpy as np
        import minigrad as mg
        import minigrad.nn as nn
        import minigrad.nn.functional as F
        from minigrad import _C
        {setup}
        try:
            {call}
        except {exc} as e:
            msg = str(e)
            missing = [w for w in {list(words)!r} if w not in msg]
            assert not missing, f"message {{msg!r}} lacks {{missing}}"
            print("RAISED", type(e).__name__, msg)
        else:
            raise SystemExit("no exception was raised")
    """
    r = run_python(code)
    assert "RAISED" in r.stdout


# ----------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize("stride, padding", [((1, BIG), 2), ((BIG, 1), 2), ((BIG, BIG), 0)])
def test_conv2d_huge_stride_raises(stride, padding):
    expect_error(
        f"F.conv2d(mg.randn(1, 1, 3, 3), mg.randn(1, 1, 1, 1), stride={stride}, padding={padding})",
        "ValueError",
        "conv2d",
        "stride",
        str(BIG),
    )


def test_Conv2d_module_huge_stride_raises():
    expect_error(
        "nn.Conv2d(1, 1, 1, stride=(1, 2**63 - 1), padding=2)(mg.randn(1, 1, 3, 3))",
        "ValueError",
        "conv2d",
        str(BIG),
    )


@pytest.mark.parametrize("kw", ["padding=2**62", "dilation=2**62", "padding=(2**63 - 1, 0)"])
def test_conv2d_huge_padding_or_dilation_raises(kw):
    expect_error(
        f"F.conv2d(mg.randn(1, 1, 3, 3), mg.randn(1, 1, 2, 2), {kw})", "ValueError", "conv2d"
    )


@needs_C
@pytest.mark.parametrize("fn", ["im2col", "col2im"])
@pytest.mark.parametrize(
    "stride, padding, dilation",
    [
        ((1, BIG), (2, 2), (1, 1)),  # the issue's geometry: (-off + s - 1) overflowed
        ((BIG, 1), (2, 2), (1, 1)),
        ((1, 1), (2**62, 0), (1, 1)),  # H + 2 * pH overflows
        ((1, 1), (0, 0), (1, 2**62)),  # dW * (KW - 1) overflows
    ],
)
def test_C_im2col_col2im_overflowing_geometry_raises(fn, stride, padding, dilation):
    if fn == "im2col":
        call = f"_C.im2col(np.ones((1, 1, 3, 3)), 1, 3, {stride}, {padding}, {dilation})"
    else:  # cols of the shape the (wrapped) geometry implies must not reach the kernel
        call = (
            f"_C.col2im(np.ones((1, 1, 1, 3, 1, 1)), (1, 1, 3, 3), 1, 3, {stride}, "
            f"{padding}, {dilation})"
        )
    expect_error(call, "ValueError", fn)


@needs_C
def test_C_col2im_issue_geometry_does_not_corrupt_the_heap():
    # "double free or corruption" before the fix: cols (1, 1, 1, 1, OH, OW) for stride 2**63-1
    expect_error(
        f"_C.col2im(np.ones((1, 1, 1, 1, 7, 1)), (1, 1, 3, 3), 1, 1, (1, {BIG}), (2, 2), (1, 1))",
        "ValueError",
        "col2im",
        str(BIG),
    )


# ----------------------------------------------------------------------------- pooling
@needs_C
@pytest.mark.parametrize(
    "kernel, padding, dilation",
    [
        ((1, 1), (0, 0), (BIG, BIG)),  # before: the window bounds wrapped, y was -inf, not x
        ((3, 3), (1, 1), (BIG, 1)),  # before: d*(k-1) wrapped to -2, a bogus 8x4 output
        ((3, 3), (1, 1), (1, 2**62)),
        ((2, 2), (1, 1), (1, BIG)),
    ],
)
def test_C_maxpool2d_huge_dilation_raises(kernel, padding, dilation):
    expect_error(
        f"_C.maxpool2d_forward(np.ones((1, 1, 4, 4)), {kernel}, (1, 1), {padding}, "
        f"{dilation}, False)",
        "ValueError",
        "maxpool2d_forward",
    )
    expect_error(
        f"_C.maxpool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), "
        f"np.int64), (1, 1, 4, 4), {kernel}, (1, 1), {padding}, {dilation}, False)",
        "ValueError",
        "maxpool2d_backward",
    )


@needs_C
@pytest.mark.parametrize("stride", [(BIG, 1), (1, BIG)])
def test_C_pool_huge_stride_with_ceil_mode_raises_or_works(stride):
    # (span + s - 1) overflowed with ceil_mode
    code = f"""
        import numpy as np
        from minigrad import _C
        for ceil in (False, True):
            try:
                y, i = _C.maxpool2d_forward(np.ones((1, 1, 4, 4)), (2, 2), {stride}, (1, 1),
                                            (1, 1), ceil)
                assert y.shape[2:] == (1, 1), y.shape
            except ValueError as e:
                assert "maxpool2d_forward" in str(e)
        print("OK")
    """
    assert "OK" in run_python(code).stdout


def test_max_pool2d_huge_dilation_raises_from_the_public_api():
    expect_error(
        "F.max_pool2d(mg.randn(1, 1, 4, 4), 2, stride=1, padding=1, dilation=(1, 2**63 - 1))",
        "ValueError",
        "max_pool2d",
        str(BIG),
    )


@needs_C
@pytest.mark.parametrize("divisor", [0, -1, -(2**63)])
def test_C_avgpool2d_rejects_non_positive_divisor_override(divisor):
    expect_error(
        f"_C.avgpool2d_forward(np.ones((1, 1, 4, 4)), (2, 2), (2, 2), (0, 0), False, "
        f"True, {divisor})",
        "ValueError",
        "avgpool2d_forward",
        "divisor_override",
    )
    expect_error(
        f"_C.avgpool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, 4, 4), (2, 2), (2, 2), "
        f"(0, 0), False, True, {divisor})",
        "ValueError",
        "avgpool2d_backward",
        "divisor_override",
    )


@needs_C
def test_cpp_avgpool2d_passes_divisor_zero_on_instead_of_dropping_it():
    # kernels/cpp.py turned 0 into None (the window count) before the fix
    expect_error(
        "cpp.avgpool2d_forward(np.ones((1, 1, 4, 4)), (2, 2), (2, 2), (0, 0), False, True, 0)",
        "ValueError",
        "divisor_override",
        setup="from minigrad.kernels import cpp",
    )


def test_avg_pool2d_public_api_rejects_divisor_zero():
    expect_error(
        "F.avg_pool2d(mg.randn(1, 1, 4, 4), 2, divisor_override=0)",
        "ValueError",
        "avg_pool2d",
        "divisor_override",
    )


# ----------------------------------------------------------------------------- attention rows
@needs_C
@pytest.mark.parametrize("i0", [BIG, 2**62, 2**63 - 2])
def test_C_attention_rows_huge_i0_raises(i0):
    setup = "s = np.ones((1, 2, 4)); m = np.zeros((4, 4))"
    expect_error(
        f"_C.attention_rows_forward(s, m, 1.0, {i0}, False)",
        "ValueError",
        "attention_rows_forward",
        str(i0),
        setup=setup,
    )
    expect_error(
        f"_C.attention_rows_backward(s, np.ones((1, 2, 4)), np.zeros((1, 2)), "
        f"np.zeros((1, 2)), m, 1.0, {i0}, False)",
        "ValueError",
        "attention_rows_backward",
        str(i0),
        setup=setup,
    )


@needs_C
def test_C_attention_rows_huge_i0_causal_without_mask_is_safe():
    # no mask: i0 only decides how many keys are visible (i0 + r + 1 must not overflow)
    code = f"""
        import numpy as np
        from minigrad import _C
        s = np.ones((1, 2, 4))
        try:
            lse = _C.attention_rows_forward(s, None, 1.0, {BIG}, True)
            assert np.allclose(s, 0.25) and np.allclose(lse, np.log(4) + 1), (s, lse)
        except ValueError as e:
            assert "attention_rows_forward" in str(e)
        print("OK")
    """
    assert "OK" in run_python(code).stdout


@needs_C
def test_C_attention_rows_backward_rejects_aliased_buffers():
    expect_error(
        "_C.attention_rows_backward(s, s, np.zeros((1, 2)), np.zeros((1, 2)), None, 1.0, 0, False)",
        "ValueError",
        "attention_rows_backward",
        "share memory",
        setup="s = np.ones((1, 2, 4))",
    )


# ----------------------------------------------------------------------------- cross_entropy
@needs_C
@pytest.mark.parametrize("which", ["forward", "backward"])
def test_C_cross_entropy_target_rewritten_by_another_thread(which):
    # The target range was checked under the GIL and read again after releasing it: a thread
    # that rewrote the target in between sent the kernel far out of bounds (SIGSEGV).
    code = f"""
        import threading
        import numpy as np
        from minigrad import _C
        M, C = 4096, 256
        logits = np.zeros((M, C))
        target = np.zeros(M, np.int64)
        lse = np.full(M, np.log(C))
        done = False

        def writer():
            while not done:
                target[:] = 2**40
                target[:] = 0

        th = threading.Thread(target=writer)
        th.start()
        raised = ok = 0
        try:
            for _ in range(300):
                try:
                    if "{which}" == "forward":
                        losses, _ = _C.cross_entropy_forward(logits, target, None, -100, 0.0)
                        assert np.allclose(losses, np.log(C)), losses
                    else:
                        d = _C.cross_entropy_backward(np.ones(M), logits, target, lse, None,
                                                      -100, 0.0)
                        assert np.allclose(d.sum(axis=1), 0), d
                    ok += 1
                except IndexError as e:
                    assert "out of bounds" in str(e)
                    raised += 1
        finally:
            done = True
            th.join()
        print("OK", ok, raised)
    """
    assert "OK" in run_python(code, timeout=240).stdout


# ----------------------------------------------------------------------------- optimizers
@needs_C
def test_C_sgd_rejects_a_parameter_listed_twice():
    expect_error(
        "_C.sgd_step([p, p], [g, g], [None, None], 0.1, 0.9, 0.0, 0.0, False, False)",
        "ValueError",
        "sgd_step",
        "share memory",
        setup="p = np.ones(4); g = np.ones(4)",
    )


@needs_C
def test_C_adam_rejects_state_aliasing_the_parameter():
    expect_error(
        "_C.adam_step([p], [g], [p], [v], None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False)",
        "ValueError",
        "adam_step",
        "share memory",
        setup="p = np.ones(4); g = np.ones(4); v = np.zeros(4)",
    )


# ----------------------------------------------------------------------------- the fuzz
@needs_C
def test_fuzz_native_bindings():
    """tests/fuzz_native.py: every _C binding (and _cuda's host-side checks when it imports)
    with extreme ints, wrong dtypes, byte-swapped, zero-size, non-contiguous and aliased
    arrays: a Python exception or a correct result, never a signal."""
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "tests", "fuzz_native.py"),
            "--seed",
            "0",
            "--examples",
            os.environ.get("MINIGRAD_FUZZ_EXAMPLES", "60"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    if r.returncode < 0:
        pytest.fail(
            f"the fuzz crashed with {signal.Signals(-r.returncode).name}\n"
            f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
        )
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
