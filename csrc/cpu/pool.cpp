// pool.cpp: 2-D max and average pooling, forward and backward, float32 and float64, NCHW.
//
//   maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode) -> (y, indices)
//       x (N, C, H, W) -> y (N, C, OH, OW), indices int64 (N, C, OH, OW) = h*W + w of the max
//       in its (n, c) plane; ties go to the first max in row-major window order, a NaN wins.
//   maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode) -> dx
//       dx[n, c].flat[indices[n, c, oh, ow]] += dy[n, c, oh, ow]
//   avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad,
//                     divisor_override) -> y         window sum / divisor (PyTorch's rule)
//   avgpool2d_backward(dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
//                      divisor_override) -> dx      dy / divisor spread over each window
//
// OH follows PyTorch (minigrad/kernels/reference.py: pool_output_size): floor or ceil of
// (H + 2p - d(k-1) - 1)/s + 1, and with ceil_mode the last window must start inside the input
// or its left padding (window_out_size in common.h, overflow-checked: ValueError when an index
// would not fit in int64).  Padding never wins a max and adds zeros to an average.
// divisor_override must be None or positive (0 is refused, as PyTorch does).
// Algorithm: one task per (n, c) plane, OpenMP over planes with the GIL released; each plane is
// read once and written once.  Backward accumulates each plane serially in a fixed order, so
// results do not depend on the thread count.  Out-of-range indices are reported as ValueError
// after the parallel region (never written).
// Checked by: tests/test_kernels.py against minigrad/kernels/reference.py on random shapes with
// odd kernel/stride/padding/dilation and ceil_mode, both dtypes, thread counts 1 vs 2, and with
// invalid arguments; tests/test_ops.py runs the pooling ops' PyTorch battery on this variant.
#include <pybind11/stl.h>

#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <optional>

#include "common.h"

namespace minigrad {

using Pair = std::array<std::int64_t, 2>;

namespace {

struct PoolGeom {
    std::int64_t N, C, H, W, KH, KW, OH, OW, sH, sW, pH, pW, dH, dW;
};

std::string pair_str(const Pair& p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

PoolGeom pool_geometry(const char* op, const std::vector<py::ssize_t>& x_shape,
                       const Pair& kernel, const Pair& stride, const Pair& padding,
                       const Pair& dilation, bool ceil_mode) {
    if (x_shape.size() != 4) {
        throw py::value_error(std::string(op) + ": expected a 4-D input (N, C, H, W), got shape " +
                              shape_str(x_shape));
    }
    for (auto v : x_shape) {
        if (v < 0) throw py::value_error(std::string(op) + ": negative extent in x_shape " +
                                         shape_str(x_shape));
    }
    shape_elements(op, "x_shape", std::vector<std::int64_t>(x_shape.begin(), x_shape.end()));
    if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 ||
        dilation[1] < 1 || padding[0] < 0 || padding[1] < 0 || padding[0] > kernel[0] / 2 ||
        padding[1] > kernel[1] / 2) {  // p <= k/2 without computing 2p (it may overflow)
        throw py::value_error(std::string(op) +
                              ": need kernel, stride, dilation >= 1 and 0 <= padding <= kernel/2,"
                              " got kernel " + pair_str(kernel) + ", stride " + pair_str(stride) +
                              ", padding " + pair_str(padding) + ", dilation " +
                              pair_str(dilation));
    }
    PoolGeom g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], kernel[0], kernel[1], 0, 0,
               stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
    // overflow-checked (common.h): every index the kernels derive below fits in int64
    g.OH = std::max<std::int64_t>(window_out_size(op, "H", g.H, g.KH, g.sH, g.pH, g.dH, ceil_mode),
                                  0);
    g.OW = std::max<std::int64_t>(window_out_size(op, "W", g.W, g.KW, g.sW, g.pW, g.dW, ceil_mode),
                                  0);
    if (g.OH < 1 || g.OW < 1) {
        throw py::value_error(std::string(op) + ": output size (" + std::to_string(g.OH) + ", " +
                              std::to_string(g.OW) + ") is too small for input " +
                              shape_str(x_shape) + " with kernel " + pair_str(kernel));
    }
    return g;
}

inline std::int64_t plane_grain(const CheckedInt& plane_work) {
    return std::max<std::int64_t>(
        1, kElementwiseGrain / std::max<std::int64_t>(plane_work.saturated(), 1));
}

// ----------------------------------------------------------------------------- max pooling
template <typename T>
void maxpool_forward_impl(const T* x, T* y, std::int64_t* ind, const PoolGeom& g) {
    const std::int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
    parallel_for(g.N * g.C, plane_grain(CheckedInt(OHW) * g.KH * g.KW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            const T* xp = x + plane * HW;
            T* yp = y + plane * OHW;
            std::int64_t* ip = ind + plane * OHW;
            for (std::int64_t oh = 0; oh < g.OH; ++oh) {
                const std::int64_t h0 = oh * g.sH - g.pH;
                for (std::int64_t ow = 0; ow < g.OW; ++ow) {
                    const std::int64_t w0 = ow * g.sW - g.pW;
                    // the window's in-bounds rows/columns, so the inner loops never test bounds
                    const std::int64_t kh0 = h0 < 0 ? (-h0 + g.dH - 1) / g.dH : 0;
                    const std::int64_t kh1 = std::min(g.KH, (g.H - h0 + g.dH - 1) / g.dH);
                    const std::int64_t kw0 = w0 < 0 ? (-w0 + g.dW - 1) / g.dW : 0;
                    const std::int64_t kw1 = std::min(g.KW, (g.W - w0 + g.dW - 1) / g.dW);
                    T best = -std::numeric_limits<T>::infinity();
                    std::int64_t best_i = -1;
                    for (std::int64_t kh = kh0; kh < kh1; ++kh) {
                        const std::int64_t row = (h0 + kh * g.dH) * g.W;
                        for (std::int64_t kw = kw0; kw < kw1; ++kw) {
                            const std::int64_t at = row + w0 + kw * g.dW;
                            const T v = xp[at];
                            // first max wins; a NaN wins and then stays (NumPy argmax, torch)
                            if (best_i < 0 || v > best || (v != v && best == best)) {
                                best = v;
                                best_i = at;
                            }
                        }
                    }
                    yp[oh * g.OW + ow] = best;
                    ip[oh * g.OW + ow] = best_i < 0 ? 0 : best_i;
                }
            }
        }
    });
}

// Returns false when an index is outside [0, H*W) (nothing is written for it).
template <typename T>
bool maxpool_backward_impl(const T* dy, const std::int64_t* ind, T* dx, std::int64_t N,
                           std::int64_t C, std::int64_t HW, std::int64_t OHW) {
    std::atomic<bool> ok{true};
    parallel_for(N * C, plane_grain(CheckedInt(OHW) + HW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            T* dp = dx + plane * HW;
            const T* gp = dy + plane * OHW;
            const std::int64_t* ip = ind + plane * OHW;
            std::fill(dp, dp + HW, T(0));
            for (std::int64_t i = 0; i < OHW; ++i) {
                const std::int64_t k = load_once(ip + i);  // checked and used: one read
                if (k < 0 || k >= HW) {
                    ok.store(false, std::memory_order_relaxed);
                    continue;
                }
                dp[k] += gp[i];
            }
        }
    });
    return ok.load();
}

// ----------------------------------------------------------------------------- average pooling
// Window [start, end) along one dim and its divisor count, PyTorch's avg_pool2d rule.
struct Span {
    std::int64_t lo, hi, count;
};

inline Span avg_span(std::int64_t o, std::int64_t size, std::int64_t k, std::int64_t s,
                     std::int64_t p, bool count_include_pad) {
    std::int64_t start = o * s - p;
    std::int64_t end = std::min(start + k, size + p);
    const std::int64_t padded = end - start;
    start = std::max<std::int64_t>(start, 0);
    end = std::min(end, size);
    return {start, end, count_include_pad ? padded : end - start};
}

template <typename T>
void avgpool_forward_impl(const T* x, T* y, const PoolGeom& g, bool cip, std::int64_t divisor) {
    const std::int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
    parallel_for(g.N * g.C, plane_grain(CheckedInt(OHW) * g.KH * g.KW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            const T* xp = x + plane * HW;
            T* yp = y + plane * OHW;
            for (std::int64_t oh = 0; oh < g.OH; ++oh) {
                const Span sh = avg_span(oh, g.H, g.KH, g.sH, g.pH, cip);
                for (std::int64_t ow = 0; ow < g.OW; ++ow) {
                    const Span sw = avg_span(ow, g.W, g.KW, g.sW, g.pW, cip);
                    T sum = 0;
                    for (std::int64_t ih = sh.lo; ih < sh.hi; ++ih)
                        for (std::int64_t iw = sw.lo; iw < sw.hi; ++iw) sum += xp[ih * g.W + iw];
                    const T div = divisor ? T(divisor) : T(double(sh.count) * double(sw.count));
                    yp[oh * g.OW + ow] = sum / div;
                }
            }
        }
    });
}

template <typename T>
void avgpool_backward_impl(const T* dy, T* dx, const PoolGeom& g, bool cip,
                           std::int64_t divisor) {
    const std::int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
    parallel_for(g.N * g.C, plane_grain(CheckedInt(OHW) * g.KH * g.KW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            T* dp = dx + plane * HW;
            const T* gp = dy + plane * OHW;
            std::fill(dp, dp + HW, T(0));
            for (std::int64_t oh = 0; oh < g.OH; ++oh) {
                const Span sh = avg_span(oh, g.H, g.KH, g.sH, g.pH, cip);
                for (std::int64_t ow = 0; ow < g.OW; ++ow) {
                    const Span sw = avg_span(ow, g.W, g.KW, g.sW, g.pW, cip);
                    const T div = divisor ? T(divisor) : T(double(sh.count) * double(sw.count));
                    const T v = gp[oh * g.OW + ow] / div;
                    for (std::int64_t ih = sh.lo; ih < sh.hi; ++ih)
                        for (std::int64_t iw = sw.lo; iw < sw.hi; ++iw) dp[ih * g.W + iw] += v;
                }
            }
        }
    });
}

// Checks dy (N, C, OH, OW) against the geometry from x_shape.
void check_dy(const char* op, const py::array& dy, const PoolGeom& g) {
    check_shape(op, "dy", dy, {g.N, g.C, g.OH, g.OW});
    check_contiguous(op, "dy", dy);
}

std::int64_t divisor_of(const char* op, const std::optional<std::int64_t>& d) {
    if (d && *d <= 0) {  // PyTorch: "divisor must be not zero"; a negative one is refused too
        throw py::value_error(std::string(op) + ": divisor_override must be positive or None, "
                              "got " + std::to_string(*d));
    }
    return d ? *d : 0;  // None: the window count
}

}  // namespace

py::tuple maxpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding, const Pair& dilation, bool ceil_mode) {
    const char* op = "maxpool2d_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "x", x);
    const PoolGeom g = pool_geometry(op, shape_of(x), kernel, stride, padding, dilation,
                                     ceil_mode);
    const std::vector<py::ssize_t> out_shape{g.N, g.C, g.OH, g.OW};
    py::array_t<std::int64_t> ind(out_shape);
    std::int64_t* ip = ind.mutable_data();
    if (dt == DType::Float32) {
        auto xa = py::array_t<float, py::array::c_style>::ensure(x);
        py::array_t<float> y(out_shape);
        const float* xp = xa.data();
        float* yp = y.mutable_data();
        {
            py::gil_scoped_release nogil;
            maxpool_forward_impl<float>(xp, yp, ip, g);
        }
        return py::make_tuple(y, ind);
    }
    auto xa = py::array_t<double, py::array::c_style>::ensure(x);
    py::array_t<double> y(out_shape);
    const double* xp = xa.data();
    double* yp = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        maxpool_forward_impl<double>(xp, yp, ip, g);
    }
    return py::make_tuple(y, ind);
}

py::array maxpool2d_backward(const py::array& dy, const py::array& indices,
                             const std::vector<py::ssize_t>& x_shape, const Pair& kernel,
                             const Pair& stride, const Pair& padding, const Pair& dilation,
                             bool ceil_mode) {
    const char* op = "maxpool2d_backward";
    const DType dt = check_float_dtype(op, "dy", dy);
    const PoolGeom g = pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode);
    check_dy(op, dy, g);
    if (!indices.dtype().is(py::dtype::of<std::int64_t>())) {
        throw py::type_error(where(op, "indices") + "has dtype " + dtype_str(indices) +
                             ", expected int64");
    }
    check_same_shape(op, "dy", dy, "indices", indices);
    check_contiguous(op, "indices", indices);
    auto ia = py::array_t<std::int64_t, py::array::c_style>::ensure(indices);
    const std::int64_t* ip = ia.data();
    const std::int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
    bool ok;
    py::array out;
    if (dt == DType::Float32) {
        auto da = py::array_t<float, py::array::c_style>::ensure(dy);
        py::array_t<float> dx(x_shape);
        const float* dp = da.data();
        float* xp = dx.mutable_data();
        {
            py::gil_scoped_release nogil;
            ok = maxpool_backward_impl<float>(dp, ip, xp, g.N, g.C, HW, OHW);
        }
        out = dx;
    } else {
        auto da = py::array_t<double, py::array::c_style>::ensure(dy);
        py::array_t<double> dx(x_shape);
        const double* dp = da.data();
        double* xp = dx.mutable_data();
        {
            py::gil_scoped_release nogil;
            ok = maxpool_backward_impl<double>(dp, ip, xp, g.N, g.C, HW, OHW);
        }
        out = dx;
    }
    if (!ok) {
        throw py::value_error(std::string(op) + ": argument 'indices' has entries outside [0, " +
                              std::to_string(HW) + ") for x_shape " + shape_str(x_shape));
    }
    return out;
}

py::array avgpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding, bool ceil_mode, bool count_include_pad,
                            const std::optional<std::int64_t>& divisor_override) {
    const char* op = "avgpool2d_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "x", x);
    const PoolGeom g = pool_geometry(op, shape_of(x), kernel, stride, padding, {1, 1},
                                     ceil_mode);
    const std::int64_t div = divisor_of(op, divisor_override);
    const std::vector<py::ssize_t> out_shape{g.N, g.C, g.OH, g.OW};
    if (dt == DType::Float32) {
        auto xa = py::array_t<float, py::array::c_style>::ensure(x);
        py::array_t<float> y(out_shape);
        const float* xp = xa.data();
        float* yp = y.mutable_data();
        {
            py::gil_scoped_release nogil;
            avgpool_forward_impl<float>(xp, yp, g, count_include_pad, div);
        }
        return y;
    }
    auto xa = py::array_t<double, py::array::c_style>::ensure(x);
    py::array_t<double> y(out_shape);
    const double* xp = xa.data();
    double* yp = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        avgpool_forward_impl<double>(xp, yp, g, count_include_pad, div);
    }
    return y;
}

py::array avgpool2d_backward(const py::array& dy, const std::vector<py::ssize_t>& x_shape,
                             const Pair& kernel, const Pair& stride, const Pair& padding,
                             bool ceil_mode, bool count_include_pad,
                             const std::optional<std::int64_t>& divisor_override) {
    const char* op = "avgpool2d_backward";
    const DType dt = check_float_dtype(op, "dy", dy);
    const PoolGeom g = pool_geometry(op, x_shape, kernel, stride, padding, {1, 1}, ceil_mode);
    check_dy(op, dy, g);
    const std::int64_t div = divisor_of(op, divisor_override);
    if (dt == DType::Float32) {
        auto da = py::array_t<float, py::array::c_style>::ensure(dy);
        py::array_t<float> dx(x_shape);
        const float* dp = da.data();
        float* xp = dx.mutable_data();
        {
            py::gil_scoped_release nogil;
            avgpool_backward_impl<float>(dp, xp, g, count_include_pad, div);
        }
        return dx;
    }
    auto da = py::array_t<double, py::array::c_style>::ensure(dy);
    py::array_t<double> dx(x_shape);
    const double* dp = da.data();
    double* xp = dx.mutable_data();
    {
        py::gil_scoped_release nogil;
        avgpool_backward_impl<double>(dp, xp, g, count_include_pad, div);
    }
    return dx;
}

}  // namespace minigrad
