// kernel_types.h: plain types shared by minigrad._C (csrc/cpu) and minigrad._cuda (csrc/cuda),
// with no pybind11 and no CUDA in it, so nvcc compiles it too.
//
//   * DType: the element types every kernel is instantiated for (float32, float64).
//   * dispatch_float(dtype, body): calls body(float{}) or body(double{}) for a runtime dtype, so
//     one generic lambda replaces the copied float/double branches:
//         return dispatch_float(dt, [&](auto tag) -> py::array {
//             using T = decltype(tag);
//             ...  // the body, written once, for T
//         });
//     Both calls must return the same type (name it with `-> type` on the lambda).
//   * Geom2d: the validated geometry of a 2-D sliding window (conv im2col/col2im, pooling),
//     filled by conv_geometry / pool_geometry (geometry.h) and passed by value to the kernels.
// Checked by: every kernel test (tests/test_kernels*.py) goes through dispatch_float.
#pragma once

#include <cstdint>

namespace minigrad {

enum class DType { Float32, Float64 };

template <typename Body>
auto dispatch_float(DType dtype, Body&& body) -> decltype(body(float{})) {
    if (dtype == DType::Float32) return body(float{});
    return body(double{});
}

// N, C, H, W: input; KH, KW: kernel; OH, OW: output; s*, p*, d*: stride, padding, dilation.
struct Geom2d {
    std::int64_t N, C, H, W, KH, KW, OH, OW, sH, sW, pH, pW, dH, dW;
};

}  // namespace minigrad
