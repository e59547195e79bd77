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
// or its left padding (pool_geometry in csrc/common/geometry.h, shared with _cuda,
// overflow-checked: ValueError when an index would not fit in int64).  Padding never wins a max and adds zeros to an average.
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
#include <type_traits>

#include "common.h"

namespace minigrad {

namespace {

// The geometry (PoolGeom) is validated and computed by pool_geometry (csrc/common/geometry.h),
// the same function the host side of minigrad._cuda calls.
using PoolGeom = Geom2d;

inline std::int64_t plane_grain(const CheckedInt& plane_work) {
    return std::max<std::int64_t>(
        1, kElementwiseGrain / std::max<std::int64_t>(plane_work.saturated(), 1));
}

// ----------------------------------------------------------------------------- max pooling
// In-bounds taps [lo, hi) of every output position along one dim: computed once per call
// (integer divisions), not once per output.
struct TapRange {
    std::int64_t lo, hi;
};

inline std::vector<TapRange> tap_ranges(std::int64_t out, std::int64_t size, std::int64_t k,
                                        std::int64_t s, std::int64_t p, std::int64_t d) {
    std::vector<TapRange> r(static_cast<std::size_t>(out));
    for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t start = o * s - p;
        r[o].lo = start < 0 ? (-start + d - 1) / d : 0;
        r[o].hi = std::min(k, (size - start + d - 1) / d);
    }
    return r;
}

// One output row: the taps are the outer loop and the output columns the inner one, so the
// compare-and-select runs over a row of independent outputs (branch-free and vectorisable)
// instead of a data-dependent branch per tap.  Taps go in row-major window order and only a
// strictly greater value (or the first NaN) replaces the best, so ties keep the first max.
template <typename T>
MG_ALWAYS_INLINE void max_row_update(const T* xr, std::int64_t at0, std::int64_t sW,
                                     std::int64_t n, T* best, std::int64_t* bi) {
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t at = at0 + j * sW;
        const T v = xr[at];
        const T b = best[j];
        const bool take = (v > b) | ((v != v) & (b == b));
        // selects written as bit masks: GCC turns `take ? v : b` back into a branch here,
        // and random data mispredicts it half the time
        using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        const Bits m = Bits(0) - static_cast<Bits>(take);
        Bits vb, bb;
        std::memcpy(&vb, &v, sizeof v);
        std::memcpy(&bb, &b, sizeof b);
        const Bits rb = (vb & m) | (bb & ~m);
        std::memcpy(&best[j], &rb, sizeof rb);
        const std::int64_t im = -static_cast<std::int64_t>(take);
        bi[j] = (at & im) | (bi[j] & ~im);
    }
}

template <typename T>
void maxpool_forward_impl(const T* x, T* y, std::int64_t* ind, const PoolGeom& g) {
    const std::int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
    const std::vector<TapRange> rh = tap_ranges(g.OH, g.H, g.KH, g.sH, g.pH, g.dH);
    const std::vector<TapRange> rw = tap_ranges(g.OW, g.W, g.KW, g.sW, g.pW, g.dW);
    // output columns whose windows lie fully inside the input: [in_lo, in_hi)
    std::int64_t in_lo = 0, in_hi = 0;
    while (in_lo < g.OW && !(rw[in_lo].lo == 0 && rw[in_lo].hi == g.KW)) ++in_lo;
    in_hi = in_lo;
    while (in_hi < g.OW && rw[in_hi].lo == 0 && rw[in_hi].hi == g.KW) ++in_hi;
    parallel_for(g.N * g.C, plane_grain(CheckedInt(OHW) * g.KH * g.KW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            const T* xp = x + plane * HW;
            T* yp = y + plane * OHW;
            std::int64_t* ip = ind + plane * OHW;
            for (std::int64_t oh = 0; oh < g.OH; ++oh) {
                const std::int64_t h0 = oh * g.sH - g.pH;
                const std::int64_t kh0 = rh[oh].lo, kh1 = rh[oh].hi;
                T* yr = yp + oh * g.OW;
                std::int64_t* ir = ip + oh * g.OW;
                for (std::int64_t ow = 0; ow < g.OW; ++ow) {
                    if (ow == in_lo && kh0 < kh1 && in_hi > in_lo) {  // the interior run
                        const std::int64_t n = in_hi - in_lo;
                        const std::int64_t w0 = in_lo * g.sW - g.pW;
                        const std::int64_t row0 = (h0 + kh0 * g.dH) * g.W + w0;
                        for (std::int64_t j = 0; j < n; ++j) {  // the first tap
                            yr[in_lo + j] = xp[row0 + j * g.sW];
                            ir[in_lo + j] = row0 + j * g.sW;
                        }
                        for (std::int64_t kh = kh0; kh < kh1; ++kh) {
                            const std::int64_t row = (h0 + kh * g.dH) * g.W + w0;
                            for (std::int64_t kw = (kh == kh0 ? 1 : 0); kw < g.KW; ++kw)
                                max_row_update(xp, row + kw * g.dW, g.sW, n, yr + in_lo,
                                               ir + in_lo);
                        }
                        ow = in_hi - 1;
                        continue;
                    }
                    const std::int64_t w0 = ow * g.sW - g.pW;
                    const std::int64_t kw0 = rw[ow].lo, kw1 = rw[ow].hi;
                    if (kh0 >= kh1 || kw0 >= kw1) {  // no tap inside the input
                        yr[ow] = -std::numeric_limits<T>::infinity();
                        ir[ow] = 0;
                        continue;
                    }
                    std::int64_t best_i = (h0 + kh0 * g.dH) * g.W + w0 + kw0 * g.dW;
                    T best = xp[best_i];
                    for (std::int64_t kh = kh0; kh < kh1; ++kh) {
                        const std::int64_t row = (h0 + kh * g.dH) * g.W;
                        for (std::int64_t kw = kw0; kw < kw1; ++kw) {
                            const std::int64_t at = row + w0 + kw * g.dW;
                            const T v = xp[at];
                            // first max wins; a NaN wins and then stays (NumPy argmax, torch)
                            if (v > best || (v != v && best == best)) {
                                best = v;
                                best_i = at;
                            }
                        }
                    }
                    yr[ow] = best;
                    ir[ow] = best_i;
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

}  // namespace

py::tuple maxpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding, const Pair& dilation, bool ceil_mode) {
    const char* op = "maxpool2d_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "x", x);
    const auto xs = shape_of(x);
    const PoolGeom g = pool_geometry(op, Shape(xs.begin(), xs.end()), kernel, stride, padding,
                                     dilation, ceil_mode);
    const std::vector<py::ssize_t> out_shape{g.N, g.C, g.OH, g.OW};
    py::array_t<std::int64_t> ind(out_shape);
    std::int64_t* ip = ind.mutable_data();
    return dispatch_float(dt, [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto xa = py::array_t<T, py::array::c_style>::ensure(x);
        py::array_t<T> y(out_shape);
        const T* xp = xa.data();
        T* yp = y.mutable_data();
        {
            py::gil_scoped_release nogil;
            maxpool_forward_impl<T>(xp, yp, ip, g);
        }
        return py::make_tuple(y, ind);
    });
}

py::array maxpool2d_backward(const py::array& dy, const py::array& indices,
                             const std::vector<py::ssize_t>& x_shape, const Pair& kernel,
                             const Pair& stride, const Pair& padding, const Pair& dilation,
                             bool ceil_mode) {
    const char* op = "maxpool2d_backward";
    const DType dt = check_float_dtype(op, "dy", dy);
    const PoolGeom g = pool_geometry(op, Shape(x_shape.begin(), x_shape.end()), kernel, stride,
                                     padding, dilation, ceil_mode);
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
    bool ok = true;
    py::array out = dispatch_float(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto da = py::array_t<T, py::array::c_style>::ensure(dy);
        py::array_t<T> dx(x_shape);
        const T* dp = da.data();
        T* xp = dx.mutable_data();
        {
            py::gil_scoped_release nogil;
            ok = maxpool_backward_impl<T>(dp, ip, xp, g.N, g.C, HW, OHW);
        }
        return dx;
    });
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
    const auto xs = shape_of(x);
    const PoolGeom g = pool_geometry(op, Shape(xs.begin(), xs.end()), kernel, stride, padding,
                                     {1, 1}, ceil_mode);
    const std::int64_t div = divisor_of(op, divisor_override);
    const std::vector<py::ssize_t> out_shape{g.N, g.C, g.OH, g.OW};
    return dispatch_float(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto xa = py::array_t<T, py::array::c_style>::ensure(x);
        py::array_t<T> y(out_shape);
        const T* xp = xa.data();
        T* yp = y.mutable_data();
        {
            py::gil_scoped_release nogil;
            avgpool_forward_impl<T>(xp, yp, g, count_include_pad, div);
        }
        return y;
    });
}

py::array avgpool2d_backward(const py::array& dy, const std::vector<py::ssize_t>& x_shape,
                             const Pair& kernel, const Pair& stride, const Pair& padding,
                             bool ceil_mode, bool count_include_pad,
                             const std::optional<std::int64_t>& divisor_override) {
    const char* op = "avgpool2d_backward";
    const DType dt = check_float_dtype(op, "dy", dy);
    const PoolGeom g = pool_geometry(op, Shape(x_shape.begin(), x_shape.end()), kernel, stride,
                                     padding, {1, 1}, ceil_mode);
    check_dy(op, dy, g);
    const std::int64_t div = divisor_of(op, divisor_override);
    return dispatch_float(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto da = py::array_t<T, py::array::c_style>::ensure(dy);
        py::array_t<T> dx(x_shape);
        const T* dp = da.data();
        T* xp = dx.mutable_data();
        {
            py::gil_scoped_release nogil;
            avgpool_backward_impl<T>(dp, xp, g, count_include_pad, div);
        }
        return dx;
    });
}

}  // namespace minigrad
