// loss.cpp: fused softmax cross-entropy against class indices, float32 and float64.
//
//   cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing) -> (losses, lse)
//       logits (M, C), target (M,) int64, weight (C,) of logits' dtype or None
//       lse_i = log sum_c exp(x_ic);  t = target_i, ls = label_smoothing, w = 1 when None
//       losses_i = (1 - ls) w[t] (lse_i - x_it) + ls/C sum_c w[c] (lse_i - x_ic)   (M,)
//       losses_i = 0 where t == ignore_index (PyTorch's reduction='none')
//   cross_entropy_backward(dlosses, logits, target, lse, weight, ignore_index, label_smoothing)
//       -> dlogits (M, C) = dlosses_i (p_ic (w[t](1 - ls) + ls/C sum_c w[c])
//                                      - (1 - ls) w[t] [c == t] - ls/C w[c]),  p = softmax(x)
//       0 on ignored rows.
//
// Algorithm: one pass per row (max, then exp-sum with the picked and smoothing terms), OpenMP
// over rows with the GIL released; sums are accumulated in double for both dtypes.  The
// backward recomputes p from the saved lse, so nothing (M, C) is kept between the passes.
// Targets are copied and range-checked serially before the parallel region (IndexError naming
// the op, the class count and the bad value); the kernels read the checked copy.
// Checked by: tests/test_loss_cross_entropy.py against minigrad/kernels/reference.py and PyTorch
// (values, gradients, double backward), and with invalid arguments passed to _C directly;
// tests/test_native_safety.py rewrites the target from another thread during the call.
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "common.h"

namespace minigrad {

namespace {

struct CeArgs {
    std::int64_t M = 0, C = 0;
    DType dtype = DType::Float32;
    const py::array* weight = nullptr;  // null when None
};

// Validate logits, target and weight (and target range); shared by forward and backward.
CeArgs check_ce(const char* op, const py::array& logits, const py::array& target,
                const py::object& weight, std::int64_t ignore_index, double label_smoothing,
                std::optional<py::array>& weight_arr, std::vector<std::int64_t>& target_copy) {
    CeArgs a;
    a.dtype = check_float_dtype(op, "logits", logits);
    check_ndim(op, "logits", logits, 2);
    check_contiguous(op, "logits", logits);
    a.M = logits.shape(0);
    a.C = logits.shape(1);
    if (!target.dtype().is(py::dtype::of<std::int64_t>())) {
        throw py::type_error(where(op, "target") + "has dtype " + dtype_str(target) +
                             ", expected int64");
    }
    check_shape(op, "target", target, {a.M});
    check_contiguous(op, "target", target);
    if (!weight.is_none()) {
        if (!py::isinstance<py::array>(weight)) {
            throw py::type_error(where(op, "weight") + "must be a numpy array or None");
        }
        weight_arr = weight.cast<py::array>();
        check_float_dtype(op, "weight", *weight_arr);
        check_same_dtype(op, "logits", logits, "weight", *weight_arr);
        check_shape(op, "weight", *weight_arr, {a.C});
        check_contiguous(op, "weight", *weight_arr);
        a.weight = &*weight_arr;
    }
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
        throw py::value_error(std::string(op) + ": label_smoothing must be in [0, 1], got " +
                              std::to_string(label_smoothing));
    }
    // The kernels run with the GIL released, when another thread may rewrite `target`: they
    // index with this private copy, the one that is range-checked here (common.h pinned_copy).
    target_copy = pinned_copy<std::int64_t>(target);
    const std::int64_t* t = target_copy.data();
    for (std::int64_t i = 0; i < a.M; ++i) {
        if (t[i] != ignore_index && (t[i] < 0 || t[i] >= a.C)) {
            throw py::index_error(std::string(op) + ": target " + std::to_string(t[i]) +
                                  " is out of bounds for " + std::to_string(a.C) +
                                  " classes (valid range [0, " + std::to_string(a.C - 1) +
                                  "], ignore_index=" + std::to_string(ignore_index) + ")");
        }
    }
    return a;
}

std::int64_t row_grain(std::int64_t C) {
    return std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(C, 1));
}

template <typename T>
void ce_forward_impl(const T* x, const std::int64_t* target, const T* w, T* losses, T* lse,
                     std::int64_t M, std::int64_t C, std::int64_t ignore_index, double ls) {
    parallel_for(M, row_grain(C), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            const T* __restrict xr = x + i * C;
            T mx = -std::numeric_limits<T>::infinity();
            for (std::int64_t c = 0; c < C; ++c) mx = xr[c] > mx ? xr[c] : mx;
            if (!std::isfinite(mx)) mx = 0;  // all -inf: lse = -inf; nan/inf propagate below
            double sum = 0.0, wx = 0.0;  // sum exp(x - mx), sum w[c] x[c]
            for (std::int64_t c = 0; c < C; ++c) {
                sum += std::exp(static_cast<double>(xr[c] - mx));
            }
            const double l = std::log(sum) + static_cast<double>(mx);
            lse[i] = static_cast<T>(l);
            const std::int64_t t = target[i];
            if (t == ignore_index) {
                losses[i] = 0;
                continue;
            }
            const double wt = w ? static_cast<double>(w[t]) : 1.0;
            double loss = (1.0 - ls) * wt * (l - static_cast<double>(xr[t]));
            if (ls > 0.0) {
                double wsum = 0.0;
                for (std::int64_t c = 0; c < C; ++c) {
                    const double wc = w ? static_cast<double>(w[c]) : 1.0;
                    wsum += wc;
                    wx += wc * static_cast<double>(xr[c]);
                }
                loss += ls / static_cast<double>(C) * (wsum * l - wx);
            }
            losses[i] = static_cast<T>(loss);
        }
    });
}

template <typename T>
void ce_backward_impl(const T* dlosses, const T* x, const std::int64_t* target, const T* lse,
                      const T* w, T* dx, std::int64_t M, std::int64_t C,
                      std::int64_t ignore_index, double ls) {
    double wsum = static_cast<double>(C);
    if (w) {
        wsum = 0.0;
        for (std::int64_t c = 0; c < C; ++c) wsum += static_cast<double>(w[c]);
    }
    const double lsc = C ? ls / static_cast<double>(C) : 0.0;
    parallel_for(M, row_grain(C), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            const T* __restrict xr = x + i * C;
            T* __restrict dr = dx + i * C;
            const std::int64_t t = target[i];
            if (t == ignore_index) {
                for (std::int64_t c = 0; c < C; ++c) dr[c] = 0;
                continue;
            }
            const T g = dlosses[i];
            const T l = lse[i];
            const double wt = w ? static_cast<double>(w[t]) : 1.0;
            const T scale = static_cast<T>(((1.0 - ls) * wt + lsc * wsum)) * g;
            const T off = static_cast<T>(lsc) * g;
            if (w) {
                for (std::int64_t c = 0; c < C; ++c) {
                    dr[c] = static_cast<T>(std::exp(xr[c] - l)) * scale - off * w[c];
                }
            } else {
                for (std::int64_t c = 0; c < C; ++c) {
                    dr[c] = static_cast<T>(std::exp(xr[c] - l)) * scale - off;
                }
            }
            dr[t] -= static_cast<T>((1.0 - ls) * wt) * g;
        }
    });
}

}  // namespace

py::tuple cross_entropy_forward(const py::array& logits, const py::array& target,
                                const py::object& weight, std::int64_t ignore_index,
                                double label_smoothing) {
    const char* op = "cross_entropy_forward";
    std::optional<py::array> warr;
    std::vector<std::int64_t> target_copy;
    const CeArgs a = check_ce(op, logits, target, weight, ignore_index, label_smoothing, warr,
                              target_copy);
    const std::int64_t* t = target_copy.data();  // checked, and private to this call
    return dispatch_float(a.dtype, [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        py::array_t<T> losses(std::vector<py::ssize_t>{a.M}), lse(std::vector<py::ssize_t>{a.M});
        const T* w = a.weight ? static_cast<const T*>(a.weight->data()) : nullptr;
        const T* x = static_cast<const T*>(logits.data());
        T *lp = losses.mutable_data(), *sp = lse.mutable_data();
        {
            py::gil_scoped_release release;
            ce_forward_impl<T>(x, t, w, lp, sp, a.M, a.C, ignore_index, label_smoothing);
        }
        return py::make_tuple(losses, lse);
    });
}

py::array cross_entropy_backward(const py::array& dlosses, const py::array& logits,
                                 const py::array& target, const py::array& lse,
                                 const py::object& weight, std::int64_t ignore_index,
                                 double label_smoothing) {
    const char* op = "cross_entropy_backward";
    std::optional<py::array> warr;
    std::vector<std::int64_t> target_copy;
    const CeArgs a = check_ce(op, logits, target, weight, ignore_index, label_smoothing, warr,
                              target_copy);
    for (auto [name, arr] : {std::pair<const char*, const py::array*>{"dlosses", &dlosses},
                             {"lse", &lse}}) {
        check_float_dtype(op, name, *arr);
        check_same_dtype(op, "logits", logits, name, *arr);
        check_shape(op, name, *arr, {a.M});
        check_contiguous(op, name, *arr);
    }
    const std::int64_t* t = target_copy.data();  // checked, and private to this call
    return dispatch_float(a.dtype, [&](auto tag) -> py::array {
        using T = decltype(tag);
        py::array_t<T> dx(std::vector<py::ssize_t>{a.M, a.C});
        const T* w = a.weight ? static_cast<const T*>(a.weight->data()) : nullptr;
        const auto* g = static_cast<const T*>(dlosses.data());
        const auto* x = static_cast<const T*>(logits.data());
        const auto* l = static_cast<const T*>(lse.data());
        T* d = dx.mutable_data();
        {
            py::gil_scoped_release release;
            ce_backward_impl<T>(g, x, t, l, w, d, a.M, a.C, ignore_index, label_smoothing);
        }
        return dx;
    });
}

}  // namespace minigrad
