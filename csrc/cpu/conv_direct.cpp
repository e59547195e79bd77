// conv_direct.cpp: direct convolution (no im2col) for stride 1, dilation 1, groups 1, float32
// and float64, vectorised for the CPU it runs on.
//
//   conv2d_direct_forward(x, weight, bias, padding) -> y (N, O, OH, OW)
//   conv2d_direct_input_grad(dy, weight, padding, x_shape) -> dx (N, C, H, W)
//   conv2d_direct_weight_grad(dy, x, kernel_size, padding) -> dweight (O, C, KH, KW)
//
// Why: im2col writes C*KH*KW copies of the input and the matmul then reads them back; for the
// small channel counts of LeNet (3 -> 6, 6 -> 16) that traffic, and the per-sample GEMMs of
// shape (6 x 75) @ (75 x 784), cost more than the arithmetic.  Here every output row block is
// accumulated in registers straight from the (zero-padded) input plane: see
// conv_direct_impl.h for the layout trick and the register tiles.  dx is the forward kernel run
// on dy with the kernel flipped and its in/out channels swapped (padding KH-1-pH), so it
// needs pH <= KH-1 and pW <= KW-1.
//
// Instruction sets: conv_direct_impl.h is compiled three times, for the portable baseline
// (SSE2 on x86-64), for AVX2+FMA and for AVX-512F, and the entry points pick the widest one the
// CPU supports (__builtin_cpu_supports), so one wheel runs AVX2 code where the CPU has it
// without -march=native.  MINIGRAD_CPU_ISA=baseline|avx2|avx512 forces one (tests use it to
// check every path the machine can run; asking for one the CPU lacks is a RuntimeError).
// Every task writes its own outputs in a fixed order, so results do not depend on the thread
// count (bitwise); they may differ in the last bits between instruction sets (FMA).
// Checked by: tests/test_conv_direct.py against the im2col reference and PyTorch (both
// dtypes, paddings, odd sizes, every instruction set the CPU runs, 1 vs 2 threads, inf/NaN),
// tests/test_native_safety.py for bad arguments.
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common.h"

namespace minigrad {

using Pair = std::array<std::int64_t, 2>;

namespace conv_direct_baseline {
#define MG_VBYTES 16
#include "conv_direct_impl.h"
#undef MG_VBYTES
}  // namespace conv_direct_baseline

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MG_CONV_MULTI_ISA 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace conv_direct_avx2 {
#define MG_VBYTES 32
#include "conv_direct_impl.h"
#undef MG_VBYTES
}  // namespace conv_direct_avx2
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace conv_direct_avx512 {
#define MG_VBYTES 64
#include "conv_direct_impl.h"
#undef MG_VBYTES
}  // namespace conv_direct_avx512
#pragma GCC pop_options
#endif

namespace {

enum class Isa { Baseline, Avx2, Avx512 };

bool cpu_has(Isa isa) {
#ifdef MG_CONV_MULTI_ISA
    __builtin_cpu_init();
    if (isa == Isa::Avx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == Isa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == Isa::Baseline;
}

const char* isa_name(Isa isa) {
    return isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "baseline";
}

// The widest instruction set the CPU runs, or MINIGRAD_CPU_ISA (read on every call: cheap,
// and lets tests switch paths in one process).
Isa pick_isa(const char* op) {
    const char* env = std::getenv("MINIGRAD_CPU_ISA");
    if (env && *env) {
        const std::string want(env);
        Isa isa;
        if (want == "baseline") isa = Isa::Baseline;
        else if (want == "avx2") isa = Isa::Avx2;
        else if (want == "avx512") isa = Isa::Avx512;
        else throw py::value_error(std::string(op) + ": MINIGRAD_CPU_ISA must be baseline, avx2 "
                                   "or avx512, got '" + want + "'");
        if (!cpu_has(isa))
            throw std::runtime_error(std::string(op) + ": MINIGRAD_CPU_ISA=" + want +
                                     " but this CPU (or build) does not support it");
        return isa;
    }
    if (cpu_has(Isa::Avx512)) return Isa::Avx512;
    if (cpu_has(Isa::Avx2)) return Isa::Avx2;
    return Isa::Baseline;
}

struct Geom {
    std::int64_t N, C, H, W, O, KH, KW, pH, pW, OH, OW;
};

// Validates (ValueError naming the op, shapes and padding) and returns the geometry.
Geom direct_geometry(const char* op, std::int64_t N, std::int64_t C, std::int64_t H,
                     std::int64_t W, std::int64_t O, std::int64_t KH, std::int64_t KW,
                     const Pair& padding) {
    Geom g{N, C, H, W, O, KH, KW, padding[0], padding[1], 0, 0};
    if (N < 0 || C < 1 || H < 0 || W < 0 || O < 1 || KH < 1 || KW < 1 || g.pH < 0 || g.pW < 0) {
        std::ostringstream s;
        s << op << ": need N, H, W >= 0, C, O, KH, KW >= 1 and padding >= 0, got input (" << N
          << ", " << C << ", " << H << ", " << W << "), weight (" << O << ", " << C << ", " << KH
          << ", " << KW << "), padding (" << g.pH << ", " << g.pW << ")";
        throw py::value_error(s.str());
    }
    shape_elements(op, "x", {N, C, H, W});
    g.OH = window_out_size(op, "H", H, KH, 1, g.pH, 1, false);
    g.OW = window_out_size(op, "W", W, KW, 1, g.pW, 1, false);
    if (g.OH < 1 || g.OW < 1) {
        std::ostringstream s;
        s << op << ": kernel (" << KH << ", " << KW << ") is larger than the padded input ("
          << H + 2 * g.pH << ", " << W + 2 * g.pW << ")";
        throw py::value_error(s.str());
    }
    // scratch: a padded plane per channel plus a vector of slack, and the output rows
    CheckedInt plane = (CheckedInt(H) + 2 * g.pH + 1) * (CheckedInt(W) + 2 * g.pW + KW + 64);
    check_fits(op, (plane * (C + O)) * 8, "the scratch planes");
    shape_elements(op, "y", {N, O, g.OH, g.OW});
    return g;
}

template <typename T>
void forward_isa(Isa isa, const T* x, const T* w, const T* b, T* y, const Geom& g, int nt) {
#ifdef MG_CONV_MULTI_ISA
    if (isa == Isa::Avx512)
        return conv_direct_avx512::conv_forward<T>(x, w, b, y, g.N, g.C, g.H, g.W, g.O, g.KH,
                                                   g.KW, g.pH, g.pW, nt);
    if (isa == Isa::Avx2)
        return conv_direct_avx2::conv_forward<T>(x, w, b, y, g.N, g.C, g.H, g.W, g.O, g.KH,
                                                 g.KW, g.pH, g.pW, nt);
#endif
    (void)isa;
    conv_direct_baseline::conv_forward<T>(x, w, b, y, g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.pH,
                                          g.pW, nt);
}

template <typename T>
void weight_grad_isa(Isa isa, const T* dy, const T* x, T* dw, const Geom& g, int nt) {
#ifdef MG_CONV_MULTI_ISA
    if (isa == Isa::Avx512)
        return conv_direct_avx512::conv_weight_grad<T>(dy, x, dw, g.N, g.C, g.H, g.W, g.O, g.KH,
                                                       g.KW, g.pH, g.pW, nt);
    if (isa == Isa::Avx2)
        return conv_direct_avx2::conv_weight_grad<T>(dy, x, dw, g.N, g.C, g.H, g.W, g.O, g.KH,
                                                     g.KW, g.pH, g.pW, nt);
#endif
    (void)isa;
    conv_direct_baseline::conv_weight_grad<T>(dy, x, dw, g.N, g.C, g.H, g.W, g.O, g.KH, g.KW,
                                              g.pH, g.pW, nt);
}

template <typename T>
py::array forward_typed(const py::array& x_any, const py::array& w_any, const py::array* b_any,
                        const Geom& g, Isa isa) {
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);
    auto w = py::array_t<T, py::array::c_style>::ensure(w_any);
    py::array_t<T> y(std::vector<py::ssize_t>{g.N, g.O, g.OH, g.OW});
    const T* bp = nullptr;
    py::array_t<T, py::array::c_style> b;
    if (b_any) {
        b = py::array_t<T, py::array::c_style>::ensure(*b_any);
        bp = b.data();
    }
    const T* xp = x.data();
    const T* wp = w.data();
    T* yp = y.mutable_data();
    const int nt = max_threads();
    {
        py::gil_scoped_release nogil;
        if (g.N > 0) forward_isa<T>(isa, xp, wp, bp, yp, g, nt);
    }
    return y;
}

void check_weight(const char* op, const py::array& w, std::int64_t C) {
    check_ndim(op, "weight", w, 4);
    check_contiguous(op, "weight", w);
    if (w.shape(1) != C) {
        throw py::value_error(std::string(op) + ": weight " + shape_str(w) + " needs " +
                              std::to_string(w.shape(1)) + " input channels, got " +
                              std::to_string(C) + " (groups=1 only)");
    }
}

}  // namespace

std::string conv2d_direct_isa() { return isa_name(pick_isa("conv2d_direct_isa")); }

py::array conv2d_direct_forward(const py::array& x, const py::array& weight,
                                const py::object& bias, const Pair& padding) {
    const char* op = "conv2d_direct_forward";
    const Isa isa = pick_isa(op);
    const DType dt = check_float_dtype(op, "x", x);
    check_same_dtype(op, "x", x, "weight", weight);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "x", x);
    check_weight(op, weight, x.shape(1));
    const Geom g = direct_geometry(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                   weight.shape(0), weight.shape(2), weight.shape(3), padding);
    py::array b;
    const bool has_bias = !bias.is_none();
    if (has_bias) {
        b = optional_array(op, "bias", bias, "x", x);
        check_shape(op, "bias", b, {g.O});
        check_contiguous(op, "bias", b);
    }
    return dispatch_float(dt, [&](auto tag) {
        return forward_typed<decltype(tag)>(x, weight, has_bias ? &b : nullptr, g, isa);
    });
}

namespace {
template <typename T>
py::array input_grad_typed(const py::array& dy_any, const py::array& w_any, const Geom& g,
                           const Geom& gt, Isa isa) {
    auto dy = py::array_t<T, py::array::c_style>::ensure(dy_any);
    auto w = py::array_t<T, py::array::c_style>::ensure(w_any);
    py::array_t<T> dx(std::vector<py::ssize_t>{g.N, g.C, g.H, g.W});
    const T* dp = dy.data();
    const T* wp = w.data();
    T* xp = dx.mutable_data();
    const int nt = max_threads();
    {
        py::gil_scoped_release nogil;
        // wt[c][o][kh][kw] = w[o][c][KH-1-kh][KW-1-kw]: the transposed, flipped kernel
        std::vector<T> wt(static_cast<std::size_t>(g.O * g.C * g.KH * g.KW));
        for (std::int64_t o = 0; o < g.O; ++o)
            for (std::int64_t c = 0; c < g.C; ++c)
                for (std::int64_t kh = 0; kh < g.KH; ++kh)
                    for (std::int64_t kw = 0; kw < g.KW; ++kw)
                        wt[((c * g.O + o) * g.KH + kh) * g.KW + kw] =
                            wp[((o * g.C + c) * g.KH + (g.KH - 1 - kh)) * g.KW + (g.KW - 1 - kw)];
        if (g.N > 0) forward_isa<T>(isa, dp, wt.data(), nullptr, xp, gt, nt);
    }
    return dx;
}

template <typename T>
py::array weight_grad_typed(const py::array& dy_any, const py::array& x_any, const Geom& g,
                            Isa isa) {
    auto dy = py::array_t<T, py::array::c_style>::ensure(dy_any);
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);
    py::array_t<T> dw(std::vector<py::ssize_t>{g.O, g.C, g.KH, g.KW});
    const T* dp = dy.data();
    const T* xp = x.data();
    T* wp = dw.mutable_data();
    const int nt = max_threads();
    {
        py::gil_scoped_release nogil;
        if (g.N > 0)
            weight_grad_isa<T>(isa, dp, xp, wp, g, nt);
        else
            std::fill(wp, wp + g.O * g.C * g.KH * g.KW, T(0));
    }
    return dw;
}
}  // namespace

py::array conv2d_direct_input_grad(const py::array& dy, const py::array& weight,
                                   const Pair& padding, const std::vector<std::int64_t>& x_shape) {
    const char* op = "conv2d_direct_input_grad";
    const Isa isa = pick_isa(op);
    const DType dt = check_float_dtype(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "weight", weight);
    check_ndim(op, "dy", dy, 4);
    check_contiguous(op, "dy", dy);
    if (x_shape.size() != 4)
        throw py::value_error(std::string(op) + ": x_shape must have 4 entries (N, C, H, W)");
    check_weight(op, weight, x_shape[1]);
    const Geom g = direct_geometry(op, x_shape[0], x_shape[1], x_shape[2], x_shape[3],
                                   weight.shape(0), weight.shape(2), weight.shape(3), padding);
    check_shape(op, "dy", dy, {g.N, g.O, g.OH, g.OW});
    if (g.pH > g.KH - 1 || g.pW > g.KW - 1) {
        std::ostringstream s;
        s << op << ": padding (" << g.pH << ", " << g.pW << ") must be at most kernel - 1 ("
          << g.KH - 1 << ", " << g.KW - 1 << ")";
        throw py::value_error(s.str());
    }
    // dx = conv(dy, flipped transposed kernel, padding K-1-p): a (N, O, OH, OW) input and a
    // (C, O, KH, KW) weight give (N, C, H, W)
    const Geom gt = direct_geometry(op, g.N, g.O, g.OH, g.OW, g.C, g.KH, g.KW,
                                    Pair{g.KH - 1 - g.pH, g.KW - 1 - g.pW});
    return dispatch_float(dt, [&](auto tag) {
        return input_grad_typed<decltype(tag)>(dy, weight, g, gt, isa);
    });
}

py::array conv2d_direct_weight_grad(const py::array& dy, const py::array& x, const Pair& kernel,
                                    const Pair& padding) {
    const char* op = "conv2d_direct_weight_grad";
    const Isa isa = pick_isa(op);
    const DType dt = check_float_dtype(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "x", x);
    check_ndim(op, "dy", dy, 4);
    check_ndim(op, "x", x, 4);
    check_contiguous(op, "dy", dy);
    check_contiguous(op, "x", x);
    const Geom g = direct_geometry(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                   dy.shape(1), kernel[0], kernel[1], padding);
    check_shape(op, "dy", dy, {g.N, g.O, g.OH, g.OW});
    return dispatch_float(dt, [&](auto tag) {
        return weight_grad_typed<decltype(tag)>(dy, x, g, isa);
    });
}

}  // namespace minigrad
