// attention.cpp: scaled-dot-product attention, forward and backward, float32 and float64.
//
//   attention_forward(q, k, v, mask, scale, is_causal) -> (out, lse)
//       q (B, L, E), k (B, S, E), v (B, S, Ev); mask None or ADDITIVE (L, S) / (B, L, S) of q's
//       dtype (-inf blocks a key); is_causal: query i sees key j only when j <= i.
//       out (B, L, Ev) = softmax(scale * q k^T + mask) v;  lse (B, L) = logsumexp of the scores
//       (-inf for a query with every key masked: its out row is 0, and so are its gradients).
//   attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal) -> (dq, dk, dv)
//       P = exp(scale q k^T + mask - lse), D = rowsum(dout * out), dv = P^T dout,
//       dS = P * (dout v^T - D), dq = scale dS k, dk = scale dS^T q.
//   Same names, signatures and semantics as minigrad/kernels/reference.py (materialising) and
//   kernels/tiled.py (the NumPy form of this algorithm).
//
// Algorithm (FlashAttention's, on the CPU): the (L, S) score matrix is never stored.
//   Forward: one task per (batch entry, block of kBQ query rows), OpenMP over the tasks.  For
//   each block of kBK keys (causal: blocks wholly in the future are skipped) the key block is
//   transposed into a per-thread (E, kBK) buffer, so every inner loop is an axpy over a
//   contiguous row (s[0:kBK] += q[i, e] * kT[e, :], acc[i, :] += p_j * v[j, :]) that the
//   compiler vectorises (#pragma omp simd) without horizontal sums.  Per query row an online
//   softmax keeps the running max m, the running sum l and the accumulator acc, rescaled by
//   exp(m_old - m_new) when the max grows; out = acc / l, lse = m + log(l).
//   Backward: D = rowsum(dout * out) first; then each (query block, key block) tile recomputes
//   the scores and P = exp(s - lse) exactly, dP = dout v^T, dS = P (dP - D), and adds into dq
//   (rows of the query block) and into dk, dv (rows of the key block).  Without races and
//   deterministically: when B is large enough, one task per batch entry walks all its tiles
//   (query blocks outer, key blocks inner); otherwise two passes, one task per (b, query block)
//   adding dq, then one per (b, key block) adding dk and dv.  Every tile is processed by the
//   same non-inlined function and every sum is taken in the same order (dq over key blocks
//   ascending, dk/dv over query blocks ascending) on both paths, so the result is bitwise
//   independent of OMP_NUM_THREADS.
//   float32 exp is a branch-free polynomial (Cephes' expf, as in lstm.cpp; ~1 ulp, exactly 0
//   below -87.3 so masked keys contribute nothing) so the loops vectorise; float64 uses libm.
//
// Validation: every argument (dtype float32/float64 and all the same, ndim, B/L/S/E/Ev
// agreement, mask None or (L, S)/(B, L, S), C-contiguity) is checked with common.h before any
// memory is touched; kernels run with the GIL released.
// Checked by: tests/test_attention_cpp_kernel.py (against reference.py on awkward shapes, causal,
// masks with fully masked rows, both dtypes, OMP_NUM_THREADS=1 vs 2, bad input from _C) and
// tests/test_ops.py / tests/test_attention.py, which run the PyTorch battery on this variant.
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"

namespace minigrad {

namespace {

#if defined(__GNUC__)
#define MG_ATT_INLINE inline __attribute__((always_inline))
#define MG_ATT_NOINLINE __attribute__((noinline))
#else
#define MG_ATT_INLINE inline
#define MG_ATT_NOINLINE
#endif

constexpr std::int64_t kBQ = 32;  // query rows per task / tile
constexpr std::int64_t kBK = 64;  // keys per block

template <typename T>
constexpr T neg_inf() {
    return -std::numeric_limits<T>::infinity();
}

struct Dims {
    std::int64_t B, L, S, E, Ev;
    std::int64_t mask_bstride;  // 0 for an (L, S) mask, L * S for (B, L, S)
    bool has_mask, causal;
    // Set by the kernels, not the binding: q, k, v, scale finite and the mask free of NaN and
    // +inf, so masked work (causal blocks, zero probabilities, fully masked rows) may be
    // skipped.  Otherwise every key is visited so that NaN + (-inf) and 0 * inf stay NaN.
    bool may_skip = true;
};

template <typename T>
struct BwdArgs {
    const T *dout, *q, *k, *v, *lse, *Dr, *mask;
    T *dq, *dk, *dv;
    Dims d;
    T scale;
};

// exp for float32: exp_f32 from common.h, returning exactly 0 below -87.3 (so -inf -> 0).
MG_ATT_INLINE float exp_t(float x0) { return x0 < -87.3f ? 0.0f : exp_f32(x0); }

MG_ATT_INLINE double exp_t(double x) { return std::exp(x); }

// Keys visible to some query of rows [i0, i1): all of [0, S), or [0, min(S, i1)) when causal.
inline std::int64_t key_stop(const Dims& d, std::int64_t i1) {
    return d.causal && d.may_skip ? std::min(d.S, i1) : d.S;
}

// True when no x[0:n] is NaN or +inf (and, unless neg_inf_ok, none is -inf).
template <typename T>
bool no_nonfinite(const T* x, std::int64_t n, bool neg_inf_ok) {
    bool bad = false;
    for (std::int64_t i = 0; i < n; ++i) {
        bad = bad || !(std::isfinite(x[i]) || (neg_inf_ok && x[i] == neg_inf<T>()));
    }
    return !bad;
}

// Dims with may_skip set from the data (see Dims).
template <typename T>
Dims with_skip_flag(Dims d, const T* q, const T* k, const T* v, const T* mask, T scale) {
    const std::int64_t mask_n = !d.has_mask ? 0 : d.mask_bstride ? d.B * d.L * d.S : d.L * d.S;
    d.may_skip = std::isfinite(scale) && no_nonfinite(q, d.B * d.L * d.E, false) &&
                 no_nonfinite(k, d.B * d.S * d.E, false) &&
                 no_nonfinite(v, d.B * d.S * d.Ev, false) && no_nonfinite(mask, mask_n, true);
    return d;
}

// kT[e * kBK + jj] = k[j0 + jj, e] for jj < n: the key block, transposed (E, kBK).
template <typename T>
MG_ATT_INLINE void transpose_block(const T* k, std::int64_t j0, std::int64_t n, std::int64_t E,
                                   T* kT) {
    for (std::int64_t jj = 0; jj < n; ++jj) {
        const T* kr = k + (j0 + jj) * E;
        for (std::int64_t e = 0; e < E; ++e) kT[e * kBK + jj] = kr[e];
    }
}

// s[0:n] = scale * q_i . k_j + mask[i, j] (causal: -inf for j > i), from the transposed block.
template <typename T>
MG_ATT_INLINE void score_row(const T* __restrict qi, const T* __restrict kT, const T* mrow,
                             std::int64_t i, std::int64_t j0, std::int64_t n, std::int64_t E,
                             T scale, bool causal, T* __restrict s) {
#pragma omp simd
    for (std::int64_t jj = 0; jj < n; ++jj) s[jj] = T(0);
    for (std::int64_t e = 0; e < E; ++e) {
        const T a = qi[e];
        const T* __restrict kr = kT + e * kBK;
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) s[jj] += a * kr[jj];
    }
    if (mrow != nullptr) {
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) s[jj] = s[jj] * scale + mrow[j0 + jj];
    } else {
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) s[jj] *= scale;
    }
    if (causal) {  // ADDED, as PyTorch does: a NaN or +inf score stays NaN
        for (std::int64_t jj = std::max<std::int64_t>(i + 1 - j0, 0); jj < n; ++jj) {
            s[jj] += neg_inf<T>();
        }
    }
}

// ----------------------------------------------------------------------------- forward
template <typename T>
void forward_impl(const T* q, const T* k, const T* v, const T* mask, T* out, T* lse,
                  const Dims& d0, T scale) {
    const Dims d = with_skip_flag(d0, q, k, v, mask, scale);
    const std::int64_t nqb = (d.L + kBQ - 1) / kBQ;
    const std::int64_t tasks = d.B * nqb;
    const int nthreads = max_threads();
    // Per-thread scratch, allocated before the parallel region (nothing may throw inside it).
    const std::int64_t per = d.E * kBK + kBK + kBQ * d.Ev + 2 * kBQ;
    std::vector<T> scratch(static_cast<size_t>(per) * nthreads);

#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && nthreads > 1)
    for (std::int64_t t = 0; t < tasks; ++t) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        T* kT = scratch.data() + static_cast<size_t>(per) * tid;
        T* s = kT + d.E * kBK;
        T* acc = s + kBK;
        T* m = acc + kBQ * d.Ev;
        T* l = m + kBQ;
        const std::int64_t b = t / nqb;
        const std::int64_t i0 = (t % nqb) * kBQ;
        const std::int64_t i1 = std::min(d.L, i0 + kBQ);
        const std::int64_t rows = i1 - i0;
        const T* qb = q + b * d.L * d.E;
        const T* kb = k + b * d.S * d.E;
        const T* vb = v + b * d.S * d.Ev;
        const T* mb = d.has_mask ? mask + b * d.mask_bstride : nullptr;
        std::fill(acc, acc + rows * d.Ev, T(0));
        std::fill(m, m + rows, neg_inf<T>());
        std::fill(l, l + rows, T(0));
        const std::int64_t stop = key_stop(d, i1);
        for (std::int64_t j0 = 0; j0 < stop; j0 += kBK) {
            const std::int64_t n = std::min(kBK, stop - j0);
            transpose_block(kb, j0, n, d.E, kT);
            for (std::int64_t r = 0; r < rows; ++r) {
                const std::int64_t i = i0 + r;
                // every key of the block is in i's future
                if (d.causal && j0 > i && d.may_skip) continue;
                score_row(qb + i * d.E, kT, mb ? mb + i * d.S : nullptr, i, j0, n, d.E, scale,
                          d.causal, s);
                T mx = neg_inf<T>();
                bool nan = m[r] != m[r];  // a NaN row stays NaN
                for (std::int64_t jj = 0; jj < n; ++jj) {
                    mx = s[jj] > mx ? s[jj] : mx;
                    nan = nan || s[jj] != s[jj];
                }
                T m_new = mx > m[r] ? mx : m[r];
                if (nan) m_new = std::numeric_limits<T>::quiet_NaN();  // NaN in every p
                if (m_new == neg_inf<T>() && d.may_skip) continue;  // nothing visible yet
                // m_new -inf (not skipped): p = 0, but 0 * v is still added (NaN if v is).
                // m_new +inf: inf - inf makes the row NaN, as in PyTorch.
                const T m_use = m_new == neg_inf<T>() ? T(0) : m_new;
                const T alpha = exp_t(m[r] - m_use);  // 0 when m was -inf
                T sum = T(0);
#pragma omp simd reduction(+ : sum)
                for (std::int64_t jj = 0; jj < n; ++jj) {
                    s[jj] = exp_t(s[jj] - m_use);
                    sum += s[jj];
                }
                l[r] = l[r] * alpha + sum;
                m[r] = m_new;
                T* __restrict ar = acc + r * d.Ev;
                if (alpha != T(1)) {
#pragma omp simd
                    for (std::int64_t c = 0; c < d.Ev; ++c) ar[c] *= alpha;
                }
                for (std::int64_t jj = 0; jj < n; ++jj) {
                    const T p = s[jj];
                    if (p == T(0) && d.may_skip) continue;
                    const T* __restrict vr = vb + (j0 + jj) * d.Ev;
#pragma omp simd
                    for (std::int64_t c = 0; c < d.Ev; ++c) ar[c] += p * vr[c];
                }
            }
        }
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t i = i0 + r;
            T* orow = out + (b * d.L + i) * d.Ev;
            const T* ar = acc + r * d.Ev;
            // l == 0: every key masked, lse = -inf and out = acc (0, or NaN from 0 * NaN v);
            // a NaN l (NaN/inf scores) makes the row and lse NaN.
            const bool empty = l[r] == T(0);
            const T inv = empty ? T(1) : T(1) / l[r];
#pragma omp simd
            for (std::int64_t c = 0; c < d.Ev; ++c) orow[c] = ar[c] * inv;
            lse[b * d.L + i] = empty ? neg_inf<T>() : m[r] + std::log(l[r]);
        }
    }
}

// ----------------------------------------------------------------------------- backward
// One (b, query rows [i0, i1), keys [j0, j0 + n)) tile: recompute P, dS and add into dq rows
// (want_dq) and/or dk, dv rows (want_dkdv).  Not inlined, so both schedules run the same code.
// scratch: kT (E * kBK), vT (Ev * kBK), p (kBK), ds (kBK).
template <typename T>
MG_ATT_NOINLINE void bwd_tile(const BwdArgs<T>& a, std::int64_t b, std::int64_t i0,
                              std::int64_t i1, std::int64_t j0, std::int64_t n, bool want_dq,
                              bool want_dkdv, T* scratch) {
    const Dims& d = a.d;
    T* kT = scratch;
    T* vT = kT + d.E * kBK;
    T* p = vT + d.Ev * kBK;
    T* ds = p + kBK;
    const T* qb = a.q + b * d.L * d.E;
    const T* kb = a.k + b * d.S * d.E;
    const T* vb = a.v + b * d.S * d.Ev;
    const T* dob = a.dout + b * d.L * d.Ev;
    const T* mb = d.has_mask ? a.mask + b * d.mask_bstride : nullptr;
    transpose_block(kb, j0, n, d.E, kT);
    transpose_block(vb, j0, n, d.Ev, vT);
    for (std::int64_t i = i0; i < i1; ++i) {
        if (d.causal && j0 > i && d.may_skip) continue;
        T lse_i = a.lse[b * d.L + i];
        if (lse_i == neg_inf<T>()) {  // fully masked row: P = 0
            if (d.may_skip) continue;  // and dS = 0 * (dP - D) = 0: no gradient
            lse_i = -neg_inf<T>();     // else P = exp(-inf - inf) = 0; 0 * NaN stays NaN
        }
        const T* qi = qb + i * d.E;
        const T* doi = dob + i * d.Ev;
        score_row(qi, kT, mb ? mb + i * d.S : nullptr, i, j0, n, d.E, a.scale, d.causal, p);
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) p[jj] = exp_t(p[jj] - lse_i);
        // dP = dout_i . v_j
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) ds[jj] = T(0);
        for (std::int64_t c = 0; c < d.Ev; ++c) {
            const T g = doi[c];
            const T* __restrict vr = vT + c * kBK;
#pragma omp simd
            for (std::int64_t jj = 0; jj < n; ++jj) ds[jj] += g * vr[jj];
        }
        const T Di = a.Dr[b * d.L + i];
#pragma omp simd
        for (std::int64_t jj = 0; jj < n; ++jj) ds[jj] = p[jj] * (ds[jj] - Di) * a.scale;
        if (want_dq) {
            T* __restrict dqi = a.dq + (b * d.L + i) * d.E;
            for (std::int64_t jj = 0; jj < n; ++jj) {
                const T c0 = ds[jj];
                if (c0 == T(0) && d.may_skip) continue;
                const T* __restrict kr = kb + (j0 + jj) * d.E;
#pragma omp simd
                for (std::int64_t e = 0; e < d.E; ++e) dqi[e] += c0 * kr[e];
            }
        }
        if (want_dkdv) {
            for (std::int64_t jj = 0; jj < n; ++jj) {
                const T pj = p[jj], c0 = ds[jj];
                if (pj == T(0) && c0 == T(0) && d.may_skip) continue;
                T* __restrict dvr = a.dv + (b * d.S + j0 + jj) * d.Ev;
                T* __restrict dkr = a.dk + (b * d.S + j0 + jj) * d.E;
#pragma omp simd
                for (std::int64_t c = 0; c < d.Ev; ++c) dvr[c] += pj * doi[c];
#pragma omp simd
                for (std::int64_t e = 0; e < d.E; ++e) dkr[e] += c0 * qi[e];
            }
        }
    }
}

template <typename T>
void backward_impl(const BwdArgs<T>& a0) {
    BwdArgs<T> a = a0;
    a.d = with_skip_flag(a0.d, a0.q, a0.k, a0.v, a0.mask, a0.scale);
    const Dims& d = a.d;
    const int nthreads = max_threads();
    const std::int64_t nqb = (d.L + kBQ - 1) / kBQ;
    const std::int64_t nkb = (d.S + kBK - 1) / kBK;
    const std::int64_t per = (d.E + d.Ev) * kBK + 2 * kBK;
    std::vector<T> scratch(static_cast<size_t>(per) * nthreads);
    auto thread_scratch = [&]() {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        return scratch.data() + static_cast<size_t>(per) * tid;
    };
    // dq, dk, dv start at zero (empty sizes are fine: fill of nothing).
    std::fill(a.dq, a.dq + d.B * d.L * d.E, T(0));
    std::fill(a.dk, a.dk + d.B * d.S * d.E, T(0));
    std::fill(a.dv, a.dv + d.B * d.S * d.Ev, T(0));

    if (nthreads == 1 || d.B >= 4 * static_cast<std::int64_t>(nthreads)) {
        // One task per batch entry: it owns dq[b], dk[b], dv[b]; all tiles in one walk.
#pragma omp parallel for schedule(dynamic, 1) if (d.B > 1 && nthreads > 1)
        for (std::int64_t b = 0; b < d.B; ++b) {
            T* sc = thread_scratch();
            for (std::int64_t qi = 0; qi < nqb; ++qi) {
                const std::int64_t i0 = qi * kBQ, i1 = std::min(d.L, i0 + kBQ);
                const std::int64_t stop = key_stop(d, i1);
                for (std::int64_t j0 = 0; j0 < stop; j0 += kBK) {
                    bwd_tile(a, b, i0, i1, j0, std::min(kBK, stop - j0), true, true, sc);
                }
            }
        }
        return;
    }
    // Pass 1: dq, one task per (b, query block), key blocks ascending.
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t t = 0; t < d.B * nqb; ++t) {
        T* sc = thread_scratch();
        const std::int64_t b = t / nqb;
        const std::int64_t i0 = (t % nqb) * kBQ, i1 = std::min(d.L, i0 + kBQ);
        const std::int64_t stop = key_stop(d, i1);
        for (std::int64_t j0 = 0; j0 < stop; j0 += kBK) {
            bwd_tile(a, b, i0, i1, j0, std::min(kBK, stop - j0), true, false, sc);
        }
    }
    // Pass 2: dk, dv, one task per (b, key block), query blocks ascending.  The key range of a
    // tile is cut exactly as in pass 1 (the same block, truncated by the causal stop).
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t t = 0; t < d.B * nkb; ++t) {
        T* sc = thread_scratch();
        const std::int64_t b = t / nkb;
        const std::int64_t j0 = (t % nkb) * kBK;
        for (std::int64_t qi = 0; qi < nqb; ++qi) {
            const std::int64_t i0 = qi * kBQ, i1 = std::min(d.L, i0 + kBQ);
            const std::int64_t stop = key_stop(d, i1);
            if (j0 >= stop) continue;
            bwd_tile(a, b, i0, i1, j0, std::min(kBK, stop - j0), false, true, sc);
        }
    }
}

// D[b, i] = sum_c dout[b, i, c] * out[b, i, c].
template <typename T>
void rowdot(const T* dout, const T* out, T* D, std::int64_t rows, std::int64_t Ev) {
    parallel_for(rows, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(Ev, 1)),
                 [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* g = dout + r * Ev;
            const T* o = out + r * Ev;
            T acc = T(0);
            for (std::int64_t c = 0; c < Ev; ++c) acc += g[c] * o[c];  // fixed order
            D[r] = acc;
        }
    });
}

// ----------------------------------------------------------------------------- validation
// Checks q, k, v (and mask) and returns the dims; nothing is read before this returns.
Dims check_qkv(const char* op, const py::array& q, const py::array& k, const py::array& v,
               const py::object& mask, bool is_causal, DType* dtype) {
    *dtype = check_float_dtype(op, "q", q);
    check_same_dtype(op, "q", q, "k", k);
    check_same_dtype(op, "q", q, "v", v);
    check_ndim(op, "q", q, 3);
    check_ndim(op, "k", k, 3);
    check_ndim(op, "v", v, 3);
    Dims d{};
    d.B = q.shape(0);
    d.L = q.shape(1);
    d.E = q.shape(2);
    d.S = k.shape(1);
    d.Ev = v.shape(2);
    check_shape(op, "k", k, {d.B, -1, d.E});
    check_shape(op, "v", v, {d.B, d.S, -1});
    check_contiguous(op, "q", q);
    check_contiguous(op, "k", k);
    check_contiguous(op, "v", v);
    d.causal = is_causal;
    d.has_mask = !mask.is_none();
    d.mask_bstride = 0;
    if (d.has_mask) {
        const auto m = optional_array(op, "mask", mask, "q", q);
        if (m.ndim() == 2) {
            check_shape(op, "mask", m, {d.L, d.S});
        } else if (m.ndim() == 3) {
            check_shape(op, "mask", m, {d.B, d.L, d.S});
            d.mask_bstride = d.L * d.S;
        } else {
            throw py::value_error(where(op, "mask") + "has shape " + shape_str(m) +
                                  ", expected (L, S) = " + shape_str({d.L, d.S}) +
                                  " or (B, L, S) = " + shape_str({d.B, d.L, d.S}));
        }
        check_contiguous(op, "mask", m);
    }
    return d;
}

template <typename T>
const T* mask_ptr(const py::object& mask) {
    return mask.is_none() ? nullptr : static_cast<const T*>(mask.cast<py::array>().data());
}

template <typename T>
py::tuple forward_typed(const py::array& q, const py::array& k, const py::array& v,
                        const py::object& mask, const Dims& d, double scale) {
    py::array_t<T> out({d.B, d.L, d.Ev});
    py::array_t<T> lse({d.B, d.L});
    const T* mp = mask_ptr<T>(mask);
    const T* qp = static_cast<const T*>(q.data());
    const T* kp = static_cast<const T*>(k.data());
    const T* vp = static_cast<const T*>(v.data());
    T* op = out.mutable_data();
    T* lp = lse.mutable_data();
    {
        py::gil_scoped_release nogil;
        forward_impl<T>(qp, kp, vp, mp, op, lp, d, static_cast<T>(scale));
    }
    return py::make_tuple(out, lse);
}

template <typename T>
py::tuple backward_typed(const py::array& dout, const py::array& q, const py::array& k,
                         const py::array& v, const py::array& out, const py::array& lse,
                         const py::object& mask, const Dims& d, double scale) {
    py::array_t<T> dq({d.B, d.L, d.E});
    py::array_t<T> dk({d.B, d.S, d.E});
    py::array_t<T> dv({d.B, d.S, d.Ev});
    std::vector<T> D(static_cast<size_t>(d.B * d.L));
    BwdArgs<T> a{};
    a.dout = static_cast<const T*>(dout.data());
    a.q = static_cast<const T*>(q.data());
    a.k = static_cast<const T*>(k.data());
    a.v = static_cast<const T*>(v.data());
    a.lse = static_cast<const T*>(lse.data());
    a.mask = mask_ptr<T>(mask);
    a.Dr = D.data();
    a.dq = dq.mutable_data();
    a.dk = dk.mutable_data();
    a.dv = dv.mutable_data();
    a.d = d;
    a.scale = static_cast<T>(scale);
    const T* op = static_cast<const T*>(out.data());
    {
        py::gil_scoped_release nogil;
        rowdot<T>(a.dout, op, D.data(), d.B * d.L, d.Ev);
        backward_impl<T>(a);
    }
    return py::make_tuple(dq, dk, dv);
}

}  // namespace

py::tuple attention_forward(const py::array& q, const py::array& k, const py::array& v,
                            const py::object& mask, double scale, bool is_causal) {
    const char* op = "attention_forward";
    DType dt;
    const Dims d = check_qkv(op, q, k, v, mask, is_causal, &dt);
    return dispatch_float(
        dt, [&](auto t) { return forward_typed<decltype(t)>(q, k, v, mask, d, scale); });
}

py::tuple attention_backward(const py::array& dout, const py::array& q, const py::array& k,
                             const py::array& v, const py::array& out, const py::array& lse,
                             const py::object& mask, double scale, bool is_causal) {
    const char* op = "attention_backward";
    DType dt;
    const Dims d = check_qkv(op, q, k, v, mask, is_causal, &dt);
    check_same_dtype(op, "q", q, "dout", dout);
    check_same_dtype(op, "q", q, "out", out);
    check_same_dtype(op, "q", q, "lse", lse);
    check_shape(op, "dout", dout, {d.B, d.L, d.Ev});
    check_shape(op, "out", out, {d.B, d.L, d.Ev});
    check_shape(op, "lse", lse, {d.B, d.L});
    check_contiguous(op, "dout", dout);
    check_contiguous(op, "out", out);
    check_contiguous(op, "lse", lse);
    return dispatch_float(dt, [&](auto t) {
        return backward_typed<decltype(t)>(dout, q, k, v, out, lse, mask, d, scale);
    });
}

}  // namespace minigrad
