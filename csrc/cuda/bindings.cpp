// bindings.cpp: the pybind11 table of minigrad._cuda (compiled by the host C++ compiler; the
// kernels live in *.cu files compiled by nvcc).
//
// Entry points take device pointers as Python ints (CuPy's `a.data.ptr`), the element count n,
// a dtype name ("float32"/"float64") and a stream (CuPy's `get_current_stream().ptr`).  All
// arguments are validated here, on the host, before any CUDA call: n < 0 or a null pointer ->
// ValueError, an unknown dtype -> TypeError.  CUDA failures (including "no device" on a machine
// without a GPU) -> RuntimeError naming the kernel.  cudart is linked statically, so the module
// imports on machines without a GPU or driver; device_count() then returns 0.
// Checked by: tests/test_kernels.py (validation without a GPU; kernels under the `gpu` marker).
#include <pybind11/pybind11.h>

#include "common.cuh"

namespace py = pybind11;
using minigrad::cuda::DType;

namespace {

DType parse_dtype(const char* op, const std::string& dtype) {
    if (dtype == "float32") return DType::Float32;
    if (dtype == "float64") return DType::Float64;
    throw py::type_error(std::string(op) + ": dtype '" + dtype +
                         "' is not supported, expected 'float32' or 'float64'");
}

void check_n(const char* op, std::int64_t n) {
    if (n < 0) {
        throw py::value_error(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
    }
}

void check_ptr(const char* op, const char* arg, std::uintptr_t ptr, std::int64_t n) {
    if (n > 0 && ptr == 0) {
        throw py::value_error(std::string(op) + ": argument '" + arg + "' is a null pointer with n=" +
                              std::to_string(n));
    }
}

int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device / no driver" error
        return 0;
    }
    return count;
}

std::string runtime_version() {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "minigrad CUDA kernels: device pointers as ints, launched on the given stream.";

    m.def(
        "relu_forward",
        [](std::uintptr_t x, std::uintptr_t y, std::int64_t n, const std::string& dtype,
           std::uintptr_t stream) {
            const char* op = "relu_forward";
            check_n(op, n);
            const DType dt = parse_dtype(op, dtype);
            check_ptr(op, "x", x, n);
            check_ptr(op, "y", y, n);
            py::gil_scoped_release nogil;
            minigrad::cuda::relu_forward(x, y, n, dt, stream);
        },
        py::arg("x_ptr"), py::arg("y_ptr"), py::arg("n"), py::arg("dtype"), py::arg("stream") = 0,
        "y = max(x, 0) over n contiguous elements.");
    m.def(
        "relu_backward",
        [](std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
           const std::string& dtype, std::uintptr_t stream) {
            const char* op = "relu_backward";
            check_n(op, n);
            const DType dt = parse_dtype(op, dtype);
            check_ptr(op, "dy", dy, n);
            check_ptr(op, "x", x, n);
            check_ptr(op, "dx", dx, n);
            py::gil_scoped_release nogil;
            minigrad::cuda::relu_backward(dy, x, dx, n, dt, stream);
        },
        py::arg("dy_ptr"), py::arg("x_ptr"), py::arg("dx_ptr"), py::arg("n"), py::arg("dtype"),
        py::arg("stream") = 0, "dx = dy where x > 0 else 0 over n contiguous elements.");

    m.def("device_count", &device_count, "CUDA devices visible (0 without a GPU or driver).");
    m.def("runtime_version", &runtime_version, "CUDA runtime version this module was built with.");
}
