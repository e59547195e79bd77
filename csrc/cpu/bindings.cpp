// bindings.cpp: the one pybind11 table of minigrad._C (CPU kernels).
//
// Every kernel is declared here by family and bound under the same name it has in
// minigrad/kernels/reference.py; each kernel validates its own arguments with common.h before
// touching memory.  Also exports num_threads() and build_info() for minigrad.backend_info().
// Checked by: tests/test_kernels.py (imports _C, compares every kernel with the reference).
#include "common.h"

namespace minigrad {
// elementwise.cpp
py::array relu_forward(const py::array& x);
py::array relu_backward(const py::array& dy, const py::array& x);
}  // namespace minigrad

#ifndef MINIGRAD_CXX_FLAGS
#define MINIGRAD_CXX_FLAGS "unknown"
#endif

namespace {

std::string compiler_name() {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " + std::to_string(_MSC_VER);
#else
    return "unknown";
#endif
}

py::dict build_info() {
    py::dict info;
    info["compiler"] = compiler_name();
#ifdef _OPENMP
    info["openmp"] = true;
#else
    info["openmp"] = false;
#endif
    info["flags"] = MINIGRAD_CXX_FLAGS;
    info["pybind11"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                       std::to_string(PYBIND11_VERSION_MINOR) + "." +
                       std::to_string(PYBIND11_VERSION_PATCH);
    return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "minigrad CPU kernels (C++17, OpenMP). Inputs must be C-contiguous.";

    m.def("relu_forward", &minigrad::relu_forward, py::arg("x"),
          "y = max(x, 0) elementwise (float32/float64, C-contiguous, any shape).");
    m.def("relu_backward", &minigrad::relu_backward, py::arg("dy"), py::arg("x"),
          "dx = dy where x > 0 else 0 (same shape and dtype, C-contiguous).");

    m.def("num_threads", &minigrad::max_threads,
          "Threads an OpenMP region would use (omp_get_max_threads; 1 without OpenMP).");
    m.def("build_info", &build_info, "Compiler, OpenMP and flags this module was built with.");
}
