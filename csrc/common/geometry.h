// geometry.h: the validated geometry of conv2d's im2col/col2im and of 2-D pooling, computed
// once for minigrad._C (csrc/cpu) and the host side of minigrad._cuda (csrc/cuda), so both
// accept the same arguments, compute the same OH/OW and raise the same errors.
//
//   conv_geometry(op, x_shape, KH, KW, stride, padding, dilation) -> Geom2d
//       OH = floor((H + 2 pH - dH (KH - 1) - 1) / sH) + 1, likewise OW; the dilated kernel must
//       fit the padded input; cols (N, C, KH, KW, OH, OW) must be countable in int64.
//   pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode) -> Geom2d
//       PyTorch's output-size rule (floor or ceil, the last window starting inside the input
//       or its left padding), 0 <= padding <= kernel / 2, OH, OW >= 1.
// Every derived size is overflow-checked (window_out_size in checks.h): each index the kernels
// compute from the result fits in int64, so huge Python ints raise ValueError here instead of
// wrapping into an out-of-bounds access.
// Checked by: tests/test_kernels.py (_C), tests/test_kernels_cuda.py (_cuda, without a GPU),
// tests/test_native_safety.py and tests/fuzz_native.py (extreme geometry, also under ASan).
#pragma once

#include <string>

#include "checks.h"
#include "kernel_types.h"

namespace minigrad {

// x_shape (N, C, H, W) with extents >= 0 (ValueError naming the op otherwise).
inline void check_shape4(const char* op, const Shape& x_shape) {
    if (x_shape.size() != 4) {
        throw py::value_error(std::string(op) + ": x_shape must have 4 entries (N, C, H, W), got " +
                              shape_str(x_shape));
    }
    for (auto v : x_shape) {
        if (v < 0) {
            throw py::value_error(std::string(op) + ": negative extent in x_shape " +
                                  shape_str(x_shape));
        }
    }
}

inline Geom2d conv_geometry(const char* op, const Shape& x_shape, std::int64_t KH,
                            std::int64_t KW, const Pair& stride, const Pair& padding,
                            const Pair& dilation) {
    check_shape4(op, x_shape);
    if (KH < 1 || KW < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 ||
        dilation[1] < 1 || padding[0] < 0 || padding[1] < 0) {
        throw py::value_error(std::string(op) +
                              ": need kernel >= 1, stride >= 1, dilation >= 1 and padding >= 0,"
                              " got kernel " + pair_str({KH, KW}) + ", stride " +
                              pair_str(stride) + ", padding " + pair_str(padding) +
                              ", dilation " + pair_str(dilation));
    }
    Geom2d g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], KH, KW, 0, 0, stride[0], stride[1],
             padding[0], padding[1], dilation[0], dilation[1]};
    shape_elements(op, "x_shape", x_shape);
    g.OH = window_out_size(op, "H", g.H, KH, g.sH, g.pH, g.dH, false);
    g.OW = window_out_size(op, "W", g.W, KW, g.sW, g.pW, g.dW, false);
    if (g.OH < 0 || g.OW < 0) {
        throw py::value_error(std::string(op) + ": kernel " + pair_str({KH, KW}) +
                              " with dilation " + pair_str(dilation) +
                              " does not fit the padded input of shape " + shape_str(x_shape) +
                              " with padding " + pair_str(padding));
    }
    shape_elements(op, "cols", {g.N, g.C, KH, KW, g.OH, g.OW});
    return g;
}

inline Geom2d pool_geometry(const char* op, const Shape& x_shape, const Pair& kernel,
                            const Pair& stride, const Pair& padding, const Pair& dilation,
                            bool ceil_mode) {
    check_shape4(op, x_shape);
    shape_elements(op, "x_shape", x_shape);
    if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 ||
        dilation[1] < 1 || padding[0] < 0 || padding[1] < 0 || padding[0] > kernel[0] / 2 ||
        padding[1] > kernel[1] / 2) {  // p <= k/2 without computing 2p (it may overflow)
        throw py::value_error(std::string(op) +
                              ": need kernel, stride, dilation >= 1 and 0 <= padding <= kernel/2,"
                              " got kernel " + pair_str(kernel) + ", stride " + pair_str(stride) +
                              ", padding " + pair_str(padding) + ", dilation " +
                              pair_str(dilation));
    }
    Geom2d g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], kernel[0], kernel[1], 0, 0,
             stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
    const auto out = [&](const char* dim, std::int64_t size, std::int64_t k, std::int64_t s,
                         std::int64_t p, std::int64_t d) {
        const std::int64_t o = window_out_size(op, dim, size, k, s, p, d, ceil_mode);
        return o < 0 ? 0 : o;  // the window does not fit: "too small" below
    };
    g.OH = out("H", g.H, g.KH, g.sH, g.pH, g.dH);
    g.OW = out("W", g.W, g.KW, g.sW, g.pW, g.dW);
    if (g.OH < 1 || g.OW < 1) {
        throw py::value_error(std::string(op) + ": output size (" + std::to_string(g.OH) + ", " +
                              std::to_string(g.OW) + ") is too small for input " +
                              shape_str(x_shape) + " with kernel " + pair_str(kernel));
    }
    return g;
}

}  // namespace minigrad
