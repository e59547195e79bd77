// checks.h: argument checks shared by minigrad._C (csrc/cpu) and the host side of
// minigrad._cuda (csrc/cuda), written once so both raise the same exception with the same
// message for the same bad argument.
//
//   * shape_str / pair_str: "(2, 3)", "(5,)", "()" for messages.
//   * check_fits(op, v, what): ValueError "op: <what> overflows int64" when a CheckedInt
//     computation overflowed, else its value.
//   * shape_elements(op, arg, shape): element count of a shape (negative extent or an
//     overflowing byte count -> ValueError).
//   * window_out_size(op, dim, size, k, s, p, d, ceil_mode): one spatial dim of a sliding window
//     (conv2d, pooling), overflow-checked; geometry.h builds the 2-D geometry from it.
//   * check_list_length / check_step / divisor_of: the optimizer list lengths, Adam's step and
//     avg_pool2d's divisor_override, the same rule for CPU and CUDA.
// Needs pybind11 (exceptions become Python ValueError/TypeError); nvcc never includes it.
// Checked by: tests/test_kernels.py, tests/test_kernels_cuda.py (host-side validation without
// a GPU), tests/test_native_safety.py and tests/fuzz_native.py (also under ASan/UBSan).
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "checked_int.h"

namespace py = pybind11;

namespace minigrad {

using Pair = std::array<std::int64_t, 2>;
using Shape = std::vector<std::int64_t>;

// "(2, 3)" for a shape; "(5,)" for 1-d; "()" for 0-d.
template <typename I>
std::string shape_str(const std::vector<I>& shape) {
    std::ostringstream s;
    s << "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        s << (i ? ", " : "") << shape[i];
    }
    if (shape.size() == 1) s << ",";
    s << ")";
    return s.str();
}

inline std::string shape_str(std::initializer_list<py::ssize_t> shape) {
    return shape_str(std::vector<py::ssize_t>(shape));
}

inline std::string pair_str(const Pair& p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// ValueError "op: <what> overflows int64" when any step of `v` overflowed; else its value.
inline std::int64_t check_fits(const char* op, const CheckedInt& v, const std::string& what) {
    if (v.overflowed()) {
        throw py::value_error(std::string(op) + ": " + what +
                              " overflows int64: the values are too large");
    }
    return v.value();
}

// Elements of an array of this shape (ValueError for a negative extent or an overflowing
// count, counted like NumPy: a zero extent makes the product 0 but the others must still fit).
inline std::int64_t shape_elements(const char* op, const char* arg, const Shape& shape) {
    CheckedInt nonzero = 1;
    bool empty = false;
    for (auto v : shape) {
        if (v < 0) {
            throw py::value_error(std::string(op) + ": argument '" + arg +
                                  "' has a negative extent: " + shape_str(shape));
        }
        if (v == 0) empty = true;
        else nonzero = nonzero * v;
    }
    const auto n = check_fits(op, nonzero * 16,  // 16: room for the bytes of a float64 buffer
                              std::string("the element count of '") + arg + "' " +
                                  shape_str(shape));
    return empty ? 0 : n / 16;
}

// One spatial dim of a sliding window (conv2d, pooling): the output size
//   out = floor((size + 2p - d(k-1) - 1) / s) + 1   (ceil with ceil_mode, whose last window must
//   then start inside the input or its left padding),
// or -1 when the dilated window does not fit the padded input.  Requires k, s, d >= 1 and
// p >= 0 (the callers check those with their own messages first).  Also proves that every
// index the kernels derive from it, -p - s - d <= o*s - p + kk*d, ... <= size + 2p + s + d*k,
// fits in int64: ValueError naming the op, the dim and the values otherwise.
inline std::int64_t window_out_size(const char* op, const char* dim, std::int64_t size,
                                    std::int64_t k, std::int64_t s, std::int64_t p,
                                    std::int64_t d, bool ceil_mode) {
    const CheckedInt span = CheckedInt(size) + CheckedInt(p) * 2 - CheckedInt(d) * (k - 1) - 1;
    CheckedInt out = -1;
    if (!span.overflowed() && span.value() >= 0) {
        out = floordiv(span + (ceil_mode ? CheckedInt(s) - 1 : CheckedInt(0)), s) + 1;
        const CheckedInt last_start = (out - 1) * s, limit = CheckedInt(size) + p;
        if (ceil_mode && !last_start.overflowed() && !limit.overflowed() &&
            last_start.value() >= limit.value()) {
            out = out - 1;  // the last window would start in the right padding: drop it
        }
    }
    // the largest magnitude any kernel index expression reaches
    const CheckedInt bound = CheckedInt(size) + CheckedInt(p) * 2 + s + CheckedInt(d) * k +
                             (span.overflowed() || span.value() < 0 ? CheckedInt(0)
                                                                    : (out - 1) * s) + 1;
    if (span.overflowed() || out.overflowed() || bound.overflowed()) {
        std::ostringstream m;
        m << op << ": the window along " << dim << " (input size " << size << ", kernel " << k
          << ", stride " << s << ", padding " << p << ", dilation " << d
          << ") gives indices whose range overflows int64: the values are too large";
        throw py::value_error(m.str());
    }
    return out.value();
}

// A per-parameter list of an optimizer step has one entry per parameter.
inline void check_list_length(const char* op, const char* name, std::size_t got,
                              std::size_t want) {
    if (got != want) {
        throw py::value_error(std::string(op) + ": '" + name + "' has " + std::to_string(got) +
                              " entries, expected " + std::to_string(want) +
                              " (one per parameter)");
    }
}

// Adam's bias correction divides by 1 - beta**step: step counts from 1.
inline void check_step(const char* op, std::int64_t step) {
    if (step < 1) {
        throw py::value_error(std::string(op) + ": step must be >= 1, got " +
                              std::to_string(step));
    }
}

// avg_pool2d's divisor_override: None (0 returned: divide by the window count) or positive
// (PyTorch refuses 0; a negative one is refused too).
inline std::int64_t divisor_of(const char* op, const std::optional<std::int64_t>& d) {
    if (d && *d <= 0) {
        throw py::value_error(std::string(op) + ": divisor_override must be positive, got " +
                              std::to_string(*d) + " (None divides by the window count)");
    }
    return d ? *d : 0;
}

}  // namespace minigrad
