// common.h: the boundary layer shared by every CPU kernel in minigrad._C.
//
// What it provides:
//   * checks on pybind11 array arguments (dtype, ndim, exact shape, C-contiguity, matching
//     shapes) that raise Python exceptions naming the op, the argument, and actual vs expected
//     values.  Every binding validates all of its inputs with these BEFORE touching memory, so a
//     bad call from Python raises TypeError/ValueError instead of crashing the interpreter.
//   * parallel_for(n, grain, body): an OpenMP loop over [0, n) split into chunks of at least
//     `grain` items; runs serially when OpenMP is off or n is small.  `body(begin, end)` must not
//     throw (exceptions cannot leave an OpenMP region) and must not touch Python objects, because
//     kernels run it with the GIL released (py::gil_scoped_release).
//   * empty_like(): a fresh C-contiguous output array with the input's shape.
//   * CheckedInt / check_fits / shape_elements / window_out_size: overflow-checked int64
//     geometry (conv and pool output sizes, i0 + R, x_shape products) for arguments that come
//     from Python as arbitrary ints; ValueError instead of a wrapped index.
//   * pinned_copy / load_once: what a kernel checks and then uses after releasing the GIL is
//     read once (another Python thread may rewrite the array meanwhile).
//   * check_no_overlap: in-place kernels refuse buffers that share memory.
//
// How it is checked: tests/test_kernels.py calls _C directly with wrong dtypes, non-contiguous
// arrays and mismatched shapes and expects the exceptions (and messages) defined here;
// tests/test_native_safety.py and tests/fuzz_native.py (hypothesis, in a subprocess) call every
// binding with extreme ints, aliased and malformed arrays, also under ASan/UBSan (.ci/sanitize).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace minigrad {

// The floating dtypes our kernels are instantiated for.
enum class DType { Float32, Float64 };

// "(2, 3)" for a shape; "()" for 0-d.
inline std::string shape_str(const std::vector<py::ssize_t>& shape) {
    std::ostringstream s;
    s << "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        s << (i ? ", " : "") << shape[i];
    }
    if (shape.size() == 1) s << ",";
    s << ")";
    return s.str();
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

inline std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Prefix of every error message: "relu_forward: argument 'x' ".
inline std::string where(const char* op, const char* arg) {
    return std::string(op) + ": argument '" + arg + "' ";
}

// float32 or float64, else TypeError naming the op, the argument and its dtype.
inline DType check_float_dtype(const char* op, const char* arg, const py::array& a) {
    if (a.dtype().is(py::dtype::of<float>())) return DType::Float32;
    if (a.dtype().is(py::dtype::of<double>())) return DType::Float64;
    throw py::type_error(where(op, arg) + "has dtype " + dtype_str(a) +
                         ", expected float32 or float64");
}

inline void check_same_dtype(const char* op, const char* arg_a, const py::array& a,
                             const char* arg_b, const py::array& b) {
    if (!a.dtype().is(b.dtype())) {
        throw py::type_error(std::string(op) + ": arguments '" + arg_a + "' and '" + arg_b +
                             "' must have the same dtype, got " + dtype_str(a) + " and " +
                             dtype_str(b));
    }
}

inline void check_ndim(const char* op, const char* arg, const py::array& a, py::ssize_t ndim) {
    if (a.ndim() != ndim) {
        std::ostringstream s;
        s << where(op, arg) << "must be " << ndim << "-D, got " << a.ndim()
          << "-D array of shape " << shape_str(a);
        throw py::value_error(s.str());
    }
}

// Exact shape; -1 in `expected` matches any extent.
inline void check_shape(const char* op, const char* arg, const py::array& a,
                        const std::vector<py::ssize_t>& expected) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(expected.size());
    for (size_t i = 0; ok && i < expected.size(); ++i) {
        ok = expected[i] < 0 || a.shape(static_cast<py::ssize_t>(i)) == expected[i];
    }
    if (!ok) {
        throw py::value_error(where(op, arg) + "has shape " + shape_str(a) + ", expected " +
                              shape_str(expected));
    }
}

inline void check_same_shape(const char* op, const char* arg_a, const py::array& a,
                             const char* arg_b, const py::array& b) {
    if (shape_of(a) != shape_of(b)) {
        throw py::value_error(std::string(op) + ": arguments '" + arg_a + "' and '" + arg_b +
                              "' must have the same shape, got " + shape_str(a) + " and " +
                              shape_str(b));
    }
}

// Kernels index flat memory, so views must be copied first (np.ascontiguousarray in Python).
inline void check_contiguous(const char* op, const char* arg, const py::array& a) {
    if (!(a.flags() & py::array::c_style)) {
        throw py::value_error(where(op, arg) + "of shape " + shape_str(a) +
                              " must be C-contiguous; call numpy.ascontiguousarray first");
    }
}

// An optional array argument that is not None: the array, once it is known to be a NumPy array
// of `like`'s dtype (TypeError otherwise). Callers check its shape and contiguity.
inline py::array optional_array(const char* op, const char* arg, const py::object& obj,
                                const char* like_arg, const py::array& like) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(where(op, arg) + "must be None or a numpy array, got " +
                             py::str(py::type::of(obj)).cast<std::string>());
    }
    const auto a = obj.cast<py::array>();
    check_same_dtype(op, like_arg, like, arg, a);
    return a;
}

// A new C-contiguous array with a's shape and element type T.
template <typename T>
py::array_t<T> empty_like(const py::array& a) {
    return py::array_t<T>(shape_of(a));
}

// Number of threads OpenMP would use for a parallel region (1 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Run body(begin, end) over [0, n) in chunks of `grain` items, in parallel when worthwhile.
template <typename Body>
void parallel_for(std::int64_t n, std::int64_t grain, const Body& body) {
    if (n <= 0) return;
    grain = std::max<std::int64_t>(grain, 1);
#ifdef _OPENMP
    const std::int64_t chunks = (n + grain - 1) / grain;
    if (chunks > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
            const std::int64_t begin = c * grain;
            body(begin, std::min(n, begin + grain));
        }
        return;
    }
#endif
    body(0, n);
}

// Elementwise loops: ~32K items per task keeps scheduling overhead far below the work.
constexpr std::int64_t kElementwiseGrain = 1 << 15;

// ----------------------------------------------------------------------------- checked int64
// Geometry that arrives as Python ints (stride, padding, dilation, kernel, i0, x_shape) can be
// anything up to 2**63 - 1, and signed overflow in index math is undefined behaviour that ends
// as an out-of-bounds read or write.  CheckedInt computes with __builtin_*_overflow and remembers
// whether any step overflowed; a binding computes its geometry with it and raises ValueError
// (through check_fits) before any memory is touched.
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
inline std::int64_t shape_elements(const char* op, const char* arg,
                                   const std::vector<std::int64_t>& shape) {
    CheckedInt nonzero = 1;
    bool empty = false;
    for (auto v : shape) {
        if (v < 0) {
            throw py::value_error(std::string(op) + ": argument '" + arg +
                                  "' has a negative extent: " +
                                  shape_str(std::vector<py::ssize_t>(shape.begin(), shape.end())));
        }
        if (v == 0) empty = true;
        else nonzero = nonzero * v;
    }
    const auto n = check_fits(op, nonzero * 16,  // 16: room for the bytes of a float64 buffer
                              std::string("the element count of '") + arg + "' " +
                                  shape_str(std::vector<py::ssize_t>(shape.begin(), shape.end())));
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
          << ") gives indices that overflow int64: the values are too large";
        throw py::value_error(m.str());
    }
    return out.value();
}

// ----------------------------------------------------------------------------- GIL and aliasing
// Kernels run with the GIL released, so another Python thread may rewrite any input meanwhile.
// Values that decide WHERE memory is read or written (class indices, argmax indices) must be
// checked and used from one read: either a private copy taken with the GIL held (pinned_copy),
// or one load per use (load_once: a relaxed atomic load, a plain mov on x86, which the compiler
// may not repeat after the check).  Float data may change under a racing writer (then the result
// is whatever it read), never the addresses.
template <typename T>
std::vector<T> pinned_copy(const py::array& a) {
    const T* p = static_cast<const T*>(a.data());
    return std::vector<T>(p, p + a.size());
}

template <typename T>
inline T load_once(const T* p) {
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
    return *static_cast<const volatile T*>(p);
#endif
}

// In-place kernels read some buffers and write others; when two of them share memory the
// result depends on the loop order (or races across threads).  ValueError naming both
// arguments when a written array overlaps any other one (read-only arrays may alias each
// other).  Arrays must be C-contiguous (checked before); empty arrays never overlap.
struct ArgBuffer {
    std::string name;
    const py::array* array;
    bool written;
};

inline void check_no_overlap(const char* op, const std::vector<ArgBuffer>& args) {
    struct Span {
        std::uintptr_t lo, hi;
        std::size_t arg;
    };
    std::vector<Span> spans;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const py::array& a = *args[i].array;
        if (a.size() == 0) continue;
        const auto lo = reinterpret_cast<std::uintptr_t>(a.data());
        spans.push_back({lo, lo + static_cast<std::uintptr_t>(a.nbytes()), i});
    }
    std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.lo < y.lo; });
    std::uintptr_t end_any = 0, end_written = 0;
    std::size_t last_any = 0, last_written = 0;
    for (const Span& s : spans) {
        const bool w = args[s.arg].written;
        std::size_t other = args.size();
        if (s.lo < end_written) other = last_written;
        else if (w && s.lo < end_any) other = last_any;
        if (other != args.size()) {
            throw py::value_error(std::string(op) + ": arguments '" + args[other].name +
                                  "' and '" + args[s.arg].name +
                                  "' share memory, but one of them is written in place; pass "
                                  "separate arrays (e.g. a .copy())");
        }
        if (s.hi > end_any) {
            end_any = s.hi;
            last_any = s.arg;
        }
        if (w && s.hi > end_written) {
            end_written = s.hi;
            last_written = s.arg;
        }
    }
}


// float32: a branch-free exp (Cephes' expf: range reduction by ln 2, degree-6 polynomial,
// 2^n through the exponent bits; ~1 ulp on [-87.3, 88.3], clamped outside, NaN propagates) so
// the loops vectorize, where libm's scalar expf/tanhf cost ~15 ns each.  float64 uses libm.
#if defined(__GNUC__)
#define MG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MG_ALWAYS_INLINE inline
#endif

MG_ALWAYS_INLINE float exp_f32(float x) {
    x = x < -87.3f ? -87.3f : x;  // NaN passes both tests unchanged
    x = x > 88.3f ? 88.3f : x;
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float t = x * 1.44269504088896341f + magic;
    const float n = t - magic;
    std::int32_t ti;
    std::memcpy(&ti, &t, sizeof ti);
    const std::int32_t ni = ti - 0x4B400000;  // the integer n (bits of magic removed)
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // x - n ln2, two parts
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    const std::int32_t bits = (ni + 127) << 23;  // 2^n
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

}  // namespace minigrad
