// batchnorm.cpp: batch normalisation in training mode (batch statistics), float32 and float64.
//
//   batch_norm_forward(x, weight, bias, eps) -> (y, mean, var)
//       mean[c] = sum(x[:, c]) / M,  var[c] = sum((x[:, c] - mean[c])^2) / M   (biased)
//       y = (x - mean[c]) * scale[c] + bias[c],  scale = weight * invstd,  invstd = 1/sqrt(var+eps)
//   batch_norm_backward(dy, x, mean, var, weight, eps) -> (dx, dweight, dbias)
//       dbias[c] = sum(dy),  dweight[c] = sum(dy * xhat),  xhat = (x - mean) * invstd,
//       dx = ((dy - dbias/M) - (x - mean) * dweight * invstd / M) * weight * invstd
//          = invstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * weight.
//
// Shapes: x, y, dy, dx (N, C, *spatial) with ndim >= 2, viewed as (N, C, S), S = prod(spatial)
// (S = 1 for (N, C)); M = N * S values per channel; weight, bias, mean, var, dweight, dbias (C,);
// weight and bias may be None (1 and 0); one dtype; C-contiguous.  Same contract as
// minigrad/kernels/reference_norm.py.
//
// Algorithm.  OpenMP over blocks of channels: every channel is reduced by one thread in a fixed
// order, with every sum in double (also for float32), so results are bitwise the same for any
// OMP_NUM_THREADS.  Forward (S > 1): ONE pass over memory for the statistics: the channel is cut
// into chunks of about kChunk values (a row piece, or several short rows) that stay in L1;
// each chunk gets an exact two-pass sum and M2 around its own mean, merged into the channel's
// running (count, mean, M2) with Chan et al.'s pairwise update; the mean itself is the plain
// total sum / M, so an inf gives mean +-inf and var NaN, as PyTorch's two-pass statistics.
// Then one pass writes y.  Backward: one pass sums dy and dy * (x - mean) per channel, a second
// writes dx (for the shapes we train, a channel of x and dy fits in L2 between the two).
// Partial sums: kLanes = 16 interleaved accumulators per row (vector types: four 4-double
// chains), added in order, then the tail.  (N, C) inputs (S == 1): a block of channels
// is a contiguous slice of every row; per-channel double accumulators, rows in order; two passes
// for the statistics.
//
// Checked by: tests/test_norm_batchnorm.py (vs PyTorch and the reference, both dtypes, every
// rank, NaN/inf, 1 vs 2 threads bitwise, invalid arguments to _C); tests/test_fused.py (the
// op vs its composed twin, double backward); tests/test_native_safety.py.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "common.h"

// The 4-double vector type below is only ever used inside always-inline helpers, so GCC's note
// that passing it by value would change the ABI without AVX does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace minigrad {

namespace {

constexpr std::int64_t kChunk = 4096;  // values per statistics chunk: 16 KB of float32

// Partial sums: kLanes interleaved double accumulators (lane j takes elements j, j + kLanes,
// j + 2 kLanes, ...), then the lanes added in order j = 0..15, then the tail.  Written with
// GCC/Clang vector types (4 doubles = one AVX2 register, two SSE2 ones) so the loads, float ->
// double conversions and adds are vector instructions on every ISA, with four independent
// add chains (the add latency, not the loads, bounds a plain sum), in exactly this order.
constexpr int kLanes = 16;
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

// x[0..4) as 4 doubles (unaligned loads through memcpy).
MG_ALWAYS_INLINE v4d load4(const double* p) {
    v4d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
MG_ALWAYS_INLINE v4d load4(const float* p) {
    v4f v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, v4d);
}
// x[0..4) - mean, subtracted in T (as the reference), as 4 doubles.
MG_ALWAYS_INLINE v4d centered4(const double* p, double mean) { return load4(p) - mean; }
MG_ALWAYS_INLINE v4d centered4(const float* p, float mean) {
    v4f v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v - mean, v4d);
}

MG_ALWAYS_INLINE double sum_lanes(const v4d (&acc)[kLanes / 4]) {
    double lanes[kLanes];
    std::memcpy(lanes, acc, sizeof lanes);
    double sum = 0.0;
    for (int j = 0; j < kLanes; ++j) sum += lanes[j];
    return sum;
}

// sum(x[0, n)) in double.
template <typename T>
MG_ALWAYS_INLINE double row_sum(const T* __restrict x, std::int64_t n) {
    v4d acc[kLanes / 4] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int k = 0; k < kLanes / 4; ++k) acc[k] += load4(x + s + 4 * k);
    }
    double sum = sum_lanes(acc);
    for (; s < n; ++s) sum += double(x[s]);
    return sum;
}

// sum((x - mean)^2) over x[0, n), in double.
template <typename T>
MG_ALWAYS_INLINE double row_m2(const T* __restrict x, std::int64_t n, double mean) {
    v4d acc[kLanes / 4] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int k = 0; k < kLanes / 4; ++k) {
            const v4d d = load4(x + s + 4 * k) - mean;
            acc[k] += d * d;
        }
    }
    double sum = sum_lanes(acc);
    for (; s < n; ++s) {
        const double d = double(x[s]) - mean;
        sum += d * d;
    }
    return sum;
}

// y = (x - mean) * scale + shift over one row.
template <typename T>
MG_ALWAYS_INLINE void row_normalize(const T* __restrict x, T* __restrict y, std::int64_t n,
                                    T mean, T scale, T shift) {
    for (std::int64_t s = 0; s < n; ++s) y[s] = (x[s] - mean) * scale + shift;
}

// sum(dy) and sum(dy * (x - mean)) over one row, added to *sum_dy / *sum_dyxc.
template <typename T>
MG_ALWAYS_INLINE void row_dots(const T* __restrict dy, const T* __restrict x, std::int64_t n,
                               T mean, double* sum_dy, double* sum_dyxc) {
    v4d a[kLanes / 4] = {}, b[kLanes / 4] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int k = 0; k < kLanes / 4; ++k) {
            const v4d g = load4(dy + s + 4 * k);
            a[k] += g;
            b[k] += g * centered4(x + s + 4 * k, mean);
        }
    }
    double sa = sum_lanes(a), sb = sum_lanes(b);
    for (; s < n; ++s) {
        const double g = double(dy[s]);
        sa += g;
        sb += g * double(x[s] - mean);
    }
    *sum_dy += sa;
    *sum_dyxc += sb;
}

// dx = ((dy - grad_mean) - (x - mean) * k) * a over one row.
template <typename T>
MG_ALWAYS_INLINE void row_dx(const T* __restrict dy, const T* __restrict x, T* __restrict dx,
                             std::int64_t n, T grad_mean, T mean, T k, T a) {
    for (std::int64_t s = 0; s < n; ++s) dx[s] = ((dy[s] - grad_mean) - (x[s] - mean) * k) * a;
}

// Chan et al.'s merge of a chunk (n values, mean m, M2) into a running (count, mean, M2).
struct Moments {
    double count = 0.0, mean = 0.0, m2 = 0.0, total = 0.0;
    void add_chunk(double sum, double m2_chunk, double n) {
        const double m = sum / n;
        total += sum;
        if (count == 0.0) {
            count = n;
            mean = m;
            m2 = m2_chunk;
            return;
        }
        const double delta = m - mean;
        const double both = count + n;
        mean += delta * (n / both);
        m2 += m2_chunk + delta * delta * (count * n / both);
        count = both;
    }
};

// Per-channel constants of the y pass (in T, as the reference rounds them).
template <typename T>
struct Affine {
    T mean, scale, shift;
};

template <typename T>
Affine<T> affine_of(double mean, double var, double eps, const T* w, const T* b,
                    std::int64_t c) {
    const double invstd = 1.0 / std::sqrt(var + eps);
    const double scale = w ? invstd * double(w[c]) : invstd;
    return {T(mean), T(scale), b ? b[c] : T(0)};
}

// What a forward over a block of channels reads and writes.  acc (2C doubles) and aff (C values)
// are scratch for the (N, C) path, allocated by the caller before the GIL is released.
template <typename T>
struct ForwardArgs {
    const T* x;
    const T* w;  // or nullptr (1)
    const T* b;  // or nullptr (0)
    T* y;
    T* mean;
    T* var;
    double eps;
    std::int64_t N, C, S;
    double* acc;
    Affine<T>* aff;
};

// Channel c of (N, C, S), S > 1: statistics in one pass over memory (chunks of ~kChunk values
// that stay in L1, each with an exact two-pass sum and M2, merged by Chan's update), then y.
template <typename T>
MG_ALWAYS_INLINE void forward_channel(const ForwardArgs<T>& a, std::int64_t c) {
    const std::int64_t N = a.N, C = a.C, S = a.S;
    const T* __restrict x = a.x;
    Moments mom;
    if (S >= kChunk) {  // chunks: pieces of one row
        for (std::int64_t n = 0; n < N; ++n) {
            const T* row = x + (n * C + c) * S;
            for (std::int64_t s0 = 0; s0 < S; s0 += kChunk) {
                const std::int64_t len = std::min(kChunk, S - s0);
                const double sum = row_sum(row + s0, len);
                mom.add_chunk(sum, row_m2(row + s0, len, sum / double(len)), double(len));
            }
        }
    } else {  // chunks: rows_per_chunk whole rows
        const std::int64_t rows_per_chunk = kChunk / S;
        for (std::int64_t n0 = 0; n0 < N; n0 += rows_per_chunk) {
            const std::int64_t n1 = std::min(N, n0 + rows_per_chunk);
            double sum = 0.0, m2 = 0.0;
            for (std::int64_t n = n0; n < n1; ++n) sum += row_sum(x + (n * C + c) * S, S);
            const double count = double(n1 - n0) * double(S);
            const double m = sum / count;
            for (std::int64_t n = n0; n < n1; ++n) m2 += row_m2(x + (n * C + c) * S, S, m);
            mom.add_chunk(sum, m2, count);
        }
    }
    const double M = double(N) * double(S);
    const double mean = mom.total / M, var = mom.m2 / M;
    a.mean[c] = T(mean);
    a.var[c] = T(var);
    const Affine<T> af = affine_of(mean, var, a.eps, a.w, a.b, c);
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t o = (n * C + c) * S;
        row_normalize(x + o, a.y + o, S, af.mean, af.scale, af.shift);
    }
}

// (N, C): the block of channels [c0, c1) is a contiguous slice of every row; per-channel
// double accumulators, rows in order; two passes for the statistics, one for y.
template <typename T>
MG_ALWAYS_INLINE void forward_columns(const ForwardArgs<T>& a, std::int64_t c0,
                                      std::int64_t c1) {
    const std::int64_t N = a.N, C = a.C;
    const T* __restrict x = a.x;
    double* __restrict sum = a.acc;
    double* __restrict m2 = a.acc + C;
    Affine<T>* __restrict aff = a.aff;
    const double M = double(N);
    for (std::int64_t c = c0; c < c1; ++c) sum[c] = m2[c] = 0.0;
    for (std::int64_t n = 0; n < N; ++n) {
        for (std::int64_t c = c0; c < c1; ++c) sum[c] += double(x[n * C + c]);
    }
    for (std::int64_t c = c0; c < c1; ++c) sum[c] /= M;  // now the mean
    for (std::int64_t n = 0; n < N; ++n) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const double d = double(x[n * C + c]) - sum[c];
            m2[c] += d * d;
        }
    }
    for (std::int64_t c = c0; c < c1; ++c) {
        const double var = m2[c] / M;
        a.mean[c] = T(sum[c]);
        a.var[c] = T(var);
        aff[c] = affine_of(sum[c], var, a.eps, a.w, a.b, c);
    }
    for (std::int64_t n = 0; n < N; ++n) {
        const T* xr = x + n * C;
        T* yr = a.y + n * C;
        for (std::int64_t c = c0; c < c1; ++c) {
            yr[c] = (xr[c] - aff[c].mean) * aff[c].scale + aff[c].shift;
        }
    }
}

template <typename T>
MG_ALWAYS_INLINE void forward_block(const ForwardArgs<T>& a, std::int64_t c0, std::int64_t c1) {
    if (a.S == 1) return forward_columns(a, c0, c1);
    for (std::int64_t c = c0; c < c1; ++c) forward_channel(a, c);
}

// Per-channel constants of the dx pass, from the two sums (in T, as the reference).
template <typename T>
struct DxCoef {
    T grad_mean, mean, k, a;
};

template <typename T>
DxCoef<T> dx_coef(double sum_dy, double sum_dyxc, T mean, T var, const T* w, double eps,
                  double M, std::int64_t c, T* dweight, T* dbias) {
    const double invstd = 1.0 / std::sqrt(double(var) + eps);
    const double dw = sum_dyxc * invstd;  // sum(dy * xhat)
    dweight[c] = T(dw);
    dbias[c] = T(sum_dy);
    const double wc = w ? double(w[c]) : 1.0;
    return {T(sum_dy / M), mean, T(dw * invstd / M), T(wc * invstd)};
}

template <typename T>
struct BackwardArgs {
    const T* dy;
    const T* x;
    const T* mean;
    const T* var;
    const T* w;  // or nullptr (1)
    double eps;
    T* dx;
    T* dweight;
    T* dbias;
    std::int64_t N, C, S;
    double* acc;
    DxCoef<T>* coef;
};

// Channel c of (N, C, S), S > 1: one pass for sum(dy) and sum(dy * (x - mean)), one for dx.
template <typename T>
MG_ALWAYS_INLINE void backward_channel(const BackwardArgs<T>& a, std::int64_t c) {
    const std::int64_t N = a.N, C = a.C, S = a.S;
    double sum_dy = 0.0, sum_dyxc = 0.0;
    for (std::int64_t n = 0; n < N; ++n) {  // n ascending: the order of both sums
        const std::int64_t o = (n * C + c) * S;
        row_dots(a.dy + o, a.x + o, S, a.mean[c], &sum_dy, &sum_dyxc);
    }
    const DxCoef<T> k = dx_coef(sum_dy, sum_dyxc, a.mean[c], a.var[c], a.w, a.eps,
                                double(N) * double(S), c, a.dweight, a.dbias);
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t o = (n * C + c) * S;
        row_dx(a.dy + o, a.x + o, a.dx + o, S, k.grad_mean, k.mean, k.k, k.a);
    }
}

template <typename T>
MG_ALWAYS_INLINE void backward_columns(const BackwardArgs<T>& a, std::int64_t c0,
                                       std::int64_t c1) {
    const std::int64_t N = a.N, C = a.C;
    const T* __restrict dy = a.dy;
    const T* __restrict x = a.x;
    double* __restrict sum_dy = a.acc;
    double* __restrict sum_dyxc = a.acc + C;
    DxCoef<T>* __restrict coef = a.coef;
    for (std::int64_t c = c0; c < c1; ++c) sum_dy[c] = sum_dyxc[c] = 0.0;
    for (std::int64_t n = 0; n < N; ++n) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const double g = double(dy[n * C + c]);
            sum_dy[c] += g;
            sum_dyxc[c] += g * double(x[n * C + c] - a.mean[c]);
        }
    }
    for (std::int64_t c = c0; c < c1; ++c) {
        coef[c] = dx_coef(sum_dy[c], sum_dyxc[c], a.mean[c], a.var[c], a.w, a.eps, double(N),
                          c, a.dweight, a.dbias);
    }
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t o = n * C;
        for (std::int64_t c = c0; c < c1; ++c) {
            const DxCoef<T>& k = coef[c];
            a.dx[o + c] = ((dy[o + c] - k.grad_mean) - (x[o + c] - k.mean) * k.k) * k.a;
        }
    }
}

template <typename T>
MG_ALWAYS_INLINE void backward_block(const BackwardArgs<T>& a, std::int64_t c0,
                                     std::int64_t c1) {
    if (a.S == 1) return backward_columns(a, c0, c1);
    for (std::int64_t c = c0; c < c1; ++c) backward_channel(a, c);
}

// ----------------------------------------------------------------------------- instruction sets
// The blocks compiled twice: for the baseline (SSE2) and, on x86-64 GCC, for AVX2 (4 doubles
// per instruction in the float64 sums), picked at run time.  No FMA in either (AVX2 alone does
// not enable it) and the same explicit summation order, so both give bitwise the same results;
// MINIGRAD_CPU_ISA=baseline|avx2|avx512 forces one (avx512 runs the AVX2 code), as for conv2d.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MG_BN_AVX2 1
#define MG_TARGET_AVX2 __attribute__((target("avx2")))
MG_TARGET_AVX2 void forward_block_avx2(const ForwardArgs<float>& a, std::int64_t c0,
                                       std::int64_t c1) {
    forward_block(a, c0, c1);
}
MG_TARGET_AVX2 void forward_block_avx2(const ForwardArgs<double>& a, std::int64_t c0,
                                       std::int64_t c1) {
    forward_block(a, c0, c1);
}
MG_TARGET_AVX2 void backward_block_avx2(const BackwardArgs<float>& a, std::int64_t c0,
                                        std::int64_t c1) {
    backward_block(a, c0, c1);
}
MG_TARGET_AVX2 void backward_block_avx2(const BackwardArgs<double>& a, std::int64_t c0,
                                        std::int64_t c1) {
    backward_block(a, c0, c1);
}
#endif

// true: run the AVX2 blocks.  Read on every call (cheap; lets tests switch in one process).
bool use_avx2(const char* op) {
    bool has = false;
#ifdef MG_BN_AVX2
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx2");
#endif
    const char* env = std::getenv("MINIGRAD_CPU_ISA");
    if (!env || !*env) return has;
    const std::string want(env);
    if (want == "baseline") return false;
    if (want != "avx2" && want != "avx512") {
        throw py::value_error(std::string(op) + ": MINIGRAD_CPU_ISA must be baseline, avx2 or "
                              "avx512, got '" + want + "'");
    }
    if (!has) {
        throw std::runtime_error(std::string(op) + ": MINIGRAD_CPU_ISA=" + want +
                                 " but this CPU (or build) does not support AVX2");
    }
    return true;
}

// Channels split over OpenMP threads: every channel is reduced by one thread in a fixed order.
template <typename T>
void forward_impl(const ForwardArgs<T>& a, bool avx2) {
    const std::int64_t per_channel = a.N * a.S;
    const std::int64_t grain = a.S == 1 ? std::max<std::int64_t>(16, kElementwiseGrain / a.N)
                                        : std::max<std::int64_t>(1, kElementwiseGrain / per_channel);
    parallel_for(a.C, grain, [&a, avx2](std::int64_t c0, std::int64_t c1) {
#ifdef MG_BN_AVX2
        if (avx2) return forward_block_avx2(a, c0, c1);
#endif
        (void)avx2;
        forward_block(a, c0, c1);
    });
}

template <typename T>
void backward_impl(const BackwardArgs<T>& a, bool avx2) {
    const std::int64_t per_channel = a.N * a.S;
    const std::int64_t grain = a.S == 1 ? std::max<std::int64_t>(16, kElementwiseGrain / a.N)
                                        : std::max<std::int64_t>(1, kElementwiseGrain / per_channel);
    parallel_for(a.C, grain, [&a, avx2](std::int64_t c0, std::int64_t c1) {
#ifdef MG_BN_AVX2
        if (avx2) return backward_block_avx2(a, c0, c1);
#endif
        (void)avx2;
        backward_block(a, c0, c1);
    });
}

template <typename T>
const T* data_or_null(const py::object& a) {
    if (a.is_none()) return nullptr;
    return static_cast<const T*>(a.cast<py::array>().data());
}

template <typename T>
py::tuple forward_typed(const py::array& x_any, const py::object& weight,
                        const py::object& bias, double eps) {
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);  // no copy: already checked
    const std::int64_t N = x.shape(0), C = x.shape(1);
    const auto channels = std::vector<py::ssize_t>{static_cast<py::ssize_t>(C)};
    auto y = empty_like<T>(x);
    auto mean = py::array_t<T>(channels);
    auto var = py::array_t<T>(channels);
    T* mp = mean.mutable_data();
    T* vp = var.mutable_data();
    if (x.size() == 0) {  // no values: the statistics are NaN (0 / 0), as PyTorch's
        std::fill(mp, mp + C, std::numeric_limits<T>::quiet_NaN());
        std::fill(vp, vp + C, std::numeric_limits<T>::quiet_NaN());
        return py::make_tuple(y, mean, var);
    }
    const bool avx2 = use_avx2("batch_norm_forward");  // may throw: with the GIL held
    const std::int64_t S = x.size() / (N * C);
    std::vector<double> acc(static_cast<size_t>(S == 1 ? 2 * C : 0));  // scratch of (N, C)
    std::vector<Affine<T>> aff(static_cast<size_t>(S == 1 ? C : 0));
    const ForwardArgs<T> args{x.data(), data_or_null<T>(weight), data_or_null<T>(bias),
                              y.mutable_data(), mp, vp, eps, N, C, S, acc.data(), aff.data()};
    {
        py::gil_scoped_release nogil;
        forward_impl<T>(args, avx2);
    }
    return py::make_tuple(y, mean, var);
}

template <typename T>
py::tuple backward_typed(const py::array& dy_any, const py::array& x_any,
                         const py::array& mean_any, const py::array& var_any,
                         const py::object& weight, double eps) {
    auto dy = py::array_t<T, py::array::c_style>::ensure(dy_any);
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);
    auto mean = py::array_t<T, py::array::c_style>::ensure(mean_any);
    auto var = py::array_t<T, py::array::c_style>::ensure(var_any);
    const std::int64_t N = x.shape(0), C = x.shape(1);
    const auto channels = std::vector<py::ssize_t>{static_cast<py::ssize_t>(C)};
    auto dx = empty_like<T>(x);
    auto dweight = py::array_t<T>(channels);
    auto dbias = py::array_t<T>(channels);
    T* dwp = dweight.mutable_data();
    T* dbp = dbias.mutable_data();
    if (x.size() == 0) {  // no values: every channel sums to 0
        std::fill(dwp, dwp + C, T(0));
        std::fill(dbp, dbp + C, T(0));
        return py::make_tuple(dx, dweight, dbias);
    }
    const bool avx2 = use_avx2("batch_norm_backward");
    const std::int64_t S = x.size() / (N * C);
    std::vector<double> acc(static_cast<size_t>(S == 1 ? 2 * C : 0));
    std::vector<DxCoef<T>> coef(static_cast<size_t>(S == 1 ? C : 0));
    const BackwardArgs<T> args{dy.data(), x.data(), mean.data(), var.data(),
                               data_or_null<T>(weight), eps, dx.mutable_data(), dwp, dbp,
                               N, C, S, acc.data(), coef.data()};
    {
        py::gil_scoped_release nogil;
        backward_impl<T>(args, avx2);
    }
    return py::make_tuple(dx, dweight, dbias);
}

// x: float, ndim >= 2, C-contiguous.
DType check_input(const char* op, const char* arg, const py::array& x) {
    const DType dt = check_float_dtype(op, arg, x);
    if (x.ndim() < 2) {
        std::ostringstream s;
        s << where(op, arg) << "must have at least 2 dims (N, C, ...), got " << x.ndim()
          << "-D array of shape " << shape_str(x);
        throw py::value_error(s.str());
    }
    check_contiguous(op, arg, x);
    return dt;
}

// A (C,) array of x's dtype, C-contiguous (None allowed when `optional`).
void check_channel_vector(const char* op, const char* arg, const py::object& obj,
                          const py::array& x, bool optional) {
    if (optional && obj.is_none()) return;
    if (!optional && !py::isinstance<py::array>(obj)) {
        throw py::type_error(where(op, arg) + "must be a numpy array, got " +
                             py::str(py::type::of(obj)).cast<std::string>());
    }
    const py::array a = optional_array(op, arg, obj, "x", x);
    if (a.ndim() != 1 || a.shape(0) != x.shape(1)) {
        throw py::value_error(where(op, arg) + "has shape " + shape_str(a) + ", expected (" +
                              std::to_string(x.shape(1)) + ",) for x of shape " + shape_str(x));
    }
    check_contiguous(op, arg, a);
}

}  // namespace

py::tuple batch_norm_forward(const py::array& x, const py::object& weight,
                             const py::object& bias, double eps) {
    const char* op = "batch_norm_forward";
    const DType dt = check_input(op, "x", x);
    check_channel_vector(op, "weight", weight, x, true);
    check_channel_vector(op, "bias", bias, x, true);
    return dispatch_float(dt, [&](auto t) -> py::tuple {
        return forward_typed<decltype(t)>(x, weight, bias, eps);
    });
}

py::tuple batch_norm_backward(const py::array& dy, const py::array& x, const py::array& mean,
                              const py::array& var, const py::object& weight, double eps) {
    const char* op = "batch_norm_backward";
    const DType dt = check_input(op, "x", x);
    check_input(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "x", x);
    check_same_shape(op, "dy", dy, "x", x);
    check_channel_vector(op, "mean", mean, x, false);
    check_channel_vector(op, "var", var, x, false);
    check_channel_vector(op, "weight", weight, x, true);
    return dispatch_float(dt, [&](auto t) -> py::tuple {
        return backward_typed<decltype(t)>(dy, x, mean, var, weight, eps);
    });
}

}  // namespace minigrad
