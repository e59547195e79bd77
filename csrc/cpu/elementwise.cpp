// elementwise.cpp: CPU kernels for elementwise ops (ReLU, bias + ReLU), float32 and float64.
//
//   relu_forward(x)       -> y   y[i]  = x[i] < 0 ? 0 : x[i]      (NaN propagates, like NumPy)
//   relu_backward(dy, x)  -> dx  dx[i] = x[i] <= 0 ? 0 : dy[i]    (0 at x == 0; NaN: dy)
//
// Shapes: any shape, including 0-d and empty; inputs must be C-contiguous (the Python wrapper in
// minigrad/kernels/cpp.py copies views) and share shape and dtype.  Algorithm: one flat loop over
// the n elements, split across OpenMP threads by parallel_for with the GIL released.
//
//   bias_relu_forward(x, bias) -> y            y[n, c, s] = max(x[n, c, s] + bias[c], 0)
//   bias_relu_backward(dy, y)  -> (dx, dbias)  dx = y <= 0 ? 0 : dy,  dbias[c] = sum_{n,s} dx
//
// Shapes: x, y, dy (N, C, *spatial) with ndim >= 2, viewed as (N, C, S), S = prod(spatial)
// (S = 1 for (N, C)); bias and dbias (C,); one dtype; C-contiguous.  y is the saved output:
// y > 0 exactly where x + bias > 0.  Forward: one pass, OpenMP over the N*C rows of S elements
// (for S == 1 over the N rows of C, so the inner loop stays contiguous and vectorizable).
// Backward: one pass writing dx and summing dbias; OpenMP over blocks of channels, so every
// channel's sum is made by one thread in a fixed order (n ascending; within a row of S, 8
// interleaved partial sums added in order, then the tail), accumulated in double even for
// float32: dbias is bitwise the same for any OMP_NUM_THREADS.
//
// Checked by: tests/test_kernels.py (relu) against minigrad/kernels/reference.py on random
// shapes (empty, 0-d, odd sizes, transposed views), both dtypes, and with invalid arguments;
// tests/test_elementwise_bias_relu.py (bias_relu: the same against the reference and PyTorch,
// NaN/inf, float64 accumulation, bitwise equality at 1 and 2 threads, invalid arguments to _C).
#include "common.h"

namespace minigrad {

namespace {

template <typename T>
void relu_forward_impl(const T* x, T* y, std::int64_t n) {
    parallel_for(n, kElementwiseGrain, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
    });
}

template <typename T>
void relu_backward_impl(const T* dy, const T* x, T* dx, std::int64_t n) {
    parallel_for(n, kElementwiseGrain, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) dx[i] = x[i] <= T(0) ? T(0) : dy[i];
    });
}

// ----------------------------------------------------------------------------- bias_relu
// Partial sums per row in the backward: lane j takes elements j, j + kLanes, j + 2 kLanes...
// (independent accumulators, so the compiler can vectorize without reordering any sum).
constexpr int kLanes = 8;

template <typename T>
void bias_relu_forward_impl(const T* __restrict x, const T* __restrict bias, T* __restrict y,
                            std::int64_t N, std::int64_t C, std::int64_t S) {
    if (S == 1) {  // (N, C): rows of C, the bias is a vector along the row
        const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / C);
        parallel_for(N, grain, [=](std::int64_t n0, std::int64_t n1) {
            for (std::int64_t n = n0; n < n1; ++n) {
                const T* xr = x + n * C;
                T* yr = y + n * C;
                for (std::int64_t c = 0; c < C; ++c) {
                    const T v = xr[c] + bias[c];
                    yr[c] = v < T(0) ? T(0) : v;
                }
            }
        });
        return;
    }
    // (N, C, S): rows of S with one bias value each
    const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / S);
    parallel_for(N * C, grain, [=](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {  // row r = n * C + c
            const T b = bias[r % C];
            const T* xr = x + r * S;
            T* yr = y + r * S;
            for (std::int64_t s = 0; s < S; ++s) {
                const T v = xr[s] + b;
                yr[s] = v < T(0) ? T(0) : v;
            }
        }
    });
}

// dx for one row of S elements, and the row's sum of dx in a fixed order (see kLanes).
template <typename T, typename Acc>
Acc bias_relu_backward_row(const T* __restrict dy, const T* __restrict y, T* __restrict dx,
                           std::int64_t S) {
    Acc lanes[kLanes] = {};
    std::int64_t s = 0;
    for (; s + kLanes <= S; s += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
            const T g = dy[s + j];  // loaded unconditionally: keeps the select branch-free
            const T d = y[s + j] <= T(0) ? T(0) : g;  // NaN passes g
            dx[s + j] = d;
            lanes[j] += Acc(d);
        }
    }
    Acc sum = Acc(0);
    for (int j = 0; j < kLanes; ++j) sum += lanes[j];
    for (; s < S; ++s) {
        const T g = dy[s];
        const T d = y[s] <= T(0) ? T(0) : g;
        dx[s] = d;
        sum += Acc(d);
    }
    return sum;
}

// acc: C zero-initialised accumulators (allocated by the caller, outside the parallel region).
template <typename T>
void bias_relu_backward_impl(const T* __restrict dy, const T* __restrict y, T* __restrict dx,
                             T* __restrict dbias, double* __restrict acc, std::int64_t N,
                             std::int64_t C, std::int64_t S) {
    using Acc = double;  // float32 sums too: exact enough, and the same for any thread count
    const std::int64_t per_channel = std::max<std::int64_t>(N * S, 1);
    const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / per_channel);
    parallel_for(C, grain, [=](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t n = 0; n < N; ++n) {  // n ascending: the order of every channel's sum
            if (S == 1) {  // (N, C): a contiguous slice of row n, one accumulator per channel
                const std::int64_t o = n * C;
                for (std::int64_t c = c0; c < c1; ++c) {
                    const T g = dy[o + c];
                    const T d = y[o + c] <= T(0) ? T(0) : g;
                    dx[o + c] = d;
                    acc[c] += Acc(d);
                }
            } else {
                for (std::int64_t c = c0; c < c1; ++c) {
                    const std::int64_t o = (n * C + c) * S;
                    acc[c] += bias_relu_backward_row<T, Acc>(dy + o, y + o, dx + o, S);
                }
            }
        }
        for (std::int64_t c = c0; c < c1; ++c) dbias[c] = T(acc[c]);
    });
}

template <typename T>
py::array bias_relu_forward_typed(const py::array& x_any, const py::array& bias_any) {
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);  // no copy: already checked
    auto bias = py::array_t<T, py::array::c_style>::ensure(bias_any);
    auto y = empty_like<T>(x);
    if (x.size() == 0) return y;
    const std::int64_t N = x.shape(0), C = x.shape(1), S = x.size() / (N * C);
    const T* xp = x.data();
    const T* bp = bias.data();
    T* yp = y.mutable_data();
    {
        py::gil_scoped_release nogil;
        bias_relu_forward_impl<T>(xp, bp, yp, N, C, S);
    }
    return y;
}

template <typename T>
py::tuple bias_relu_backward_typed(const py::array& dy_any, const py::array& y_any) {
    auto dy = py::array_t<T, py::array::c_style>::ensure(dy_any);
    auto y = py::array_t<T, py::array::c_style>::ensure(y_any);
    const std::int64_t N = y.shape(0), C = y.shape(1);
    auto dx = empty_like<T>(y);
    auto dbias = py::array_t<T>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(C)});
    const T* dyp = dy.data();
    const T* yp = y.data();
    T* dxp = dx.mutable_data();
    T* dbp = dbias.mutable_data();
    if (y.size() == 0) {  // no elements: every channel sums to 0 (C may still be > 0)
        std::fill(dbp, dbp + C, T(0));
        return py::make_tuple(dx, dbias);
    }
    const std::int64_t S = y.size() / (N * C);
    std::vector<double> acc(static_cast<size_t>(C), 0.0);  // may throw: before the loop
    double* accp = acc.data();
    {
        py::gil_scoped_release nogil;
        bias_relu_backward_impl<T>(dyp, yp, dxp, dbp, accp, N, C, S);
    }
    return py::make_tuple(dx, dbias);
}

template <typename T>
py::array relu_forward_typed(const py::array& x_any) {
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);  // no copy: already checked
    auto y = empty_like<T>(x);
    const T* xp = x.data();
    T* yp = y.mutable_data();
    const std::int64_t n = x.size();
    {
        py::gil_scoped_release nogil;
        relu_forward_impl<T>(xp, yp, n);
    }
    return y;
}

template <typename T>
py::array relu_backward_typed(const py::array& dy_any, const py::array& x_any) {
    auto dy = py::array_t<T, py::array::c_style>::ensure(dy_any);
    auto x = py::array_t<T, py::array::c_style>::ensure(x_any);
    auto dx = empty_like<T>(x);
    const T* dyp = dy.data();
    const T* xp = x.data();
    T* dxp = dx.mutable_data();
    const std::int64_t n = x.size();
    {
        py::gil_scoped_release nogil;
        relu_backward_impl<T>(dyp, xp, dxp, n);
    }
    return dx;
}

// (N, C, ...) with ndim >= 2, else ValueError naming the op, the argument and its shape.
void check_channels_ndim(const char* op, const char* arg, const py::array& a) {
    if (a.ndim() < 2) {
        std::ostringstream s;
        s << where(op, arg) << "must have at least 2 dims (N, C, ...), got " << a.ndim()
          << "-D array of shape " << shape_str(a);
        throw py::value_error(s.str());
    }
}

}  // namespace

py::array relu_forward(const py::array& x) {
    const char* op = "relu_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_contiguous(op, "x", x);
    return dispatch_float(dt, [&](auto t) { return relu_forward_typed<decltype(t)>(x); });
}

py::array relu_backward(const py::array& dy, const py::array& x) {
    const char* op = "relu_backward";
    const DType dt = check_float_dtype(op, "x", x);
    check_float_dtype(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "x", x);
    check_same_shape(op, "dy", dy, "x", x);
    check_contiguous(op, "dy", dy);
    check_contiguous(op, "x", x);
    return dispatch_float(dt, [&](auto t) { return relu_backward_typed<decltype(t)>(dy, x); });
}

py::array bias_relu_forward(const py::array& x, const py::array& bias) {
    const char* op = "bias_relu_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_float_dtype(op, "bias", bias);
    check_same_dtype(op, "x", x, "bias", bias);
    check_channels_ndim(op, "x", x);
    if (bias.ndim() != 1 || bias.shape(0) != x.shape(1)) {
        throw py::value_error(std::string(op) + ": argument 'bias' has shape " +
                              shape_str(bias) + ", expected (" + std::to_string(x.shape(1)) +
                              ",) for x of shape " + shape_str(x));
    }
    check_contiguous(op, "x", x);
    check_contiguous(op, "bias", bias);
    return dispatch_float(
        dt, [&](auto t) { return bias_relu_forward_typed<decltype(t)>(x, bias); });
}

py::tuple bias_relu_backward(const py::array& dy, const py::array& y) {
    const char* op = "bias_relu_backward";
    const DType dt = check_float_dtype(op, "y", y);
    check_float_dtype(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "y", y);
    check_channels_ndim(op, "y", y);
    check_same_shape(op, "dy", dy, "y", y);
    check_contiguous(op, "dy", dy);
    check_contiguous(op, "y", y);
    return dispatch_float(
        dt, [&](auto t) { return bias_relu_backward_typed<decltype(t)>(dy, y); });
}

}  // namespace minigrad
