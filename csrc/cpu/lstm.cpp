// lstm.cpp: one LSTM cell step from precomputed gate pre-activations, float32 and float64.
//
//   lstm_cell_forward(gates, c_prev) -> (h, c, act, tanh_c)
//       gates (N, 4H) in PyTorch's block order [i | f | g | o]; c_prev (N, H)
//       act = [sigmoid(i) | sigmoid(f) | tanh(g) | sigmoid(o)] (N, 4H)
//       c = f*c_prev + i*g, tanh_c = tanh(c), h = o*tanh_c        (N, H) each
//   lstm_cell_backward(dh, dc, c_prev, act, tanh_c) -> (dgates, dc_prev)
//       dc_total = dc + dh*o*(1 - tanh_c^2); dgates = [dc_total*g*i(1-i) | dc_total*c_prev*f(1-f)
//       | dc_total*i*(1-g^2) | dh*tanh_c*o(1-o)]; dc_prev = dc_total*f
//
// The gate matmuls stay in BLAS (minigrad/ops/rnn.py); this is the elementwise tail, which
// NumPy runs as ~15 separate passes over (N, H) temporaries.  Algorithm: one pass over rows,
// OpenMP over the batch (rows of N) with the GIL released, all four gates of a unit in
// registers; float32 uses a polynomial exp (below).  The forward runs three straight-line loops
// per row (sigmoid blocks, tanh block, cell update) so that GCC vectorizes each; one fused loop
// over all four gates did not vectorize and ran 6x slower than NumPy.  Checked by: tests/test_kernels.py against minigrad/kernels/reference.py
// (lstm_cell_forward/backward) on random shapes, both dtypes, and with invalid arguments;
// tests/test_ops.py runs the lstm_cell PyTorch battery on this variant.
#include <cmath>
#include <cstring>

#include "common.h"

namespace minigrad {

namespace {

// exp_f32 (common.h) keeps the float32 loops vectorizable; float64 uses libm.
MG_ALWAYS_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_f32(-x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

MG_ALWAYS_INLINE float tanh_act(float x) {
    const float a = std::fabs(x);
    const float e = exp_f32(-2.0f * a);
    const float big = (1.0f - e) / (1.0f + e);
    const float small = a - a * a * a * (1.0f / 3.0f);  // |x| < 0.03: avoids 1 - e cancelling
    const float use_small = static_cast<float>(a < 0.03f);  // a blend, not a branch
    return std::copysign(use_small * small + (1.0f - use_small) * big, x);
}
inline double tanh_act(double x) { return std::tanh(x); }

template <typename T>
void lstm_forward_impl(const T* gates, const T* c_prev, T* h, T* c, T* act, T* tanh_c,
                       std::int64_t N, std::int64_t H) {
    parallel_for(N, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(4 * H, 1)),
                 [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t n = b; n < e; ++n) {
            // restrict: the outputs never alias, so the row loop vectorizes
            const T* __restrict gr = gates + n * 4 * H;
            T* __restrict ar = act + n * 4 * H;
            const T* __restrict cpr = c_prev + n * H;
            T* __restrict cr = c + n * H;
            T* __restrict tr = tanh_c + n * H;
            T* __restrict hr = h + n * H;
            // three simple loops instead of one: each is a straight line GCC vectorizes
            for (int blk = 0; blk < 4; ++blk) {
                const T* __restrict gb = gr + blk * H;
                T* __restrict ab = ar + blk * H;
                if (blk == 2) {
#ifdef _OPENMP
#pragma omp simd
#endif
                    for (std::int64_t j = 0; j < H; ++j) ab[j] = tanh_act(gb[j]);
                } else {
#ifdef _OPENMP
#pragma omp simd
#endif
                    for (std::int64_t j = 0; j < H; ++j) ab[j] = sigmoid(gb[j]);
                }
            }
            const T* __restrict ai = ar;
            const T* __restrict af = ar + H;
            const T* __restrict ag = ar + 2 * H;
            const T* __restrict ao = ar + 3 * H;
#ifdef _OPENMP
#pragma omp simd
#endif
            for (std::int64_t j = 0; j < H; ++j) {
                const T cj = af[j] * cpr[j] + ai[j] * ag[j];
                const T tc = tanh_act(cj);
                cr[j] = cj;
                tr[j] = tc;
                hr[j] = ao[j] * tc;
            }
        }
    });
}

template <typename T>
void lstm_backward_impl(const T* dh, const T* dc, const T* c_prev, const T* act, const T* tanh_c,
                        T* dgates, T* dc_prev, std::int64_t N, std::int64_t H) {
    parallel_for(N, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(4 * H, 1)),
                 [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t n = b; n < e; ++n) {
            const T* __restrict ar = act + n * 4 * H;
            T* __restrict dr = dgates + n * 4 * H;
            const std::int64_t r = n * H;
            const T* __restrict tcr = tanh_c + r;
            const T* __restrict dhr = dh + r;
            const T* __restrict dcr = dc + r;
            const T* __restrict cpr = c_prev + r;
            T* __restrict dcp = dc_prev + r;
#ifdef _OPENMP
#pragma omp simd
#endif
            for (std::int64_t j = 0; j < H; ++j) {
                const T i = ar[j], f = ar[H + j], g = ar[2 * H + j], o = ar[3 * H + j];
                const T tc = tcr[j], dhj = dhr[j];
                const T dct = dcr[j] + dhj * o * (T(1) - tc * tc);
                dr[j] = dct * g * i * (T(1) - i);
                dr[H + j] = dct * cpr[j] * f * (T(1) - f);
                dr[2 * H + j] = dct * i * (T(1) - g * g);
                dr[3 * H + j] = dhj * tc * o * (T(1) - o);
                dcp[j] = dct * f;
            }
        }
    });
}

template <typename T>
const T* cptr(const py::array& a) {
    return static_cast<const T*>(a.data());
}

template <typename T>
py::tuple forward_typed(const py::array& gates, const py::array& c_prev) {
    const std::int64_t N = c_prev.shape(0), H = c_prev.shape(1);
    py::array_t<T> h({N, H}), c({N, H}), tanh_c({N, H}), act({N, 4 * H});
    const T* gp = cptr<T>(gates);
    const T* cp = cptr<T>(c_prev);
    T *hp = h.mutable_data(), *cn = c.mutable_data(), *ap = act.mutable_data(),
      *tp = tanh_c.mutable_data();
    {
        py::gil_scoped_release nogil;
        lstm_forward_impl<T>(gp, cp, hp, cn, ap, tp, N, H);
    }
    return py::make_tuple(h, c, act, tanh_c);
}

template <typename T>
py::tuple backward_typed(const py::array& dh, const py::array& dc, const py::array& c_prev,
                         const py::array& act, const py::array& tanh_c) {
    const std::int64_t N = c_prev.shape(0), H = c_prev.shape(1);
    py::array_t<T> dgates({N, 4 * H}), dc_prev({N, H});
    const T *a = cptr<T>(dh), *b = cptr<T>(dc), *cp = cptr<T>(c_prev), *ap = cptr<T>(act),
            *tp = cptr<T>(tanh_c);
    T *dg = dgates.mutable_data(), *dcp = dc_prev.mutable_data();
    {
        py::gil_scoped_release nogil;
        lstm_backward_impl<T>(a, b, cp, ap, tp, dg, dcp, N, H);
    }
    return py::make_tuple(dgates, dc_prev);
}

}  // namespace

py::tuple lstm_cell_forward(const py::array& gates, const py::array& c_prev) {
    const char* op = "lstm_cell_forward";
    const DType dt = check_float_dtype(op, "gates", gates);
    check_float_dtype(op, "c_prev", c_prev);
    check_same_dtype(op, "gates", gates, "c_prev", c_prev);
    check_ndim(op, "c_prev", c_prev, 2);
    check_shape(op, "gates", gates, {c_prev.shape(0), 4 * c_prev.shape(1)});
    check_contiguous(op, "gates", gates);
    check_contiguous(op, "c_prev", c_prev);
    return dispatch_float(dt, [&](auto t) { return forward_typed<decltype(t)>(gates, c_prev); });
}

py::tuple lstm_cell_backward(const py::array& dh, const py::array& dc, const py::array& c_prev,
                             const py::array& act, const py::array& tanh_c) {
    const char* op = "lstm_cell_backward";
    const DType dt = check_float_dtype(op, "c_prev", c_prev);
    const std::pair<const char*, const py::array*> args[] = {
        {"dh", &dh}, {"dc", &dc}, {"act", &act}, {"tanh_c", &tanh_c}};
    check_ndim(op, "c_prev", c_prev, 2);
    for (const auto& [name, a] : args) {
        check_float_dtype(op, name, *a);
        check_same_dtype(op, name, *a, "c_prev", c_prev);
    }
    check_same_shape(op, "dh", dh, "c_prev", c_prev);
    check_same_shape(op, "dc", dc, "c_prev", c_prev);
    check_same_shape(op, "tanh_c", tanh_c, "c_prev", c_prev);
    check_shape(op, "act", act, {c_prev.shape(0), 4 * c_prev.shape(1)});
    check_contiguous(op, "c_prev", c_prev);
    for (const auto& [name, a] : args) check_contiguous(op, name, *a);
    return dispatch_float(dt, [&](auto t) {
        return backward_typed<decltype(t)>(dh, dc, c_prev, act, tanh_c);
    });
}

}  // namespace minigrad
