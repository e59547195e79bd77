// conv.cpp: im2col and col2im, the memory-bound halves of conv2d, float32 and float64.
//
//   im2col(x, KH, KW, stride, padding, dilation) -> cols
//       x (N, C, H, W) -> cols (N, C, KH, KW, OH, OW),
//       cols[n, c, kh, kw, oh, ow] = x[n, c, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW] (0 outside)
//   col2im(cols, x_shape, KH, KW, stride, padding, dilation) -> dx (N, C, H, W)
//       the adjoint: every cols entry is added back to the pixel im2col read it from.
//   im2col_folded / col2im_folded: the same with cols laid out (C, KH, KW, N, OH, OW), i.e. a
//       (C*KH*KW, N*OH*OW) matrix with the batch folded into the columns, so conv2d is ONE
//       GEMM over the whole batch (weight (O, C*KH*KW) @ cols) instead of N small ones.
//
// OH = (H + 2*pH - dH*(KH-1) - 1) / sH + 1 (floor), likewise OW, computed overflow-checked by
// window_out_size (common.h), which also proves every index below fits in int64 (ValueError
// otherwise: a stride of 2**63-1 once wrapped valid_range and wrote before the output).  The matmul of conv2d stays in
// BLAS through NumPy (minigrad/kernels/cpp.py); only the unfold/fold are here.
// Algorithm: one task per (n, c) plane, OpenMP over planes with the GIL released.  For each
// (kh, kw, oh) row the range of ow that lands inside the input is computed once, so the inner
// loop is a branch-free strided copy (a contiguous one when sW == 1).  col2im accumulates each
// plane serially in a fixed order, so results do not depend on the thread count.
// Checked by: tests/test_kernels.py against minigrad/kernels/reference.py (im2col/col2im) on
// random shapes with size-1 and prime extents, odd strides/padding/dilation, both dtypes,
// OMP_NUM_THREADS=1 vs 2, and with invalid arguments; tests/test_native_safety.py and
// tests/fuzz_native.py with extreme geometry (also under ASan/UBSan: .ci/sanitize).
#include <pybind11/stl.h>

#include <array>
#include <cstring>

#include "common.h"

namespace minigrad {

using Pair = std::array<std::int64_t, 2>;

namespace {

// The geometry and its checks are csrc/common's (shared with _cuda): conv_geometry validates
// the window arguments and returns the full geometry (ValueError naming op and x).
using ConvGeom = Geom2d;

// First and one-past-last output index o with 0 <= o*s - p + k*d < size.
inline void valid_range(std::int64_t size, std::int64_t out, std::int64_t s, std::int64_t p,
                        std::int64_t off, std::int64_t& lo, std::int64_t& hi) {
    // off = k*d - p; need o*s + off >= 0 and o*s + off <= size - 1
    lo = off >= 0 ? 0 : (-off + s - 1) / s;
    const std::int64_t last = size - 1 - off;
    hi = last < 0 ? 0 : std::min(out, last / s + 1);
    lo = std::min(lo, hi);
}

// Items of work per OpenMP chunk (~32K elements), expressed in planes.
inline std::int64_t plane_grain(std::int64_t plane_work) {
    return std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(plane_work, 1));
}

// Where the (OH, OW) block of (plane = n*C + c, kh, kw) starts in cols: (N, C, KH, KW, OH, OW)
// or, folded, (C, KH, KW, N, OH, OW) (the batch inside the GEMM's columns).
inline std::int64_t block_offset(const ConvGeom& g, std::int64_t plane, std::int64_t kh,
                                 std::int64_t kw, bool folded) {
    const std::int64_t P = g.OH * g.OW;
    if (!folded) return ((plane * g.KH + kh) * g.KW + kw) * P;
    const std::int64_t n = plane / g.C, c = plane % g.C;
    return (((c * g.KH + kh) * g.KW + kw) * g.N + n) * P;
}

// The OH x OW block of window offset (kh, kw) of one input plane xp, written to cp.
template <typename T>
inline void im2col_block(const T* xp, T* cp, const ConvGeom& g, std::int64_t kh,
                         std::int64_t kw) {
    std::int64_t ow_lo, ow_hi;
    const std::int64_t w_off = kw * g.dW - g.pW;
    valid_range(g.W, g.OW, g.sW, g.pW, w_off, ow_lo, ow_hi);
    for (std::int64_t oh = 0; oh < g.OH; ++oh, cp += g.OW) {
        const std::int64_t ih = oh * g.sH - g.pH + kh * g.dH;
        if (ih < 0 || ih >= g.H) {
            std::fill(cp, cp + g.OW, T(0));
            continue;
        }
        std::fill(cp, cp + ow_lo, T(0));
        std::fill(cp + ow_hi, cp + g.OW, T(0));
        if (ow_lo == ow_hi) continue;
        // x[ih, ow*sW + w_off] for ow in [ow_lo, ow_hi): an index, not a pointer
        // (xp + w_off may lie far outside the array for a huge padding)
        const T* first = xp + ih * g.W + (ow_lo * g.sW + w_off);
        if (g.sW == 1) {
            std::memcpy(cp + ow_lo, first, (ow_hi - ow_lo) * sizeof(T));
        } else {
            for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow) cp[ow] = first[(ow - ow_lo) * g.sW];
        }
    }
}

template <typename T>
void im2col_impl(const T* x, T* cols, const ConvGeom& g, bool folded) {
    const std::int64_t P = g.OH * g.OW;
    if (folded) {
        // one task per output row (c, kh, kw): the N blocks of that row are written one after
        // the other, so the writes stream (per input plane they would be N*P apart)
        const std::int64_t K2 = g.KH * g.KW;
        parallel_for(g.C * K2, plane_grain(g.N * P), [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t r = begin; r < end; ++r) {
                const std::int64_t c = r / K2, kh = (r / g.KW) % g.KH, kw = r % g.KW;
                T* cp = cols + r * g.N * P;
                for (std::int64_t n = 0; n < g.N; ++n, cp += P)
                    im2col_block(x + (n * g.C + c) * g.H * g.W, cp, g, kh, kw);
            }
        });
        return;
    }
    parallel_for(g.N * g.C, plane_grain(g.KH * g.KW * P), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t plane = begin; plane < end; ++plane) {
            const T* xp = x + plane * g.H * g.W;
            for (std::int64_t kh = 0; kh < g.KH; ++kh)
                for (std::int64_t kw = 0; kw < g.KW; ++kw)
                    im2col_block(xp, cols + block_offset(g, plane, kh, kw, false), g, kh, kw);
        }
    });
}

template <typename T>
void col2im_impl(const T* cols, T* dx, const ConvGeom& g, bool folded) {
    const std::int64_t plane_in = g.KH * g.KW * g.OH * g.OW;
    parallel_for(g.N * g.C, plane_grain(plane_in), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t plane = begin; plane < end; ++plane) {
            T* dp = dx + plane * g.H * g.W;
            std::fill(dp, dp + g.H * g.W, T(0));
            for (std::int64_t kh = 0; kh < g.KH; ++kh) {
                for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                    const T* cp = cols + block_offset(g, plane, kh, kw, folded);
                    std::int64_t ow_lo, ow_hi;
                    const std::int64_t w_off = kw * g.dW - g.pW;
                    valid_range(g.W, g.OW, g.sW, g.pW, w_off, ow_lo, ow_hi);
                    for (std::int64_t oh = 0; oh < g.OH; ++oh, cp += g.OW) {
                        const std::int64_t ih = oh * g.sH - g.pH + kh * g.dH;
                        if (ih < 0 || ih >= g.H) continue;
                        if (ow_lo == ow_hi) continue;
                        T* first = dp + ih * g.W + (ow_lo * g.sW + w_off);  // as in im2col
                        if (g.sW == 1) {
                            for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow)
                                first[ow - ow_lo] += cp[ow];
                        } else {
                            for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow)
                                first[(ow - ow_lo) * g.sW] += cp[ow];
                        }
                    }
                }
            }
        }
    });
}

template <typename T>
py::array im2col_typed(const py::array& x_any, const ConvGeom& g, bool folded) {
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);
    py::array_t<T> cols(folded ? std::vector<py::ssize_t>{g.C, g.KH, g.KW, g.N, g.OH, g.OW}
                               : std::vector<py::ssize_t>{g.N, g.C, g.KH, g.KW, g.OH, g.OW});
    const T* xp = x.data();
    T* cp = cols.mutable_data();
    {
        py::gil_scoped_release nogil;
        im2col_impl<T>(xp, cp, g, folded);
    }
    return cols;
}

template <typename T>
py::array col2im_typed(const py::array& cols_any, const ConvGeom& g, bool folded) {
    auto cols = py::array_t<T, py::array::c_style>::ensure(cols_any);
    py::array_t<T> dx(std::vector<py::ssize_t>{g.N, g.C, g.H, g.W});
    const T* cp = cols.data();
    T* dp = dx.mutable_data();
    {
        py::gil_scoped_release nogil;
        col2im_impl<T>(cp, dp, g, folded);
    }
    return dx;
}

}  // namespace

py::array im2col(const py::array& x, std::int64_t KH, std::int64_t KW, const Pair& stride,
                 const Pair& padding, const Pair& dilation, bool folded) {
    const char* op = folded ? "im2col_folded" : "im2col";
    const DType dt = check_float_dtype(op, "x", x);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "x", x);
    const ConvGeom g = conv_geometry(op, {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}, KH,
                                     KW, stride, padding, dilation);
    return dispatch_float(dt, [&](auto tag) {
        return im2col_typed<decltype(tag)>(x, g, folded);
    });
}

py::array col2im(const py::array& cols, const std::vector<std::int64_t>& x_shape,
                 std::int64_t KH, std::int64_t KW, const Pair& stride, const Pair& padding,
                 const Pair& dilation, bool folded) {
    const char* op = folded ? "col2im_folded" : "col2im";
    const DType dt = check_float_dtype(op, "cols", cols);
    const ConvGeom g = conv_geometry(op, x_shape, KH, KW, stride, padding, dilation);
    if (folded)
        check_shape(op, "cols", cols, {g.C, g.KH, g.KW, g.N, g.OH, g.OW});
    else
        check_shape(op, "cols", cols, {g.N, g.C, g.KH, g.KW, g.OH, g.OW});
    check_contiguous(op, "cols", cols);
    return dispatch_float(dt, [&](auto tag) {
        return col2im_typed<decltype(tag)>(cols, g, folded);
    });
}

}  // namespace minigrad
