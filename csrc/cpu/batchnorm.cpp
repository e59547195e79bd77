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
// Partial sums: kLanes interleaved accumulators per row, added in order, then the tail (so the
// compiler vectorizes without reordering any sum).  (N, C) inputs (S == 1): a block of channels
// is a contiguous slice of every row; per-channel double accumulators, rows in order; two passes
// for the statistics.
//
// Checked by: tests/test_batchnorm_fused.py (vs PyTorch and the reference, both dtypes, every
// rank, NaN/inf, 1 vs 2 threads bitwise, invalid arguments to _C); tests/test_fused.py (the
// op vs its composed twin, double backward); tests/test_native_safety.py.
#include <cmath>
#include <limits>

#include "common.h"

namespace minigrad {

namespace {

constexpr int kLanes = 8;
constexpr std::int64_t kChunk = 4096;  // values per statistics chunk: 16 KB of float32

// sum(x[0, n)) in double, in a fixed order.
template <typename T>
MG_ALWAYS_INLINE double row_sum(const T* __restrict x, std::int64_t n) {
    double lanes[kLanes] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int j = 0; j < kLanes; ++j) lanes[j] += double(x[s + j]);
    }
    double sum = 0.0;
    for (int j = 0; j < kLanes; ++j) sum += lanes[j];
    for (; s < n; ++s) sum += double(x[s]);
    return sum;
}

// sum((x - mean)^2) over x[0, n), in double.
template <typename T>
MG_ALWAYS_INLINE double row_m2(const T* __restrict x, std::int64_t n, double mean) {
    double lanes[kLanes] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
            const double d = double(x[s + j]) - mean;
            lanes[j] += d * d;
        }
    }
    double sum = 0.0;
    for (int j = 0; j < kLanes; ++j) sum += lanes[j];
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
    double a[kLanes] = {}, b[kLanes] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
            const double g = double(dy[s + j]);
            a[j] += g;
            b[j] += g * double(x[s + j] - mean);
        }
    }
    double sa = 0.0, sb = 0.0;
    for (int j = 0; j < kLanes; ++j) {
        sa += a[j];
        sb += b[j];
    }
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

template <typename T>
void forward_rows(const T* __restrict x, const T* w, const T* b, T* __restrict y,
                  T* __restrict mean_out, T* __restrict var_out, double eps, std::int64_t N,
                  std::int64_t C, std::int64_t S) {
    const double M = double(N) * double(S);
    const std::int64_t rows_per_chunk = S >= kChunk ? 1 : kChunk / S;
    const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / (N * S));
    parallel_for(C, grain, [=](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            Moments mom;
            if (S >= kChunk) {  // chunks: pieces of one row
                for (std::int64_t n = 0; n < N; ++n) {
                    const T* row = x + (n * C + c) * S;
                    for (std::int64_t s0 = 0; s0 < S; s0 += kChunk) {
                        const std::int64_t len = std::min(kChunk, S - s0);
                        const double sum = row_sum(row + s0, len);
                        mom.add_chunk(sum, row_m2(row + s0, len, sum / double(len)),
                                      double(len));
                    }
                }
            } else {  // chunks: rows_per_chunk whole rows
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
            const double mean = mom.total / M, var = mom.m2 / M;
            mean_out[c] = T(mean);
            var_out[c] = T(var);
            const Affine<T> af = affine_of(mean, var, eps, w, b, c);
            for (std::int64_t n = 0; n < N; ++n) {
                const std::int64_t o = (n * C + c) * S;
                row_normalize(x + o, y + o, S, af.mean, af.scale, af.shift);
            }
        }
    });
}

// (N, C): a block of channels [c0, c1) is a contiguous slice of every row.  acc: 2C doubles,
// aff: C Affine values, owned by the caller (allocated before the GIL is released).
template <typename T>
void forward_columns(const T* __restrict x, const T* w, const T* b, T* __restrict y,
                     T* __restrict mean_out, T* __restrict var_out, double eps, std::int64_t N,
                     std::int64_t C, double* acc, Affine<T>* aff) {
    const double M = double(N);
    const std::int64_t grain = std::max<std::int64_t>(16, kElementwiseGrain / N);
    parallel_for(C, grain, [=](std::int64_t c0, std::int64_t c1) {
        double* sum = acc;
        double* m2 = acc + C;
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
            mean_out[c] = T(sum[c]);
            var_out[c] = T(var);
            aff[c] = affine_of(sum[c], var, eps, w, b, c);
        }
        for (std::int64_t n = 0; n < N; ++n) {
            const T* xr = x + n * C;
            T* yr = y + n * C;
            for (std::int64_t c = c0; c < c1; ++c) {
                yr[c] = (xr[c] - aff[c].mean) * aff[c].scale + aff[c].shift;
            }
        }
    });
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
void backward_rows(const T* __restrict dy, const T* __restrict x, const T* mean, const T* var,
                   const T* w, double eps, T* __restrict dx, T* dweight, T* dbias,
                   std::int64_t N, std::int64_t C, std::int64_t S) {
    const double M = double(N) * double(S);
    const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / (N * S));
    parallel_for(C, grain, [=](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            double sum_dy = 0.0, sum_dyxc = 0.0;
            for (std::int64_t n = 0; n < N; ++n) {  // n ascending: the order of both sums
                const std::int64_t o = (n * C + c) * S;
                row_dots(dy + o, x + o, S, mean[c], &sum_dy, &sum_dyxc);
            }
            const DxCoef<T> k = dx_coef(sum_dy, sum_dyxc, mean[c], var[c], w, eps, M, c,
                                        dweight, dbias);
            for (std::int64_t n = 0; n < N; ++n) {
                const std::int64_t o = (n * C + c) * S;
                row_dx(dy + o, x + o, dx + o, S, k.grad_mean, k.mean, k.k, k.a);
            }
        }
    });
}

template <typename T>
void backward_columns(const T* __restrict dy, const T* __restrict x, const T* mean,
                      const T* var, const T* w, double eps, T* __restrict dx, T* dweight,
                      T* dbias, std::int64_t N, std::int64_t C, double* acc, DxCoef<T>* coef) {
    const double M = double(N);
    const std::int64_t grain = std::max<std::int64_t>(16, kElementwiseGrain / N);
    parallel_for(C, grain, [=](std::int64_t c0, std::int64_t c1) {
        double* sum_dy = acc;
        double* sum_dyxc = acc + C;
        for (std::int64_t c = c0; c < c1; ++c) sum_dy[c] = sum_dyxc[c] = 0.0;
        for (std::int64_t n = 0; n < N; ++n) {
            for (std::int64_t c = c0; c < c1; ++c) {
                const double g = double(dy[n * C + c]);
                sum_dy[c] += g;
                sum_dyxc[c] += g * double(x[n * C + c] - mean[c]);
            }
        }
        for (std::int64_t c = c0; c < c1; ++c) {
            coef[c] = dx_coef(sum_dy[c], sum_dyxc[c], mean[c], var[c], w, eps, M, c, dweight,
                              dbias);
        }
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t o = n * C;
            for (std::int64_t c = c0; c < c1; ++c) {
                const DxCoef<T>& k = coef[c];
                dx[o + c] = ((dy[o + c] - k.grad_mean) - (x[o + c] - k.mean) * k.k) * k.a;
            }
        }
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
    const std::int64_t S = x.size() / (N * C);
    const T* xp = x.data();
    const T* wp = data_or_null<T>(weight);
    const T* bp = data_or_null<T>(bias);
    T* yp = y.mutable_data();
    if (S == 1) {
        std::vector<double> acc(static_cast<size_t>(2 * C));  // may throw: before the release
        std::vector<Affine<T>> aff(static_cast<size_t>(C));
        double* accp = acc.data();
        Affine<T>* affp = aff.data();
        py::gil_scoped_release nogil;
        forward_columns<T>(xp, wp, bp, yp, mp, vp, eps, N, C, accp, affp);
    } else {
        py::gil_scoped_release nogil;
        forward_rows<T>(xp, wp, bp, yp, mp, vp, eps, N, C, S);
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
    const std::int64_t S = x.size() / (N * C);
    const T* dyp = dy.data();
    const T* xp = x.data();
    const T* mp = mean.data();
    const T* vp = var.data();
    const T* wp = data_or_null<T>(weight);
    T* dxp = dx.mutable_data();
    if (S == 1) {
        std::vector<double> acc(static_cast<size_t>(2 * C));
        std::vector<DxCoef<T>> coef(static_cast<size_t>(C));
        double* accp = acc.data();
        DxCoef<T>* coefp = coef.data();
        py::gil_scoped_release nogil;
        backward_columns<T>(dyp, xp, mp, vp, wp, eps, dxp, dwp, dbp, N, C, accp, coefp);
    } else {
        py::gil_scoped_release nogil;
        backward_rows<T>(dyp, xp, mp, vp, wp, eps, dxp, dwp, dbp, N, C, S);
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
