"""A recording stand-in for ``minigrad._cuda`` and the CuPy layer, for testing
``minigrad/kernels/cuda.py`` on a machine without a GPU.

* :class:`FakeDeviceArray` is a NumPy array posing as a CuPy array: ``a.data.ptr`` is the
  address of its host buffer (and registers the array under that address), ``a.device`` is a
  context manager with ``id == 0``.  :data:`fake_cupy` provides the few CuPy functions the
  wrapper calls; buffers from ``empty``/``empty_like`` are poisoned (NaN, or -7 for ints), so an
  output the "kernel" never writes fails the comparison.
* :class:`FakeCuda` has every entry point of ``_cuda`` with the binding's argument names and
  order (a test checks them against the real module's pybind11 signatures).  Each call is
  recorded, then checked as the binding documents it: every pointer must name a registered,
  C-contiguous buffer of the stated dtype whose shape/size is the one the other arguments
  imply (window geometry recomputed with the reference formulas), the stream must be the
  current (fake) stream, and list arguments must have one entry per parameter.  Then the
  reference kernel (``minigrad.kernels.reference``) runs on host COPIES of the inputs and its
  results are written into the output buffers, as the CUDA kernel would.

A wrapper that swaps two arguments either trips a check (``FakeCallError``) or produces
different numbers from the reference called directly, which the tests compare.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np

from minigrad.kernels import reference

STREAM = 0x5EED  # the fake current stream's handle
REGISTRY: dict[int, np.ndarray] = {}


class FakeCallError(AssertionError):
    """A call that breaks the binding's documented contract."""


class _Device:
    id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeDeviceArray(np.ndarray):
    """A host array that looks like a CuPy array to kernels/cuda.py."""

    @property
    def data(self):  # CuPy: a MemoryPointer with .ptr
        ptr = int(self.__array_interface__["data"][0])
        REGISTRY[ptr] = self
        return SimpleNamespace(ptr=ptr)

    @property
    def device(self):
        return _Device()


def to_device(a) -> FakeDeviceArray:
    return np.array(a, copy=True).view(FakeDeviceArray)


def _poison(a):
    a.fill(np.nan if a.dtype.kind == "f" else -7)
    return a


def _empty(shape, dtype=float, order="C"):
    return _poison(np.empty(shape, dtype=dtype, order=order).view(FakeDeviceArray))


def _empty_like(a, dtype=None):
    return _poison(np.empty(np.shape(a), dtype=dtype or a.dtype).view(FakeDeviceArray))


fake_cupy = SimpleNamespace(
    ndarray=FakeDeviceArray,
    int64=np.int64,
    empty=_empty,
    empty_like=_empty_like,
    zeros_like=lambda a: np.zeros_like(a).view(FakeDeviceArray),
    ascontiguousarray=lambda a: np.ascontiguousarray(a).view(FakeDeviceArray),
    asnumpy=lambda a: np.asarray(a).view(np.ndarray).copy(),
    cuda=SimpleNamespace(get_current_stream=lambda: SimpleNamespace(ptr=STREAM)),
)


# ----------------------------------------------------------------------------- the fake module
def binding_arg_names(func) -> list[str]:
    """Argument names of a pybind11 function, in order, from its signature line."""
    first = func.__doc__.strip().splitlines()[0]
    return re.findall(r"[(,] ?(\w+): ", first)


class FakeCuda:
    """``minigrad._cuda`` for host arrays: validate each call, run the reference, record."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    # -- checks
    def _record(self, name, args):
        args = {k: v for k, v in args.items() if k != "self"}
        self.calls.append((name, args))
        if args.get("stream") != STREAM:
            raise FakeCallError(
                f"{name}: stream {args.get('stream')!r} is not the current stream {STREAM}"
            )
        if "dtype" in args and args["dtype"] not in ("float32", "float64"):
            raise FakeCallError(f"{name}: dtype {args['dtype']!r}")

    @staticmethod
    def _buf(name, arg, ptr, shape, dtype) -> np.ndarray:
        """The registered buffer at `ptr`, as an array of `shape` (a view: writes land)."""
        shape = tuple(int(d) for d in shape)
        if not isinstance(ptr, int):
            raise FakeCallError(f"{name}: '{arg}' must be a pointer (int), got {ptr!r}")
        a = REGISTRY.get(ptr)
        if a is None:
            raise FakeCallError(f"{name}: '{arg}' = {ptr} is not the pointer of any array")
        if a.dtype != np.dtype(dtype):
            raise FakeCallError(f"{name}: '{arg}' has dtype {a.dtype}, the call says {dtype}")
        if not a.flags.c_contiguous:
            raise FakeCallError(f"{name}: '{arg}' is not C-contiguous")
        if a.size != int(np.prod(shape)):
            raise FakeCallError(
                f"{name}: '{arg}' has {a.size} elements {a.shape}, the call implies shape {shape}"
            )
        return a.view(np.ndarray).reshape(shape)

    @staticmethod
    def _window(name, **pairs):
        """The binding's window rules: kernel/stride/dilation >= 1, padding >= 0, pairs."""
        for arg, v in pairs.items():
            if len(v) != 2:
                raise FakeCallError(f"{name}: '{arg}' must have 2 entries, got {v!r}")
            low = 0 if arg == "padding" else 1
            if min(int(d) for d in v) < low:
                raise FakeCallError(f"{name}: '{arg}' = {tuple(v)} must be >= {low}")

    @staticmethod
    def _same(name, arg, got, want):
        if tuple(int(d) for d in got) != tuple(int(d) for d in want):
            raise FakeCallError(f"{name}: '{arg}' is {tuple(got)}, geometry implies {want}")

    # -- relu
    def relu_forward(self, x_ptr, y_ptr, n, dtype, stream=0):
        self._record("relu_forward", locals())
        x = self._buf("relu_forward", "x_ptr", x_ptr, (n,), dtype).copy()
        y = self._buf("relu_forward", "y_ptr", y_ptr, (n,), dtype)
        y[...] = reference.relu_forward(x)

    def relu_backward(self, dy_ptr, x_ptr, dx_ptr, n, dtype, stream=0):
        self._record("relu_backward", locals())
        dy = self._buf("relu_backward", "dy_ptr", dy_ptr, (n,), dtype).copy()
        x = self._buf("relu_backward", "x_ptr", x_ptr, (n,), dtype).copy()
        self._buf("relu_backward", "dx_ptr", dx_ptr, (n,), dtype)[...] = reference.relu_backward(
            dy, x
        )

    # -- conv
    @staticmethod
    def _conv_cols_shape(x_shape, KH, KW, stride, padding, dilation):
        FakeCuda._window("conv", kernel=(KH, KW), stride=stride, padding=padding, dilation=dilation)
        N, C, H, W = x_shape
        OH = reference.conv_output_size(H, KH, stride[0], padding[0], dilation[0])
        OW = reference.conv_output_size(W, KW, stride[1], padding[1], dilation[1])
        return (N, C, KH, KW, OH, OW)

    def im2col(
        self,
        x_ptr,
        x_shape,
        cols_ptr,
        cols_shape,
        KH,
        KW,
        stride,
        padding,
        dilation,
        dtype,
        stream=0,
    ):
        name = "im2col"
        self._record(name, locals())
        self._same(
            name,
            "cols_shape",
            cols_shape,
            self._conv_cols_shape(x_shape, KH, KW, stride, padding, dilation),
        )
        x = self._buf(name, "x_ptr", x_ptr, x_shape, dtype).copy()
        cols = self._buf(name, "cols_ptr", cols_ptr, cols_shape, dtype)
        cols[...] = reference.im2col(x, KH, KW, tuple(stride), tuple(padding), tuple(dilation))

    def col2im(
        self,
        cols_ptr,
        cols_shape,
        dx_ptr,
        x_shape,
        KH,
        KW,
        stride,
        padding,
        dilation,
        dtype,
        stream=0,
    ):
        name = "col2im"
        self._record(name, locals())
        self._same(
            name,
            "cols_shape",
            cols_shape,
            self._conv_cols_shape(x_shape, KH, KW, stride, padding, dilation),
        )
        cols = self._buf(name, "cols_ptr", cols_ptr, cols_shape, dtype).copy()
        dx = self._buf(name, "dx_ptr", dx_ptr, x_shape, dtype)
        dx[...] = reference.col2im(
            cols, tuple(x_shape), KH, KW, tuple(stride), tuple(padding), tuple(dilation)
        )

    # -- pooling
    @staticmethod
    def _pool_shape(x_shape, kernel, stride, padding, dilation, ceil_mode):
        FakeCuda._window("pool", kernel=kernel, stride=stride, padding=padding, dilation=dilation)
        N, C, H, W = x_shape
        return (
            N,
            C,
            reference.pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
            reference.pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode),
        )

    def maxpool2d_forward(
        self,
        x_ptr,
        x_shape,
        y_ptr,
        indices_ptr,
        y_shape,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        dtype,
        stream=0,
    ):
        name = "maxpool2d_forward"
        self._record(name, locals())
        self._same(
            name,
            "y_shape",
            y_shape,
            self._pool_shape(x_shape, kernel, stride, padding, dilation, ceil_mode),
        )
        x = self._buf(name, "x_ptr", x_ptr, x_shape, dtype).copy()
        y, idx = reference.maxpool2d_forward(
            x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), ceil_mode
        )
        self._buf(name, "y_ptr", y_ptr, y_shape, dtype)[...] = y
        self._buf(name, "indices_ptr", indices_ptr, y_shape, "int64")[...] = idx

    def maxpool2d_backward(
        self,
        dy_ptr,
        indices_ptr,
        dy_shape,
        dx_ptr,
        x_shape,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        dtype,
        stream=0,
    ):
        name = "maxpool2d_backward"
        self._record(name, locals())
        self._same(
            name,
            "dy_shape",
            dy_shape,
            self._pool_shape(x_shape, kernel, stride, padding, dilation, ceil_mode),
        )
        dy = self._buf(name, "dy_ptr", dy_ptr, dy_shape, dtype).copy()
        idx = self._buf(name, "indices_ptr", indices_ptr, dy_shape, "int64").copy()
        self._buf(name, "dx_ptr", dx_ptr, x_shape, dtype)[...] = reference.maxpool2d_backward(
            dy,
            idx,
            tuple(x_shape),
            tuple(kernel),
            tuple(stride),
            tuple(padding),
            tuple(dilation),
            ceil_mode,
        )

    def avgpool2d_forward(
        self,
        x_ptr,
        x_shape,
        y_ptr,
        y_shape,
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        dtype,
        stream=0,
    ):
        name = "avgpool2d_forward"
        self._record(name, locals())
        self._same(
            name,
            "y_shape",
            y_shape,
            self._pool_shape(x_shape, kernel, stride, padding, (1, 1), ceil_mode),
        )
        x = self._buf(name, "x_ptr", x_ptr, x_shape, dtype).copy()
        self._buf(name, "y_ptr", y_ptr, y_shape, dtype)[...] = reference.avgpool2d_forward(
            x,
            tuple(kernel),
            tuple(stride),
            tuple(padding),
            ceil_mode,
            count_include_pad,
            divisor_override,
        )

    def avgpool2d_backward(
        self,
        dy_ptr,
        dy_shape,
        dx_ptr,
        x_shape,
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        dtype,
        stream=0,
    ):
        name = "avgpool2d_backward"
        self._record(name, locals())
        self._same(
            name,
            "dy_shape",
            dy_shape,
            self._pool_shape(x_shape, kernel, stride, padding, (1, 1), ceil_mode),
        )
        dy = self._buf(name, "dy_ptr", dy_ptr, dy_shape, dtype).copy()
        self._buf(name, "dx_ptr", dx_ptr, x_shape, dtype)[...] = reference.avgpool2d_backward(
            dy,
            tuple(x_shape),
            tuple(kernel),
            tuple(stride),
            tuple(padding),
            ceil_mode,
            count_include_pad,
            divisor_override,
        )

    # -- lstm cell
    def lstm_cell_forward(
        self, gates_ptr, c_prev_ptr, h_ptr, c_ptr, act_ptr, tanh_c_ptr, N, H, dtype, stream=0
    ):
        name = "lstm_cell_forward"
        self._record(name, locals())
        gates = self._buf(name, "gates_ptr", gates_ptr, (N, 4 * H), dtype).copy()
        c_prev = self._buf(name, "c_prev_ptr", c_prev_ptr, (N, H), dtype).copy()
        outs = reference.lstm_cell_forward(gates, c_prev)
        for arg, ptr, val in zip(
            ("h_ptr", "c_ptr", "act_ptr", "tanh_c_ptr"), (h_ptr, c_ptr, act_ptr, tanh_c_ptr), outs
        ):
            self._buf(name, arg, ptr, val.shape, dtype)[...] = val

    def lstm_cell_backward(
        self,
        dh_ptr,
        dc_ptr,
        c_prev_ptr,
        act_ptr,
        tanh_c_ptr,
        dgates_ptr,
        dc_prev_ptr,
        N,
        H,
        dtype,
        stream=0,
    ):
        name = "lstm_cell_backward"
        self._record(name, locals())
        ins = [
            self._buf(name, arg, ptr, shape, dtype).copy()
            for arg, ptr, shape in (
                ("dh_ptr", dh_ptr, (N, H)),
                ("dc_ptr", dc_ptr, (N, H)),
                ("c_prev_ptr", c_prev_ptr, (N, H)),
                ("act_ptr", act_ptr, (N, 4 * H)),
                ("tanh_c_ptr", tanh_c_ptr, (N, H)),
            )
        ]
        dgates, dc_prev = reference.lstm_cell_backward(*ins)
        self._buf(name, "dgates_ptr", dgates_ptr, (N, 4 * H), dtype)[...] = dgates
        self._buf(name, "dc_prev_ptr", dc_prev_ptr, (N, H), dtype)[...] = dc_prev

    # -- optimizers
    def _lists(self, name, n, **lists):
        for arg, lst in lists.items():
            if len(lst) != n:
                raise FakeCallError(f"{name}: '{arg}' has {len(lst)} entries, expected {n}")

    def sgd_step(
        self,
        params,
        grads,
        momentum_buffers,
        sizes,
        fresh,
        lr,
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize,
        dtype,
        stream=0,
    ):
        name = "sgd_step"
        self._record(name, locals())
        n = len(params)
        self._lists(name, n, grads=grads, sizes=sizes)
        if momentum != 0:
            self._lists(name, n, momentum_buffers=momentum_buffers, fresh=fresh)
        for i in range(n):
            p = self._buf(name, f"params[{i}]", params[i], (sizes[i],), dtype)
            g = self._buf(name, f"grads[{i}]", grads[i], (sizes[i],), dtype).copy()
            m = None
            if momentum != 0:
                m = self._buf(
                    name, f"momentum_buffers[{i}]", momentum_buffers[i], (sizes[i],), dtype
                )
            p_h = p.copy()
            bufs = [None if (m is None or fresh[i]) else m.copy()]
            reference.sgd_step(
                [p_h], [g], bufs, lr, momentum, dampening, weight_decay, nesterov, maximize
            )
            p[...] = p_h
            if m is not None:
                m[...] = bufs[0]

    def adam_step(
        self,
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        sizes,
        steps,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        decoupled,
        dtype,
        stream=0,
    ):
        name = "adam_step"
        self._record(name, locals())
        n = len(params)
        self._lists(
            name,
            n,
            grads=grads,
            exp_avgs=exp_avgs,
            exp_avg_sqs=exp_avg_sqs,
            sizes=sizes,
            steps=steps,
        )
        if amsgrad:
            self._lists(name, n, max_exp_avg_sqs=max_exp_avg_sqs)
        for i in range(n):
            size = (sizes[i],)
            p = self._buf(name, f"params[{i}]", params[i], size, dtype)
            g = self._buf(name, f"grads[{i}]", grads[i], size, dtype).copy()
            m = self._buf(name, f"exp_avgs[{i}]", exp_avgs[i], size, dtype)
            v = self._buf(name, f"exp_avg_sqs[{i}]", exp_avg_sqs[i], size, dtype)
            vm = (
                self._buf(name, f"max_exp_avg_sqs[{i}]", max_exp_avg_sqs[i], size, dtype)
                if amsgrad
                else np.zeros(size, dtype)
            )
            host = [p.copy(), m.copy(), v.copy(), vm.copy()]
            reference.adam_step(
                [host[0]],
                [g],
                [host[1]],
                [host[2]],
                [host[3]],
                int(steps[i]),
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
            )
            p[...], m[...], v[...] = host[:3]
            if amsgrad:
                vm[...] = host[3]
