// checked_int.h: overflow-checked int64 arithmetic, with no pybind11 and no CUDA in it.
//
// Geometry that arrives as Python ints (stride, padding, dilation, kernel, i0, x_shape) can be
// anything up to 2**63 - 1, and signed overflow in index math is undefined behaviour that ends
// as an out-of-bounds read or write (on the CPU or the GPU).  CheckedInt computes with
// __builtin_*_overflow and remembers whether any step overflowed; a binding computes its
// geometry with it and raises ValueError (check_fits in checks.h) before any memory is touched.
// Checked by: tests/test_native_safety.py, tests/fuzz_native.py (extreme ints, also under
// ASan/UBSan: .ci/sanitize) and tests/test_kernels_cuda.py (the same geometry for _cuda).
#pragma once

#include <cstdint>

namespace minigrad {

class CheckedInt {
   public:
    constexpr CheckedInt(std::int64_t v = 0) : v_(v) {}  // NOLINT: implicit from int64 on purpose
    std::int64_t value() const { return v_; }
    bool overflowed() const { return overflow_; }
    // INT64_MAX when overflowed: for sizes that only steer work splitting.
    std::int64_t saturated() const { return overflow_ ? INT64_MAX : v_; }

    friend CheckedInt operator+(CheckedInt a, CheckedInt b) {
        CheckedInt r;
        r.overflow_ = a.overflow_ || b.overflow_ || op_overflows(a.v_, b.v_, '+', &r.v_);
        return r;
    }
    friend CheckedInt operator-(CheckedInt a, CheckedInt b) {
        CheckedInt r;
        r.overflow_ = a.overflow_ || b.overflow_ || op_overflows(a.v_, b.v_, '-', &r.v_);
        return r;
    }
    friend CheckedInt operator*(CheckedInt a, CheckedInt b) {
        CheckedInt r;
        r.overflow_ = a.overflow_ || b.overflow_ || op_overflows(a.v_, b.v_, '*', &r.v_);
        return r;
    }
    // Floor division for a positive divisor (the only kind geometry divides by).
    friend CheckedInt floordiv(CheckedInt a, CheckedInt b) {
        CheckedInt r;
        r.overflow_ = a.overflow_ || b.overflow_ || b.v_ <= 0;
        if (!r.overflow_) {
            r.v_ = a.v_ / b.v_;
            if (a.v_ % b.v_ != 0 && a.v_ < 0) r.v_ -= 1;
        }
        return r;
    }

   private:
    static bool op_overflows(std::int64_t a, std::int64_t b, char op, std::int64_t* out) {
#if defined(__GNUC__) || defined(__clang__)
        switch (op) {
            case '+': return __builtin_add_overflow(a, b, out);
            case '-': return __builtin_sub_overflow(a, b, out);
            default: return __builtin_mul_overflow(a, b, out);
        }
#else
        const long double r = op == '+' ? (long double)a + b
                              : op == '-' ? (long double)a - b : (long double)a * b;
        if (r < (long double)INT64_MIN || r > (long double)INT64_MAX) return true;
        *out = op == '+' ? a + b : op == '-' ? a - b : a * b;
        return false;
#endif
    }
    std::int64_t v_ = 0;
    bool overflow_ = false;
};

}  // namespace minigrad
