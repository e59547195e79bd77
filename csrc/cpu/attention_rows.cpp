// attention_rows.cpp: the softmax half of "blocked" attention (minigrad/kernels/blocked.py),
// float32 and float64.  The matmuls of that variant run in BLAS through NumPy, one block of
// query rows at a time; these two kernels do everything between them in one pass per row.
//
//   attention_rows_forward(s, mask, scale, i0, is_causal) -> lse
//       s (B, R, K): raw scores q[:, i0:i0+R] @ k[:, :K]^T of one query block, overwritten with
//       P = softmax(scale * s + mask[., i0 + r, :K]) (causal: key j > query i0 + r gets 0);
//       lse (B, R) = logsumexp of each row (-inf for a row with every key masked: its P row is
//       0).  mask: None, or ADDITIVE (L, S) / (B, L, S) over the whole sequence (S >= K).
//   attention_rows_backward(s, dp, lse, D, mask, scale, i0, is_causal) -> None
//       s as above (raw scores) is overwritten with P = exp(scale * s + mask - lse) and
//       dp (B, R, K) = dout_block @ v[:, :K]^T with scale * P * (dp - D) (D (B, R) =
//       rowsum(dout * out)): dS already scaled, so dq = dS @ k and dk = dS^T @ q.
//
// One task per row, OpenMP over the B*R rows; every row is reduced in a fixed order, so results
// do not depend on OMP_NUM_THREADS.  float32 exp is exp_f32 (common.h; the loops vectorise).
// Checked by: tests/test_attention_cpp_kernel.py and the attention battery in tests/test_ops.py,
// which run on the "blocked" variant like on every other.
#include <cmath>
#include <limits>

#include "common.h"

namespace minigrad {

namespace {

template <typename T>
constexpr T neg_inf() {
    return -std::numeric_limits<T>::infinity();
}

MG_ALWAYS_INLINE float exp_r(float x) { return x < -87.3f ? 0.0f : exp_f32(x); }
inline double exp_r(double x) { return std::exp(x); }

struct RowDims {
    std::int64_t B, R, K;     // block: batch, rows, keys
    std::int64_t L, S;        // the mask's row count and row length (whole sequence)
    std::int64_t mask_bstride;  // 0 for an (L, S) mask, L * S for (B, L, S)
    bool has_mask;
};

// x[0:n] = scale * s + mask row; causal: -inf is ADDED to keys past `visible` (as PyTorch
// adds its causal mask), so a NaN or +inf score there becomes NaN, not a hidden -inf.
template <typename T>
MG_ALWAYS_INLINE void prepare_row(T* __restrict x, const T* __restrict mrow, T scale,
                                  std::int64_t n, std::int64_t visible) {
    if (mrow != nullptr) {
#pragma omp simd
        for (std::int64_t j = 0; j < n; ++j) x[j] = x[j] * scale + mrow[j];
    } else {
#pragma omp simd
        for (std::int64_t j = 0; j < n; ++j) x[j] *= scale;
    }
    for (std::int64_t j = std::max<std::int64_t>(visible, 0); j < n; ++j) x[j] += neg_inf<T>();
}

template <typename T>
void rows_forward(T* s, const T* mask, T* lse, const RowDims& d, T scale, std::int64_t i0,
                  bool causal) {
    parallel_for(d.B * d.R, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(d.K, 1)),
                 [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t row = lo; row < hi; ++row) {
            const std::int64_t b = row / d.R, r = row % d.R, i = i0 + r;
            T* x = s + row * d.K;
            const T* mrow = d.has_mask ? mask + b * d.mask_bstride + i * d.S : nullptr;
            prepare_row(x, mrow, scale, d.K, causal ? i + 1 : d.K);
            T mx = neg_inf<T>();
            bool nan = false;
            for (std::int64_t j = 0; j < d.K; ++j) {
                mx = x[j] > mx ? x[j] : mx;
                nan = nan || x[j] != x[j];
            }
            if (nan) mx = std::numeric_limits<T>::quiet_NaN();  // the whole row is NaN
            if (mx == neg_inf<T>()) {  // every key masked (or none visible)
                std::fill(x, x + d.K, T(0));
                lse[row] = neg_inf<T>();
                continue;
            }
            // A NaN or +inf max gives NaN in every entry (inf - inf), as in PyTorch; masked
            // keys are -inf - mx, probability 0.
            T sum = T(0);
#pragma omp simd reduction(+ : sum)
            for (std::int64_t j = 0; j < d.K; ++j) {
                x[j] = exp_r(x[j] - mx);
                sum += x[j];
            }
            const T inv = T(1) / sum;
#pragma omp simd
            for (std::int64_t j = 0; j < d.K; ++j) x[j] *= inv;
            lse[row] = mx + std::log(sum);
        }
    });
}

template <typename T>
void rows_backward(T* s, T* dp, const T* lse, const T* D, const T* mask, const RowDims& d,
                   T scale, std::int64_t i0, bool causal) {
    parallel_for(d.B * d.R, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(d.K, 1)),
                 [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t row = lo; row < hi; ++row) {
            const std::int64_t b = row / d.R, r = row % d.R, i = i0 + r;
            T* x = s + row * d.K;
            T* g = dp + row * d.K;
            // A fully masked row (lse -inf) gets P = exp(-inf - inf) = 0: its dS is
            // 0 * (dp - D), zero unless dp or D is NaN/inf (then NaN, as in PyTorch).
            const T l = lse[row] == neg_inf<T>() ? -neg_inf<T>() : lse[row];
            const T* mrow = d.has_mask ? mask + b * d.mask_bstride + i * d.S : nullptr;
            prepare_row(x, mrow, scale, d.K, causal ? i + 1 : d.K);
            const T Dr = D[row];
#pragma omp simd
            for (std::int64_t j = 0; j < d.K; ++j) {
                const T p = exp_r(x[j] - l);
                x[j] = p;
                g[j] = scale * p * (g[j] - Dr);
            }
        }
    });
}

RowDims check_rows(const char* op, const py::array& s, const py::object& mask, DType* dt) {
    *dt = check_float_dtype(op, "s", s);
    check_ndim(op, "s", s, 3);
    check_contiguous(op, "s", s);
    if (!s.writeable()) throw py::value_error(where(op, "s") + "must be writeable");
    RowDims d{};
    d.B = s.shape(0);
    d.R = s.shape(1);
    d.K = s.shape(2);
    d.has_mask = !mask.is_none();
    d.mask_bstride = 0;
    d.L = d.S = 0;
    if (d.has_mask) {
        const auto m = optional_array(op, "mask", mask, "s", s);
        check_contiguous(op, "mask", m);
        if (m.ndim() == 2) {
            d.L = m.shape(0);
            d.S = m.shape(1);
        } else if (m.ndim() == 3 && m.shape(0) == d.B) {
            d.L = m.shape(1);
            d.S = m.shape(2);
            d.mask_bstride = d.L * d.S;
        } else {
            throw py::value_error(where(op, "mask") + "has shape " + shape_str(m) +
                                  ", expected (L, S) or (" + std::to_string(d.B) + ", L, S)");
        }
        if (d.S < d.K) {
            throw py::value_error(where(op, "mask") + "of shape " + shape_str(m) +
                                  " has fewer keys than the block " + shape_str(s));
        }
    }
    return d;
}

void check_i0(const char* op, const RowDims& d, std::int64_t i0) {
    const CheckedInt end = CheckedInt(i0) + d.R;  // i0 + R, overflow-checked (common.h)
    if (end.overflowed()) {
        throw py::value_error(std::string(op) + ": rows [i0, i0 + R) = [" + std::to_string(i0) +
                              ", " + std::to_string(i0) + " + " + std::to_string(d.R) +
                              ") overflow int64");
    }
    if (i0 < 0 || (d.has_mask && end.value() > d.L)) {
        throw py::value_error(std::string(op) + ": rows [" + std::to_string(i0) + ", " +
                              std::to_string(end.value()) + ") fall outside the mask's " +
                              std::to_string(d.L) + " rows");
    }
}

// s (and dp) are overwritten in place: no argument may share their memory.
void check_rows_disjoint(const char* op, const py::array& s, const py::object& mask,
                         std::vector<ArgBuffer> more) {
    py::array m;
    more.push_back({"s", &s, true});
    if (!mask.is_none()) {
        m = mask.cast<py::array>();
        more.push_back({"mask", &m, false});
    }
    check_no_overlap(op, more);
}

}  // namespace

py::array attention_rows_forward(const py::array& s, const py::object& mask, double scale,
                                 std::int64_t i0, bool is_causal) {
    const char* op = "attention_rows_forward";
    DType dt;
    const RowDims d = check_rows(op, s, mask, &dt);
    check_i0(op, d, i0);
    check_rows_disjoint(op, s, mask, {});
    const void* mp = d.has_mask ? mask.cast<py::array>().data() : nullptr;
    return dispatch_float(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        py::array_t<T> lse({d.B, d.R});
        T* sp = static_cast<T*>(const_cast<void*>(s.data()));
        T* lp = lse.mutable_data();
        py::gil_scoped_release nogil;
        rows_forward<T>(sp, static_cast<const T*>(mp), lp, d, static_cast<T>(scale), i0,
                        is_causal);
        return std::move(lse);
    });
}

void attention_rows_backward(const py::array& s, const py::array& dp, const py::array& lse,
                             const py::array& D, const py::object& mask, double scale,
                             std::int64_t i0, bool is_causal) {
    const char* op = "attention_rows_backward";
    DType dt;
    const RowDims d = check_rows(op, s, mask, &dt);
    check_i0(op, d, i0);
    check_same_dtype(op, "s", s, "dp", dp);
    check_same_dtype(op, "s", s, "lse", lse);
    check_same_dtype(op, "s", s, "D", D);
    check_shape(op, "dp", dp, {d.B, d.R, d.K});
    check_shape(op, "lse", lse, {d.B, d.R});
    check_shape(op, "D", D, {d.B, d.R});
    check_contiguous(op, "dp", dp);
    check_contiguous(op, "lse", lse);
    check_contiguous(op, "D", D);
    if (!dp.writeable()) throw py::value_error(where(op, "dp") + "must be writeable");
    check_rows_disjoint(op, s, mask, {{"dp", &dp, true}, {"lse", &lse, false}, {"D", &D, false}});
    const void* mp = d.has_mask ? mask.cast<py::array>().data() : nullptr;
    dispatch_float(dt, [&](auto tag) {
        using T = decltype(tag);
        py::gil_scoped_release nogil;
        rows_backward<T>(static_cast<T*>(const_cast<void*>(s.data())),
                         static_cast<T*>(const_cast<void*>(dp.data())),
                         static_cast<const T*>(lse.data()), static_cast<const T*>(D.data()),
                         static_cast<const T*>(mp), d, static_cast<T>(scale), i0, is_causal);
    });
}

}  // namespace minigrad
