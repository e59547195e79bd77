// module_info.cpp: what minigrad._C reports about itself and sets up when it loads.
//
//   build_info() -> {"compiler", "openmp", "flags", "pybind11"}  (minigrad.backend_info())
//   tune_malloc() -> bool   glibc mmap/trim thresholds raised at import (MINIGRAD_MALLOC_TUNE=0
//                           opts out); bindings.cpp stores the result as _C.malloc_tuned.
// Checked by: tests/test_kernels.py (build_info) and every test that imports _C.
#include <cstdlib>
#include <cstring>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "kernels.h"

#ifndef MINIGRAD_CXX_FLAGS
#define MINIGRAD_CXX_FLAGS "unknown"
#endif

namespace minigrad {

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

}  // namespace

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

// Keep freed memory for reuse instead of handing it back to the kernel.  A training step frees
// and reallocates the same activation-sized arrays every step; with glibc's defaults each one
// above the (dynamic) mmap threshold is a fresh mmap whose pages fault in one by one (LeNet at
// batch 128: ~1500 page faults and ~20% of the step in the kernel).  Raising the mmap and trim
// thresholds makes those arrays come from the heap, already mapped.  The price: memory freed by
// the process stays reserved for it (up to the largest working set) instead of going back to
// the OS.  MINIGRAD_MALLOC_TUNE=0 keeps glibc's defaults.  Returns whether it applied.
bool tune_malloc() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    const char* env = std::getenv("MINIGRAD_MALLOC_TUNE");
    if (env && std::strcmp(env, "0") == 0) return false;
    const int mmap_max = 32 << 20;  // glibc's upper limit for M_MMAP_THRESHOLD on 64-bit
    return mallopt(M_MMAP_THRESHOLD, mmap_max) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
    return false;
#endif
}

}  // namespace minigrad
