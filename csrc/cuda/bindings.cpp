// bindings.cpp: the pybind11 table of minigrad._cuda (compiled by the host C++ compiler; the
// kernels live in *.cu files compiled by nvcc).
//
// Entry points take device pointers as Python ints (CuPy's `a.data.ptr`), the element count n,
// a dtype name ("float32"/"float64") and a stream (CuPy's `get_current_stream().ptr`).  All
// arguments are validated here, on the host, before any CUDA call: n < 0 or a null pointer ->
// ValueError, an unknown dtype -> TypeError.  CUDA failures (including "no device" on a machine
// without a GPU) -> RuntimeError naming the kernel.  cudart is linked statically, so the module
// imports on machines without a GPU or driver; device_count() then returns 0.
// Beyond relu: im2col/col2im, max/avg pooling, the LSTM cell and fused SGD/Adam take shapes
// and window arguments too; the geometry is validated and OH/OW recomputed here exactly as
// csrc/cpu/{conv,pool}.cpp do, and every output shape the caller allocated must match it
// (ValueError otherwise).  Pointers must be non-null (when their buffer is non-empty) and
// aligned to the element size.  Buffers are C-contiguous: raw pointers carry no strides, so
// minigrad/kernels/cuda.py makes every input contiguous and allocates every output itself.
// Checked by: tests/test_kernels.py and tests/test_kernels_cuda.py (validation without a GPU;
// kernels under the `gpu` marker).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <vector>

#include "common.cuh"

namespace py = pybind11;
using minigrad::cuda::DType;

namespace {

DType parse_dtype(const char* op, const std::string& dtype) {
    if (dtype == "float32") return DType::Float32;
    if (dtype == "float64") return DType::Float64;
    throw py::type_error(std::string(op) + ": dtype '" + dtype +
                         "' is not supported, expected 'float32' or 'float64'");
}

void check_n(const char* op, std::int64_t n) {
    if (n < 0) {
        throw py::value_error(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
    }
}

void check_ptr(const char* op, const char* arg, std::uintptr_t ptr, std::int64_t n) {
    if (n > 0 && ptr == 0) {
        throw py::value_error(std::string(op) + ": argument '" + arg + "' is a null pointer with n=" +
                              std::to_string(n));
    }
}

int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device / no driver" error
        return 0;
    }
    return count;
}

std::string runtime_version() {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

using minigrad::cuda::Geom2d;
using Pair = std::array<std::int64_t, 2>;
using Shape = std::vector<std::int64_t>;

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (std::size_t i = 0; i < s.size(); ++i) {
        out += std::to_string(s[i]);
        if (i + 1 < s.size() || s.size() == 1) out += ", ";
    }
    if (s.size() == 1) out.pop_back();
    return out + ")";
}

std::string pair_str(const Pair& p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// ---- overflow-safe int64 arithmetic (issue 15): geometry arrives as Python ints, anything up
// to 2**63 - 1, and signed overflow in index math is undefined behaviour that ends as an
// out-of-bounds access on the GPU.  Every derived size is computed with these, which raise
// ValueError "op: <what> overflows int64" before any launch.  (The same rule as CheckedInt in
// csrc/cpu/common.h; _cuda does not include the CPU headers, so the three helpers are here.)
[[noreturn]] void overflow_error(const char* op, const std::string& what) {
    throw py::value_error(std::string(op) + ": " + what +
                          " overflows int64: the values are too large");
}

std::int64_t add_ck(const char* op, const char* what, std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r)) overflow_error(op, what);
    return r;
}

std::int64_t sub_ck(const char* op, const char* what, std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) overflow_error(op, what);
    return r;
}

std::int64_t mul_ck(const char* op, const char* what, std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) overflow_error(op, what);
    return r;
}

// Elements of a shape whose extents are >= 0 (checked by the caller); the byte size of a
// float64 buffer of that many elements must fit in int64 too (a zero extent makes it 0, but
// the other extents must still fit, as NumPy counts them).
std::int64_t numel(const char* op, const Shape& s) {
    std::int64_t nonzero = 8;  // bytes per element of the widest dtype
    bool empty = false;
    for (auto v : s) {
        if (v == 0) empty = true;
        else nonzero = mul_ck(op, ("the element count of " + shape_str(s)).c_str(), nonzero, v);
    }
    return empty ? 0 : nonzero / 8;
}

std::size_t elem_size(DType dt) { return dt == DType::Float32 ? 4 : 8; }

// Non-null when the buffer is non-empty, and aligned to its element size.
void check_buf(const char* op, const char* arg, std::uintptr_t ptr, std::int64_t count,
               std::size_t align) {
    check_ptr(op, arg, ptr, count);
    if (count > INT64_MAX / static_cast<std::int64_t>(align)) {
        overflow_error(op, std::string("the byte size of '") + arg + "'");
    }
    if (ptr % align != 0) {
        throw py::value_error(std::string(op) + ": argument '" + arg + "' (pointer " +
                              std::to_string(ptr) + ") is not aligned to " +
                              std::to_string(align) + " bytes");
    }
}

void check_shape4(const char* op, const char* arg, const Shape& s) {
    if (s.size() != 4) {
        throw py::value_error(std::string(op) + ": " + arg +
                              " must have 4 entries (N, C, H, W), got " + shape_str(s));
    }
    for (auto v : s) {
        if (v < 0) {
            throw py::value_error(std::string(op) + ": negative extent in " + arg + " " +
                                  shape_str(s));
        }
    }
}

void check_expected(const char* op, const char* arg, const Shape& got, const Shape& want) {
    if (got != want) {
        throw py::value_error(std::string(op) + ": " + arg + " is " + shape_str(got) +
                              ", expected " + shape_str(want));
    }
}

// size + 2*pad - dilation*(k - 1) - 1, every step checked (k >= 1, pad >= 0, dilation >= 1).
std::int64_t window_span(const char* op, std::int64_t size, std::int64_t k, std::int64_t pad,
                         std::int64_t dilation) {
    const char* what = "the window geometry (size + 2*padding - dilation*(kernel-1))";
    const std::int64_t padded = add_ck(op, what, size, mul_ck(op, what, 2, pad));
    return sub_ck(op, what, padded, add_ck(op, what, mul_ck(op, what, dilation, k - 1), 1));
}

// csrc/cpu/conv.cpp: conv_geometry (floor output size; the kernel must fit the padded input).
Geom2d conv_geometry(const char* op, const Shape& x_shape, std::int64_t KH, std::int64_t KW,
                     const Pair& stride, const Pair& padding, const Pair& dilation) {
    check_shape4(op, "x_shape", x_shape);
    if (KH < 1 || KW < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 ||
        dilation[1] < 1 || padding[0] < 0 || padding[1] < 0) {
        throw py::value_error(std::string(op) +
                              ": need kernel >= 1, stride >= 1, dilation >= 1 and padding >= 0,"
                              " got kernel (" + std::to_string(KH) + ", " + std::to_string(KW) +
                              "), stride " + pair_str(stride) + ", padding " + pair_str(padding) +
                              ", dilation " + pair_str(dilation));
    }
    Geom2d g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], KH, KW, 0, 0, stride[0], stride[1],
             padding[0], padding[1], dilation[0], dilation[1]};
    numel(op, x_shape);
    const std::int64_t span_h = window_span(op, g.H, KH, g.pH, g.dH);
    const std::int64_t span_w = window_span(op, g.W, KW, g.pW, g.dW);
    if (span_h < 0 || span_w < 0) {
        throw py::value_error(std::string(op) + ": kernel (" + std::to_string(KH) + ", " +
                              std::to_string(KW) + ") with dilation " + pair_str(dilation) +
                              " does not fit the padded input " + shape_str(x_shape) +
                              " with padding " + pair_str(padding));
    }
    g.OH = span_h / g.sH + 1;
    g.OW = span_w / g.sW + 1;
    return g;
}

std::int64_t pool_out(const char* op, std::int64_t size, std::int64_t k, std::int64_t s,
                      std::int64_t p, std::int64_t d, bool ceil_mode) {
    const std::int64_t span = window_span(op, size, k, p, d);
    if (span < 0) return 0;
    const char* what = "the pooling output size";
    std::int64_t out = add_ck(op, what, span, ceil_mode ? s - 1 : 0) / s + 1;
    // (out - 1) * s <= span + s - 1 fits (checked above); size + p fits (span does)
    if (ceil_mode && (out - 1) * s >= size + p) --out;
    return out;
}

// csrc/cpu/pool.cpp: pool_geometry (PyTorch's output-size rule, 0 <= padding <= kernel/2).
Geom2d pool_geometry(const char* op, const Shape& x_shape, const Pair& kernel, const Pair& stride,
                     const Pair& padding, const Pair& dilation, bool ceil_mode) {
    check_shape4(op, "x_shape", x_shape);
    if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 ||
        dilation[1] < 1 || padding[0] < 0 || padding[1] < 0 || padding[0] > kernel[0] / 2 ||
        padding[1] > kernel[1] / 2) {
        throw py::value_error(std::string(op) +
                              ": need kernel, stride, dilation >= 1 and 0 <= padding <= kernel/2,"
                              " got kernel " + pair_str(kernel) + ", stride " + pair_str(stride) +
                              ", padding " + pair_str(padding) + ", dilation " +
                              pair_str(dilation));
    }
    Geom2d g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], kernel[0], kernel[1], 0, 0,
             stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
    numel(op, x_shape);
    g.OH = pool_out(op, g.H, g.KH, g.sH, g.pH, g.dH, ceil_mode);
    g.OW = pool_out(op, g.W, g.KW, g.sW, g.pW, g.dW, ceil_mode);
    if (g.OH < 1 || g.OW < 1) {
        throw py::value_error(std::string(op) + ": output size (" + std::to_string(g.OH) + ", " +
                              std::to_string(g.OW) + ") is too small for input " +
                              shape_str(x_shape) + " with kernel " + pair_str(kernel));
    }
    return g;
}

std::int64_t divisor_of(const char* op, const std::optional<std::int64_t>& d) {
    if (d && *d <= 0) {  // PyTorch refuses 0 too (None means the window count rule)
        throw py::value_error(std::string(op) + ": divisor_override must be positive, got " +
                              std::to_string(*d));
    }
    return d ? *d : 0;  // 0 (or None): the window count rule
}

void check_len(const char* op, const char* name, std::size_t got, std::size_t want) {
    if (got != want) {
        throw py::value_error(std::string(op) + ": '" + name + "' has " + std::to_string(got) +
                              " entries, expected " + std::to_string(want) +
                              " (one per parameter)");
    }
}

std::string item(const char* name, std::size_t i) {
    return std::string(name) + "[" + std::to_string(i) + "]";
}

void check_lstm_sizes(const char* op, std::int64_t N, std::int64_t H) {
    if (N < 0 || H < 0) {
        throw py::value_error(std::string(op) + ": N and H must be >= 0, got N=" +
                              std::to_string(N) + ", H=" + std::to_string(H));
    }
    numel(op, {N, 4, H});  // the (N, 4H) buffers' byte size fits: 4*N*H below is safe
}

}  // namespace


void register_optim_host(py::module_& m);  // optim_host.cpp: host twins of the optimizer kernels

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "minigrad CUDA kernels: device pointers as ints, launched on the given stream.";
    register_optim_host(m);

    m.def(
        "relu_forward",
        [](std::uintptr_t x, std::uintptr_t y, std::int64_t n, const std::string& dtype,
           std::uintptr_t stream) {
            const char* op = "relu_forward";
            check_n(op, n);
            const DType dt = parse_dtype(op, dtype);
            check_buf(op, "x", x, n, elem_size(dt));
            check_buf(op, "y", y, n, elem_size(dt));
            py::gil_scoped_release nogil;
            minigrad::cuda::relu_forward(x, y, n, dt, stream);
        },
        py::arg("x_ptr"), py::arg("y_ptr"), py::arg("n"), py::arg("dtype"), py::arg("stream") = 0,
        "y = max(x, 0) over n contiguous elements.");
    m.def(
        "relu_backward",
        [](std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "relu_backward";
            check_n(op, n);
            const DType dt = parse_dtype(op, dtype);
            check_buf(op, "dy", dy, n, elem_size(dt));
            check_buf(op, "x", x, n, elem_size(dt));
            check_buf(op, "dx", dx, n, elem_size(dt));
            py::gil_scoped_release nogil;
            minigrad::cuda::relu_backward(dy, x, dx, n, dt, stream);
        },
        py::arg("dy_ptr"), py::arg("x_ptr"), py::arg("dx_ptr"), py::arg("n"), py::arg("dtype"),
        py::arg("stream") = 0, "dx = dy where x > 0 else 0 over n contiguous elements.");

    namespace cu = minigrad::cuda;

    // ------------------------------------------------------------------ im2col / col2im
    m.def(
        "im2col",
        [](std::uintptr_t x, const Shape& x_shape, std::uintptr_t cols, const Shape& cols_shape,
           std::int64_t KH, std::int64_t KW, const Pair& stride, const Pair& padding,
           const Pair& dilation, const std::string& dtype, std::uintptr_t stream) {
            const char* op = "im2col";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g = conv_geometry(op, x_shape, KH, KW, stride, padding, dilation);
            check_expected(op, "cols_shape", cols_shape, {g.N, g.C, g.KH, g.KW, g.OH, g.OW});
            check_buf(op, "x", x, numel(op, x_shape), elem_size(dt));
            check_buf(op, "cols", cols, numel(op, cols_shape), elem_size(dt));
            py::gil_scoped_release nogil;
            cu::im2col(x, cols, g, dt, stream);
        },
        py::arg("x_ptr"), py::arg("x_shape"), py::arg("cols_ptr"), py::arg("cols_shape"),
        py::arg("KH"), py::arg("KW"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("dtype"), py::arg("stream") = 0,
        "cols (N, C, KH, KW, OH, OW) <- windows of x (N, C, H, W); zero padding.");
    m.def(
        "col2im",
        [](std::uintptr_t cols, const Shape& cols_shape, std::uintptr_t dx, const Shape& x_shape,
           std::int64_t KH, std::int64_t KW, const Pair& stride, const Pair& padding,
           const Pair& dilation, const std::string& dtype, std::uintptr_t stream) {
            const char* op = "col2im";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g = conv_geometry(op, x_shape, KH, KW, stride, padding, dilation);
            check_expected(op, "cols_shape", cols_shape, {g.N, g.C, g.KH, g.KW, g.OH, g.OW});
            check_buf(op, "cols", cols, numel(op, cols_shape), elem_size(dt));
            check_buf(op, "dx", dx, numel(op, x_shape), elem_size(dt));
            py::gil_scoped_release nogil;
            cu::col2im(cols, dx, g, dt, stream);
        },
        py::arg("cols_ptr"), py::arg("cols_shape"), py::arg("dx_ptr"), py::arg("x_shape"),
        py::arg("KH"), py::arg("KW"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("dtype"), py::arg("stream") = 0,
        "dx (N, C, H, W) = adjoint of im2col (a deterministic gather, no atomics).");

    // ------------------------------------------------------------------ pooling
    m.def(
        "maxpool2d_forward",
        [](std::uintptr_t x, const Shape& x_shape, std::uintptr_t y, std::uintptr_t indices,
           const Shape& y_shape, const Pair& kernel, const Pair& stride, const Pair& padding,
           const Pair& dilation, bool ceil_mode, const std::string& dtype,
           std::uintptr_t stream) {
            const char* op = "maxpool2d_forward";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g =
                pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode);
            check_expected(op, "y_shape", y_shape, {g.N, g.C, g.OH, g.OW});
            check_buf(op, "x", x, numel(op, x_shape), elem_size(dt));
            check_buf(op, "y", y, numel(op, y_shape), elem_size(dt));
            check_buf(op, "indices", indices, numel(op, y_shape), 8);
            py::gil_scoped_release nogil;
            cu::maxpool2d_forward(x, y, indices, g, dt, stream);
        },
        py::arg("x_ptr"), py::arg("x_shape"), py::arg("y_ptr"), py::arg("indices_ptr"),
        py::arg("y_shape"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("dtype"), py::arg("stream") = 0,
        "y, indices (int64 h*W + w) <- max over each window of x (N, C, H, W).");
    m.def(
        "maxpool2d_backward",
        [](std::uintptr_t dy, std::uintptr_t indices, const Shape& dy_shape, std::uintptr_t dx,
           const Shape& x_shape, const Pair& kernel, const Pair& stride, const Pair& padding,
           const Pair& dilation, bool ceil_mode, const std::string& dtype,
           std::uintptr_t stream) {
            const char* op = "maxpool2d_backward";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g =
                pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode);
            check_expected(op, "dy_shape", dy_shape, {g.N, g.C, g.OH, g.OW});
            check_buf(op, "dy", dy, numel(op, dy_shape), elem_size(dt));
            check_buf(op, "indices", indices, numel(op, dy_shape), 8);
            check_buf(op, "dx", dx, numel(op, x_shape), elem_size(dt));
            py::gil_scoped_release nogil;
            cu::maxpool2d_backward(dy, indices, dx, g, dt, stream);
        },
        py::arg("dy_ptr"), py::arg("indices_ptr"), py::arg("dy_shape"), py::arg("dx_ptr"),
        py::arg("x_shape"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("dtype"), py::arg("stream") = 0,
        "dx = dy gathered at the max positions (deterministic, no atomics).");
    m.def(
        "avgpool2d_forward",
        [](std::uintptr_t x, const Shape& x_shape, std::uintptr_t y, const Shape& y_shape,
           const Pair& kernel, const Pair& stride, const Pair& padding, bool ceil_mode,
           bool count_include_pad, const std::optional<std::int64_t>& divisor_override,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "avgpool2d_forward";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, {1, 1},
                                           ceil_mode);
            const std::int64_t div = divisor_of(op, divisor_override);
            check_expected(op, "y_shape", y_shape, {g.N, g.C, g.OH, g.OW});
            check_buf(op, "x", x, numel(op, x_shape), elem_size(dt));
            check_buf(op, "y", y, numel(op, y_shape), elem_size(dt));
            py::gil_scoped_release nogil;
            cu::avgpool2d_forward(x, y, g, count_include_pad, div, dt, stream);
        },
        py::arg("x_ptr"), py::arg("x_shape"), py::arg("y_ptr"), py::arg("y_shape"),
        py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("dtype"),
        py::arg("stream") = 0, "y = window sum / divisor (PyTorch's avg_pool2d rule).");
    m.def(
        "avgpool2d_backward",
        [](std::uintptr_t dy, const Shape& dy_shape, std::uintptr_t dx, const Shape& x_shape,
           const Pair& kernel, const Pair& stride, const Pair& padding, bool ceil_mode,
           bool count_include_pad, const std::optional<std::int64_t>& divisor_override,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "avgpool2d_backward";
            const DType dt = parse_dtype(op, dtype);
            const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, {1, 1},
                                           ceil_mode);
            const std::int64_t div = divisor_of(op, divisor_override);
            check_expected(op, "dy_shape", dy_shape, {g.N, g.C, g.OH, g.OW});
            check_buf(op, "dy", dy, numel(op, dy_shape), elem_size(dt));
            check_buf(op, "dx", dx, numel(op, x_shape), elem_size(dt));
            py::gil_scoped_release nogil;
            cu::avgpool2d_backward(dy, dx, g, count_include_pad, div, dt, stream);
        },
        py::arg("dy_ptr"), py::arg("dy_shape"), py::arg("dx_ptr"), py::arg("x_shape"),
        py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("dtype"),
        py::arg("stream") = 0, "dx = dy / divisor gathered from every window over each pixel.");

    // ------------------------------------------------------------------ lstm_cell
    m.def(
        "lstm_cell_forward",
        [](std::uintptr_t gates, std::uintptr_t c_prev, std::uintptr_t h, std::uintptr_t c,
           std::uintptr_t act, std::uintptr_t tanh_c, std::int64_t N, std::int64_t H,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "lstm_cell_forward";
            check_lstm_sizes(op, N, H);
            const DType dt = parse_dtype(op, dtype);
            const std::size_t es = elem_size(dt);
            check_buf(op, "gates", gates, 4 * N * H, es);
            check_buf(op, "c_prev", c_prev, N * H, es);
            check_buf(op, "h", h, N * H, es);
            check_buf(op, "c", c, N * H, es);
            check_buf(op, "act", act, 4 * N * H, es);
            check_buf(op, "tanh_c", tanh_c, N * H, es);
            py::gil_scoped_release nogil;
            cu::lstm_cell_forward(gates, c_prev, h, c, act, tanh_c, N, H, dt, stream);
        },
        py::arg("gates_ptr"), py::arg("c_prev_ptr"), py::arg("h_ptr"), py::arg("c_ptr"),
        py::arg("act_ptr"), py::arg("tanh_c_ptr"), py::arg("N"), py::arg("H"), py::arg("dtype"),
        py::arg("stream") = 0, "h, c, act, tanh_c (N, H)/(N, 4H) <- gates (N, 4H), c_prev (N, H).");
    m.def(
        "lstm_cell_backward",
        [](std::uintptr_t dh, std::uintptr_t dc, std::uintptr_t c_prev, std::uintptr_t act,
           std::uintptr_t tanh_c, std::uintptr_t dgates, std::uintptr_t dc_prev, std::int64_t N,
           std::int64_t H, const std::string& dtype, std::uintptr_t stream) {
            const char* op = "lstm_cell_backward";
            check_lstm_sizes(op, N, H);
            const DType dt = parse_dtype(op, dtype);
            const std::size_t es = elem_size(dt);
            check_buf(op, "dh", dh, N * H, es);
            check_buf(op, "dc", dc, N * H, es);
            check_buf(op, "c_prev", c_prev, N * H, es);
            check_buf(op, "act", act, 4 * N * H, es);
            check_buf(op, "tanh_c", tanh_c, N * H, es);
            check_buf(op, "dgates", dgates, 4 * N * H, es);
            check_buf(op, "dc_prev", dc_prev, N * H, es);
            py::gil_scoped_release nogil;
            cu::lstm_cell_backward(dh, dc, c_prev, act, tanh_c, dgates, dc_prev, N, H, dt,
                                   stream);
        },
        py::arg("dh_ptr"), py::arg("dc_ptr"), py::arg("c_prev_ptr"), py::arg("act_ptr"),
        py::arg("tanh_c_ptr"), py::arg("dgates_ptr"), py::arg("dc_prev_ptr"), py::arg("N"),
        py::arg("H"), py::arg("dtype"), py::arg("stream") = 0,
        "dgates (N, 4H), dc_prev (N, H) <- dh, dc, c_prev, act, tanh_c.");

    // ------------------------------------------------------------------ optimizers
    m.def(
        "sgd_step",
        [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
           const std::vector<std::uintptr_t>& momentum_buffers,
           const std::vector<std::int64_t>& sizes, const std::vector<bool>& fresh, double lr,
           double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "sgd_step";
            const DType dt = parse_dtype(op, dtype);
            const std::size_t n = params.size(), es = elem_size(dt);
            check_len(op, "grads", grads.size(), n);
            check_len(op, "sizes", sizes.size(), n);
            const bool use_m = momentum != 0;
            if (use_m) {
                check_len(op, "momentum_buffers", momentum_buffers.size(), n);
                check_len(op, "fresh", fresh.size(), n);
            }
            std::vector<cu::SgdParam> table(n);
            for (std::size_t i = 0; i < n; ++i) {
                if (sizes[i] < 0) {
                    throw py::value_error(std::string(op) + ": sizes[" + std::to_string(i) +
                                          "] must be >= 0, got " + std::to_string(sizes[i]));
                }
                check_buf(op, item("params", i).c_str(), params[i], sizes[i], es);
                check_buf(op, item("grads", i).c_str(), grads[i], sizes[i], es);
                std::uintptr_t m_ptr = 0;
                if (use_m) {
                    m_ptr = momentum_buffers[i];
                    check_buf(op, item("momentum_buffers", i).c_str(), m_ptr, sizes[i], es);
                }
                table[i] = {params[i], grads[i], m_ptr, sizes[i], use_m && fresh[i]};
            }
            py::gil_scoped_release nogil;
            cu::sgd_step(table, lr, momentum, dampening, weight_decay, nesterov, maximize, dt,
                         stream);
        },
        py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("sizes"),
        py::arg("fresh"), py::arg("lr"), py::arg("momentum"), py::arg("dampening"),
        py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"), py::arg("dtype"),
        py::arg("stream") = 0,
        "In-place SGD over a parameter list (device pointers); one launch per 32 parameters.");
    m.def(
        "adam_step",
        [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
           const std::vector<std::uintptr_t>& exp_avgs,
           const std::vector<std::uintptr_t>& exp_avg_sqs,
           const std::vector<std::uintptr_t>& max_exp_avg_sqs,
           const std::vector<std::int64_t>& sizes, const std::vector<std::int64_t>& steps,
           double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
           bool decoupled, const std::string& dtype, std::uintptr_t stream) {
            const char* op = "adam_step";
            const DType dt = parse_dtype(op, dtype);
            const std::size_t n = params.size(), es = elem_size(dt);
            check_len(op, "grads", grads.size(), n);
            check_len(op, "exp_avgs", exp_avgs.size(), n);
            check_len(op, "exp_avg_sqs", exp_avg_sqs.size(), n);
            check_len(op, "sizes", sizes.size(), n);
            check_len(op, "steps", steps.size(), n);
            if (amsgrad) check_len(op, "max_exp_avg_sqs", max_exp_avg_sqs.size(), n);
            std::vector<cu::AdamParam> table(n);
            for (std::size_t i = 0; i < n; ++i) {
                if (sizes[i] < 0) {
                    throw py::value_error(std::string(op) + ": sizes[" + std::to_string(i) +
                                          "] must be >= 0, got " + std::to_string(sizes[i]));
                }
                if (steps[i] < 1) {
                    throw py::value_error(std::string(op) + ": step must be >= 1, got " +
                                          std::to_string(steps[i]));
                }
                check_buf(op, item("params", i).c_str(), params[i], sizes[i], es);
                check_buf(op, item("grads", i).c_str(), grads[i], sizes[i], es);
                check_buf(op, item("exp_avgs", i).c_str(), exp_avgs[i], sizes[i], es);
                check_buf(op, item("exp_avg_sqs", i).c_str(), exp_avg_sqs[i], sizes[i], es);
                std::uintptr_t vmax = 0;
                if (amsgrad) {
                    vmax = max_exp_avg_sqs[i];
                    check_buf(op, item("max_exp_avg_sqs", i).c_str(), vmax, sizes[i], es);
                }
                table[i] = {params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, sizes[i],
                            steps[i]};
            }
            py::gil_scoped_release nogil;
            cu::adam_step(table, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, dt,
                          stream);
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
        py::arg("max_exp_avg_sqs"), py::arg("sizes"), py::arg("steps"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("amsgrad"), py::arg("decoupled"), py::arg("dtype"), py::arg("stream") = 0,
        "In-place Adam/AdamW over a parameter list (device pointers); one launch per 32 "
        "parameters.");

    m.def("device_count", &device_count, "CUDA devices visible (0 without a GPU or driver).");
    m.def("runtime_version", &runtime_version, "CUDA runtime version this module was built with.");
}
