// elementwise.cpp: CPU kernels for elementwise ops (so far ReLU), float32 and float64.
//
//   relu_forward(x)       -> y   y[i]  = x[i] < 0 ? 0 : x[i]      (NaN propagates, like NumPy)
//   relu_backward(dy, x)  -> dx  dx[i] = x[i] > 0 ? dy[i] : 0     (subgradient 0 at x == 0)
//
// Shapes: any shape, including 0-d and empty; inputs must be C-contiguous (the Python wrapper in
// minigrad/kernels/cpp.py copies views) and share shape and dtype.  Algorithm: one flat loop over
// the n elements, split across OpenMP threads by parallel_for with the GIL released.
// Checked by: tests/test_kernels.py against minigrad/kernels/reference.py on random shapes
// (empty, 0-d, odd sizes, transposed views), both dtypes, and with invalid arguments.
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
        for (std::int64_t i = begin; i < end; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
    });
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

}  // namespace

py::array relu_forward(const py::array& x) {
    const char* op = "relu_forward";
    const DType dt = check_float_dtype(op, "x", x);
    check_contiguous(op, "x", x);
    return dt == DType::Float32 ? relu_forward_typed<float>(x) : relu_forward_typed<double>(x);
}

py::array relu_backward(const py::array& dy, const py::array& x) {
    const char* op = "relu_backward";
    const DType dt = check_float_dtype(op, "x", x);
    check_float_dtype(op, "dy", dy);
    check_same_dtype(op, "dy", dy, "x", x);
    check_same_shape(op, "dy", dy, "x", x);
    check_contiguous(op, "dy", dy);
    check_contiguous(op, "x", x);
    return dt == DType::Float32 ? relu_backward_typed<float>(dy, x)
                                : relu_backward_typed<double>(dy, x);
}

}  // namespace minigrad
