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
//   * from csrc/common (shared with the host side of minigrad._cuda): DType and dispatch_float
//     (kernel_types.h), CheckedInt (checked_int.h), shape_str / check_fits / shape_elements /
//     window_out_size and the optimizer and pooling argument rules (checks.h), conv_geometry /
//     pool_geometry (geometry.h): overflow-checked int64 geometry for arguments that come from
//     Python as arbitrary ints; ValueError instead of a wrapped index.
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

#include "checked_int.h"
#include "checks.h"
#include "geometry.h"
#include "kernel_types.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace minigrad {

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
