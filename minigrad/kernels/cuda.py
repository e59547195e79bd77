"""The "cuda" variant: CUDA kernels from ``minigrad._cuda`` (csrc/cuda/) on CuPy arrays.

Same names and signatures as :mod:`minigrad.kernels.reference`.  Inputs are made contiguous
with CuPy, outputs are allocated with CuPy, and kernels launch on CuPy's current stream of the
input's device (device pointers travel as Python ints).  dtypes are checked here (TypeError
naming the op); shapes, window arguments and pointers are validated again by ``_cuda`` before
any launch (ValueError), because raw pointers carry no shape.  conv2d keeps its GEMMs in cuBLAS
(CuPy matmul) around the CUDA im2col/col2im, as the cpp variant keeps them in BLAS.

The variant counts as built (:func:`runtime`) only with ``_cuda``, CuPy and a GPU, and only
for the ops whose entry points (``ENTRY_POINTS``) the loaded ``_cuda`` has, so a stale build
never claims a kernel it lacks.
Without a GPU, tests/test_cuda_fake.py runs every wrapper against a recording fake ``_cuda``
(argument order, shapes, dtypes, pointers, stream; reference results); on a GPU,
``bash benchmarks/gpu_all.sh`` runs the ``gpu`` tests (docs/sections/gpu.md).
"""

from __future__ import annotations

from minigrad import backend
from minigrad.kernels import native, reference
from minigrad.kernels.reference import (
    check_float,
    check_same_shape,
    conv_output_size,
    pool_output_size,
)

# The extension and CuPy, loaded by _load() on a wrapper's first call (never at import
# minigrad: CuPy is slow to import and optional); tests/test_cuda_fake.py puts fakes here.
_cuda = None
_cp = None

# op -> the minigrad._cuda functions its wrappers below call (csrc/cuda/bindings.cpp).  The
# table in minigrad/kernels/__init__.py lists these ops as the "cuda" variant; an op counts as
# built only when the loaded _cuda has every one of its functions.  (bias_relu has no CUDA
# kernel: on GPU arrays dispatch falls back to the "cupy" variant, reference.py on CuPy arrays.)
ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "relu": ("relu_forward", "relu_backward"),
    "conv2d": ("im2col", "col2im"),
    "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
    "avgpool2d": ("avgpool2d_forward", "avgpool2d_backward"),
    "lstm_cell": ("lstm_cell_forward", "lstm_cell_backward"),
    "sgd": ("sgd_step",),
    "adam": ("adam_step",),
}


def runtime():
    """What the "cuda" variant needs: the loaded ``minigrad._cuda`` when it is built and CuPy
    sees a GPU, else None (CuPy is imported by this call, only when ``_cuda`` is built)."""
    ext = native.load_cuda()
    if ext is None or not backend.cuda_available():
        return None
    return ext


def _load() -> None:
    """Load ``minigrad._cuda`` and CuPy on first use (RuntimeError when either is missing)."""
    global _cuda, _cp
    if _cp is None:
        _cp = backend.cupy_or_raise()
    if _cuda is None:
        _cuda = native.load_cuda()
        if _cuda is None:
            raise RuntimeError(
                "minigrad._cuda is not built: rebuild with nvcc on the PATH "
                "(`pip install -e .`); backend_info() says why it is missing"
            )


def _stream() -> int:
    return _cp.cuda.get_current_stream().ptr


def _contiguous(a):
    # Keeps 0-d arrays 0-d (ascontiguousarray may return shape (1,)).
    return a if a.flags.c_contiguous else _cp.ascontiguousarray(a)


def _check_same_device(op: str, **arrays) -> None:
    devices = {a.device.id for a in arrays.values()}
    if len(devices) > 1:
        got = ", ".join(f"{n}=cuda:{a.device.id}" for n, a in arrays.items())
        raise ValueError(f"{op}: arguments must be on the same device, got {got}")


def _pair(v):
    return (int(v[0]), int(v[1]))


def _shape(s):
    return [int(d) for d in s]


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    _load()
    check_float("relu_forward", x=x)
    with x.device:
        x = _contiguous(x)
        y = _cp.empty_like(x)
        _cuda.relu_forward(x.data.ptr, y.data.ptr, x.size, x.dtype.name, _stream())
    return y


def relu_backward(dy, x):
    _load()
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    _check_same_device("relu_backward", dy=dy, x=x)
    with x.device:
        dy = _contiguous(dy)
        x = _contiguous(x)
        dx = _cp.empty_like(x)
        _cuda.relu_backward(dy.data.ptr, x.data.ptr, dx.data.ptr, x.size, x.dtype.name, _stream())
    return dx


# ----------------------------------------------------------------------------- conv2d
def im2col(x, KH, KW, stride, padding, dilation):
    _load()
    check_float("im2col", x=x)
    if x.ndim != 4:
        raise ValueError(f"im2col: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    N, C, H, W = x.shape
    OH = conv_output_size(H, int(KH), int(stride[0]), int(padding[0]), int(dilation[0]))
    OW = conv_output_size(W, int(KW), int(stride[1]), int(padding[1]), int(dilation[1]))
    cols_shape = (N, C, int(KH), int(KW), max(OH, 0), max(OW, 0))
    with x.device:
        x = _contiguous(x)
        cols = _cp.empty(cols_shape, dtype=x.dtype)
        _cuda.im2col(
            x.data.ptr,
            _shape(x.shape),
            cols.data.ptr,
            _shape(cols_shape),
            int(KH),
            int(KW),
            _pair(stride),
            _pair(padding),
            _pair(dilation),
            x.dtype.name,
            _stream(),
        )
    return cols


def col2im(cols, x_shape, KH, KW, stride, padding, dilation):
    _load()
    check_float("col2im", cols=cols)
    x_shape = _shape(x_shape)
    with cols.device:
        cols = _contiguous(cols)
        dx = _cp.empty(tuple(max(d, 0) for d in x_shape), dtype=cols.dtype)
        _cuda.col2im(
            cols.data.ptr,
            _shape(cols.shape),
            dx.data.ptr,
            x_shape,
            int(KH),
            int(KW),
            _pair(stride),
            _pair(padding),
            _pair(dilation),
            cols.dtype.name,
            _stream(),
        )
    return dx


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, keep_cols=False):
    """The reference body (matmul in cuBLAS through CuPy's ``@``) around the CUDA im2col."""
    return reference.conv2d_forward(
        x, weight, bias, stride, padding, dilation, groups, im2col_fn=im2col, keep_cols=keep_cols
    )


def conv2d_backward(dy, x, weight, stride, padding, dilation, groups, output_mask, cols=None):
    """The reference body (cuBLAS matmuls) around the CUDA im2col/col2im."""
    return reference.conv2d_backward(
        dy,
        x,
        weight,
        stride,
        padding,
        dilation,
        groups,
        output_mask,
        im2col_fn=im2col,
        col2im_fn=col2im,
        cols=cols,
    )


# ----------------------------------------------------------------------------- pooling
def _pool_out_shape(op, x_shape, kernel, stride, padding, dilation, ceil_mode):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected x of shape (N, C, H, W), got {tuple(x_shape)}")
    N, C, H, W = (int(d) for d in x_shape)
    OH = pool_output_size(
        H, int(kernel[0]), int(stride[0]), int(padding[0]), int(dilation[0]), ceil_mode
    )
    OW = pool_output_size(
        W, int(kernel[1]), int(stride[1]), int(padding[1]), int(dilation[1]), ceil_mode
    )
    return (N, C, max(OH, 0), max(OW, 0))


def _divisor(d):
    return int(d) if d else None


def maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    _load()
    op = "maxpool2d_forward"
    check_float(op, x=x)
    y_shape = _pool_out_shape(op, x.shape, kernel, stride, padding, dilation, ceil_mode)
    with x.device:
        x = _contiguous(x)
        y = _cp.empty(y_shape, dtype=x.dtype)
        indices = _cp.empty(y_shape, dtype=_cp.int64)
        _cuda.maxpool2d_forward(
            x.data.ptr,
            _shape(x.shape),
            y.data.ptr,
            indices.data.ptr,
            _shape(y_shape),
            _pair(kernel),
            _pair(stride),
            _pair(padding),
            _pair(dilation),
            bool(ceil_mode),
            x.dtype.name,
            _stream(),
        )
    return y, indices


def maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode):
    _load()
    op = "maxpool2d_backward"
    check_float(op, dy=dy)
    if indices.dtype.name != "int64":
        raise TypeError(f"{op}: argument 'indices' has dtype {indices.dtype.name}, expected int64")
    check_same_shape(op, dy=dy, indices=indices)
    _check_same_device(op, dy=dy, indices=indices)
    x_shape = _shape(x_shape)
    with dy.device:
        dy = _contiguous(dy)
        indices = _contiguous(indices)
        dx = _cp.empty(tuple(max(d, 0) for d in x_shape), dtype=dy.dtype)
        _cuda.maxpool2d_backward(
            dy.data.ptr,
            indices.data.ptr,
            _shape(dy.shape),
            dx.data.ptr,
            x_shape,
            _pair(kernel),
            _pair(stride),
            _pair(padding),
            _pair(dilation),
            bool(ceil_mode),
            dy.dtype.name,
            _stream(),
        )
    return dx


def avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    _load()
    op = "avgpool2d_forward"
    check_float(op, x=x)
    y_shape = _pool_out_shape(op, x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    with x.device:
        x = _contiguous(x)
        y = _cp.empty(y_shape, dtype=x.dtype)
        _cuda.avgpool2d_forward(
            x.data.ptr,
            _shape(x.shape),
            y.data.ptr,
            _shape(y_shape),
            _pair(kernel),
            _pair(stride),
            _pair(padding),
            bool(ceil_mode),
            bool(count_include_pad),
            _divisor(divisor_override),
            x.dtype.name,
            _stream(),
        )
    return y


def avgpool2d_backward(
    dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    _load()
    op = "avgpool2d_backward"
    check_float(op, dy=dy)
    x_shape = _shape(x_shape)
    with dy.device:
        dy = _contiguous(dy)
        dx = _cp.empty(tuple(max(d, 0) for d in x_shape), dtype=dy.dtype)
        _cuda.avgpool2d_backward(
            dy.data.ptr,
            _shape(dy.shape),
            dx.data.ptr,
            x_shape,
            _pair(kernel),
            _pair(stride),
            _pair(padding),
            bool(ceil_mode),
            bool(count_include_pad),
            _divisor(divisor_override),
            dy.dtype.name,
            _stream(),
        )
    return dx


# ----------------------------------------------------------------------------- lstm_cell
def lstm_cell_forward(gates, c_prev):
    _load()
    op = "lstm_cell_forward"
    check_float(op, gates=gates, c_prev=c_prev)
    _check_same_device(op, gates=gates, c_prev=c_prev)
    if c_prev.ndim != 2:
        raise ValueError(f"{op}: c_prev must have shape (N, H), got {tuple(c_prev.shape)}")
    N, H = c_prev.shape
    if gates.ndim != 2 or gates.shape != (N, 4 * H):
        raise ValueError(
            f"{op}: gates must have shape (N, 4H) = {(N, 4 * H)} for "
            f"c_prev of shape {(N, H)}, got {tuple(gates.shape)}"
        )
    with gates.device:
        gates = _contiguous(gates)
        c_prev = _contiguous(c_prev)
        h = _cp.empty((N, H), dtype=gates.dtype)
        c = _cp.empty((N, H), dtype=gates.dtype)
        act = _cp.empty((N, 4 * H), dtype=gates.dtype)
        tanh_c = _cp.empty((N, H), dtype=gates.dtype)
        _cuda.lstm_cell_forward(
            gates.data.ptr,
            c_prev.data.ptr,
            h.data.ptr,
            c.data.ptr,
            act.data.ptr,
            tanh_c.data.ptr,
            N,
            H,
            gates.dtype.name,
            _stream(),
        )
    return h, c, act, tanh_c


def lstm_cell_backward(dh, dc, c_prev, act, tanh_c):
    _load()
    op = "lstm_cell_backward"
    check_float(op, dh=dh, dc=dc, c_prev=c_prev, act=act, tanh_c=tanh_c)
    check_same_shape(op, dh=dh, dc=dc, c_prev=c_prev, tanh_c=tanh_c)
    _check_same_device(op, dh=dh, dc=dc, c_prev=c_prev, act=act, tanh_c=tanh_c)
    if c_prev.ndim != 2:
        raise ValueError(f"{op}: c_prev must have shape (N, H), got {tuple(c_prev.shape)}")
    N, H = c_prev.shape
    if act.shape != (N, 4 * H):
        raise ValueError(
            f"{op}: act must have shape (N, 4H) = {(N, 4 * H)}, got {tuple(act.shape)}"
        )
    with act.device:
        dh, dc, c_prev, act, tanh_c = (_contiguous(a) for a in (dh, dc, c_prev, act, tanh_c))
        dgates = _cp.empty((N, 4 * H), dtype=act.dtype)
        dc_prev = _cp.empty((N, H), dtype=act.dtype)
        _cuda.lstm_cell_backward(
            dh.data.ptr,
            dc.data.ptr,
            c_prev.data.ptr,
            act.data.ptr,
            tanh_c.data.ptr,
            dgates.data.ptr,
            dc_prev.data.ptr,
            N,
            H,
            act.dtype.name,
            _stream(),
        )
    return dgates, dc_prev


# ----------------------------------------------------------------------------- optimizers
# In place over whole parameter lists (csrc/cuda/optim.cu: one launch per 32 parameters).
# Parameters and their state are updated in place, so they must already be C-contiguous CuPy
# arrays on one device with one dtype (ValueError/TypeError otherwise); gradients are made
# contiguous here (a copy is fine: they are only read).
def _check_list(op, name, arrays, params, *, inplace):
    if len(arrays) != len(params):
        raise ValueError(
            f"{op}: '{name}' has {len(arrays)} entries, expected {len(params)} (one per parameter)"
        )
    out = []
    for i, (a, p) in enumerate(zip(arrays, params)):
        arg = f"{name}[{i}]"
        if not isinstance(a, _cp.ndarray):
            raise TypeError(f"{op}: argument '{arg}' must be a cupy array, got {type(a).__name__}")
        if a.dtype != p.dtype:
            raise TypeError(
                f"{op}: argument '{arg}' has dtype {a.dtype.name}, expected "
                f"{p.dtype.name} like params[{i}]"
            )
        if a.shape != p.shape:
            raise ValueError(
                f"{op}: argument '{arg}' has shape {tuple(a.shape)}, expected "
                f"{tuple(p.shape)} like params[{i}]"
            )
        if a.device.id != p.device.id:
            raise ValueError(
                f"{op}: argument '{arg}' is on cuda:{a.device.id}, params[{i}] on "
                f"cuda:{p.device.id}"
            )
        if inplace and not a.flags.c_contiguous:
            raise ValueError(f"{op}: argument '{arg}' must be C-contiguous (updated in place)")
        out.append(a if inplace else _contiguous(a))
    return out


def _check_params(op, params):
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, _cp.ndarray):
            raise TypeError(
                f"{op}: argument 'params[{i}]' must be a cupy array, got {type(p).__name__}"
            )
    if params:
        check_float(op, **{f"params[{i}]": p for i, p in enumerate(params)})
    return _check_list(op, "params", params, params, inplace=True)


def _ptrs(arrays):
    return [int(a.data.ptr) for a in arrays]


def sgd_step(
    params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov, maximize
):
    _load()
    op = "sgd_step"
    params = _check_params(op, params)
    grads = _check_list(op, "grads", list(grads), params, inplace=False)
    if not params:
        return
    n = len(params)
    bufs = [0] * n
    fresh = [False] * n
    if momentum != 0:
        if len(momentum_buffers) != n:
            raise ValueError(
                f"{op}: 'momentum_buffers' has {len(momentum_buffers)} entries, "
                f"expected {n} (one per parameter)"
            )
        for i, p in enumerate(params):
            if momentum_buffers[i] is None:  # first step: the kernel sets it to the gradient
                with p.device:
                    momentum_buffers[i] = _cp.empty_like(p)
                fresh[i] = True
        bufs = _ptrs(
            _check_list(op, "momentum_buffers", list(momentum_buffers), params, inplace=True)
        )
    with params[0].device:
        _cuda.sgd_step(
            _ptrs(params),
            _ptrs(grads),
            bufs,
            [int(p.size) for p in params],
            fresh,
            float(lr),
            float(momentum),
            float(dampening),
            float(weight_decay),
            bool(nesterov),
            bool(maximize),
            params[0].dtype.name,
            _stream(),
        )


def adam_step(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    decoupled,
):
    _load()
    op = "adam_step"
    params = _check_params(op, params)
    grads = _check_list(op, "grads", list(grads), params, inplace=False)
    m = _check_list(op, "exp_avgs", list(exp_avgs), params, inplace=True)
    v = _check_list(op, "exp_avg_sqs", list(exp_avg_sqs), params, inplace=True)
    vmax = []
    if amsgrad:
        if max_exp_avg_sqs is None:
            raise TypeError(f"{op}: 'max_exp_avg_sqs' must be a list when amsgrad=True")
        vmax = _check_list(op, "max_exp_avg_sqs", list(max_exp_avg_sqs), params, inplace=True)
    n = len(params)
    if isinstance(step, int):
        steps = [int(step)] * n
    else:
        steps = [int(s) for s in step]
        if len(steps) != n:
            raise ValueError(f"{op}: 'step' has {len(steps)} entries, expected {n}")
    if any(s < 1 for s in steps):
        raise ValueError(f"{op}: step must be >= 1, got {min(steps)}")
    if not params:
        return
    with params[0].device:
        _cuda.adam_step(
            _ptrs(params),
            _ptrs(grads),
            _ptrs(m),
            _ptrs(v),
            _ptrs(vmax),
            [int(p.size) for p in params],
            steps,
            float(lr),
            float(beta1),
            float(beta2),
            float(eps),
            float(weight_decay),
            bool(amsgrad),
            bool(decoupled),
            params[0].dtype.name,
            _stream(),
        )
