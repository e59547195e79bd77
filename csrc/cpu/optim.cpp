// optim.cpp: fused optimizer updates, in place over a whole list of parameters, one pass each.
//
//   sgd_step(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov,
//            maximize)
//   adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step, lr, beta1, beta2,
//             eps, weight_decay, amsgrad, decoupled)
//
// Same signatures and arithmetic as minigrad/optim/_functional.py (which follows PyTorch's
// single-tensor optimizers operation by operation).  Every params[i] is updated in place, with
// grads[i] (same shape and dtype, any shape) read only; momentum_buffers[i] may be None before
// the first momentum step: a buffer is then allocated here, set to the gradient, and stored
// back into the list.  `step` is one int or one int per parameter.
// Algorithm: all arrays are validated with the GIL held, then every parameter is cut into
// chunks of ~32K elements and one OpenMP loop runs over all chunks of all parameters with the
// GIL released: each element is read and written once (p, g, m, v in registers).
// Checked by: tests/test_kernels.py against the NumPy reference on several parameter lists
// (empty, 0-d, odd sizes), both dtypes, every option combination, and with invalid lists.
#include <cmath>

#include "common.h"

namespace minigrad {

namespace {

struct Chunk {
    std::int64_t param, begin, end;
};

std::vector<Chunk> make_chunks(const std::vector<std::int64_t>& sizes) {
    std::vector<Chunk> chunks;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(sizes.size()); ++i) {
        for (std::int64_t b = 0; b < sizes[i]; b += kElementwiseGrain) {
            chunks.push_back({i, b, std::min(sizes[i], b + kElementwiseGrain)});
        }
    }
    return chunks;
}

template <typename Body>
void for_chunks(const std::vector<Chunk>& chunks, const Body& body) {
    const std::int64_t n = static_cast<std::int64_t>(chunks.size());
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > 1)
#endif
    for (std::int64_t c = 0; c < n; ++c) body(chunks[c]);
}

// Validates list[i] as an array like `ref` (dtype, shape, contiguity; writeable if asked).
py::array list_item(const char* op, const char* name, const py::list& list, std::size_t i,
                    const py::array& ref, bool writeable) {
    py::object obj = list[i];
    const std::string arg = std::string(name) + "[" + std::to_string(i) + "]";
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(where(op, arg.c_str()) + "must be a numpy array, got " +
                             py::str(py::type::of(obj)).cast<std::string>());
    }
    py::array a = obj.cast<py::array>();
    check_float_dtype(op, arg.c_str(), a);
    if (!a.dtype().is(ref.dtype())) {
        throw py::type_error(where(op, arg.c_str()) + "has dtype " + dtype_str(a) +
                             ", expected " + dtype_str(ref) + " like params[" +
                             std::to_string(i) + "]");
    }
    if (shape_of(a) != shape_of(ref)) {
        throw py::value_error(where(op, arg.c_str()) + "has shape " + shape_str(a) +
                              ", expected " + shape_str(ref) + " like params[" +
                              std::to_string(i) + "]");
    }
    check_contiguous(op, arg.c_str(), a);
    if (writeable && !a.writeable()) {
        throw py::value_error(where(op, arg.c_str()) + "is read-only; it is updated in place");
    }
    return a;
}

void check_lengths(const char* op, std::size_t n, const char* name, const py::list& list) {
    check_list_length(op, name, list.size(), n);  // csrc/common/checks.h, shared with _cuda
}

// params[i], validated like list_item (writeable); every parameter has params[0]'s dtype.
py::array param_item(const char* op, const py::list& params, std::size_t i,
                     const std::vector<py::array>& previous) {
    py::object obj = params[i];
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(std::string(op) + ": argument 'params[" + std::to_string(i) +
                             "]' must be a numpy array");
    }
    py::array pi = obj.cast<py::array>();
    py::array a = list_item(op, "params", params, i, pi, true);
    if (i > 0 && !pi.dtype().is(previous[0].dtype())) {
        throw py::type_error(std::string(op) + ": every parameter must have one dtype, got " +
                             dtype_str(previous[0]) + " and " + dtype_str(pi));
    }
    return a;
}

// Every in-place buffer must be disjoint from every other argument (a parameter listed twice,
// or a state buffer that is the parameter itself, would be updated twice or in a race).
void check_lists_disjoint(const char* op, const std::vector<std::vector<py::array>*>& lists,
                          const std::vector<const char*>& names, const std::vector<bool>& written) {
    std::vector<ArgBuffer> args;
    for (std::size_t l = 0; l < lists.size(); ++l) {
        for (std::size_t i = 0; i < lists[l]->size(); ++i) {
            args.push_back({std::string(names[l]) + "[" + std::to_string(i) + "]",
                            &(*lists[l])[i], written[l]});
        }
    }
    check_no_overlap(op, args);
}

template <typename T>
T* ptr(const py::array& a) {
    return static_cast<T*>(const_cast<void*>(a.data()));
}

// ----------------------------------------------------------------------------- SGD
template <typename T, bool Momentum, bool First>
void sgd_loop(T* __restrict pp, const T* __restrict gp, T* __restrict mp, std::int64_t len,
              T lr, T momentum, T damp, T wd, bool use_wd, bool nesterov, bool maximize) {
    const T sign = maximize ? T(-1) : T(1), wd_eff = use_wd ? wd : T(0);
    for (std::int64_t j = 0; j < len; ++j) {
        T grad = sign * gp[j];
        grad = use_wd ? grad + wd_eff * pp[j] : grad;
        if constexpr (Momentum) {
            const T buf = First ? grad : mp[j] * momentum + damp * grad;
            mp[j] = buf;
            grad = nesterov ? grad + momentum * buf : buf;
        }
        pp[j] -= lr * grad;
    }
}

template <typename T>
void sgd_typed(const std::vector<py::array>& p, const std::vector<py::array>& g,
               const std::vector<py::array>& m, const std::vector<char>& fresh, double lr_,
               double momentum_, double dampening_, double wd_, bool nesterov, bool maximize) {
    const std::size_t n = p.size();
    std::vector<T*> P(n), M(n);
    std::vector<const T*> G(n);
    std::vector<std::int64_t> sizes(n);
    for (std::size_t i = 0; i < n; ++i) {
        P[i] = ptr<T>(p[i]);
        G[i] = ptr<T>(g[i]);
        M[i] = m.empty() ? nullptr : ptr<T>(m[i]);
        sizes[i] = p[i].size();
    }
    const auto chunks = make_chunks(sizes);
    const T lr = T(lr_), momentum = T(momentum_), damp = T(1 - dampening_), wd = T(wd_);
    const bool use_momentum = momentum_ != 0, use_wd = wd_ != 0;
    py::gil_scoped_release nogil;
    for_chunks(chunks, [&](const Chunk& c) {
        const bool first = use_momentum && fresh[c.param];
        const std::int64_t len = c.end - c.begin;
        T* pp = P[c.param] + c.begin;
        const T* gp = G[c.param] + c.begin;
        T* mp = M[c.param] ? M[c.param] + c.begin : nullptr;
        // dispatch the options once per chunk so every inner loop is branch-free (vectorized)
        if (!use_momentum) {
            sgd_loop<T, false, false>(pp, gp, mp, len, lr, momentum, damp, wd, use_wd,
                                      nesterov, maximize);
        } else if (first) {
            sgd_loop<T, true, true>(pp, gp, mp, len, lr, momentum, damp, wd, use_wd, nesterov,
                                    maximize);
        } else {
            sgd_loop<T, true, false>(pp, gp, mp, len, lr, momentum, damp, wd, use_wd, nesterov,
                                     maximize);
        }
    });
}

// ----------------------------------------------------------------------------- Adam / AdamW
template <typename T>
struct AdamScalars {
    T step_size, bc2_sqrt, weight, one_minus_weight, beta2, one_minus_beta2, eps, wd, decay;
};

// WD: 0 none, 1 L2 through the gradient (Adam), 2 decoupled (AdamW).
template <typename T, int WD, bool AMSGrad>
void adam_loop(T* __restrict pp, const T* __restrict gp, T* __restrict mp, T* __restrict vp,
               T* __restrict vmp, std::int64_t len, const AdamScalars<T>& k, bool small_weight) {
    const T ss = k.step_size, bc2s = k.bc2_sqrt, w = k.weight, omw = k.one_minus_weight;
    const T b2 = k.beta2, omb2 = k.one_minus_beta2, eps = k.eps, wd = k.wd, decay = k.decay;
    for (std::int64_t j = 0; j < len; ++j) {
        T grad = gp[j];
        T param = pp[j];
        if constexpr (WD == 2) param *= decay;
        if constexpr (WD == 1) grad = grad + wd * param;
        const T m0 = mp[j];
        // lerp(m, g, w) computed as torch.lerp does for either size of w (loop-invariant pick)
        const T mj = small_weight ? m0 + w * (grad - m0) : grad - (grad - m0) * omw;
        T vj = vp[j] * b2;
        vj += omb2 * grad * grad;
        T denom_sq = vj;
        if constexpr (AMSGrad) {
            denom_sq = vmp[j] > vj ? vmp[j] : vj;
            vmp[j] = denom_sq;
        }
        const T denom = std::sqrt(denom_sq) / bc2s + eps;
        param += (-ss * mj) / denom;
        mp[j] = mj;
        vp[j] = vj;
        pp[j] = param;
    }
}

template <typename T>
void adam_typed(const std::vector<py::array>& p, const std::vector<py::array>& g,
                const std::vector<py::array>& m, const std::vector<py::array>& v,
                const std::vector<py::array>& vmax, const std::vector<std::int64_t>& steps,
                double lr, double beta1_, double beta2_, double eps_, double wd_, bool amsgrad,
                bool decoupled) {
    const std::size_t n = p.size();
    std::vector<T*> P(n), M(n), V(n), VM(n);
    std::vector<const T*> G(n);
    std::vector<std::int64_t> sizes(n);
    std::vector<T> step_size(n), bc2_sqrt(n);
    for (std::size_t i = 0; i < n; ++i) {
        P[i] = ptr<T>(p[i]);
        G[i] = ptr<T>(g[i]);
        M[i] = ptr<T>(m[i]);
        V[i] = ptr<T>(v[i]);
        VM[i] = amsgrad ? ptr<T>(vmax[i]) : nullptr;
        sizes[i] = p[i].size();
        // scalars in double, as Python computes them, then rounded like NumPy's weak floats
        const double bc1 = 1 - std::pow(beta1_, double(steps[i]));
        const double bc2 = 1 - std::pow(beta2_, double(steps[i]));
        step_size[i] = T(lr / bc1);
        bc2_sqrt[i] = T(std::sqrt(bc2));
    }
    const auto chunks = make_chunks(sizes);
    const double w1 = 1 - beta1_;
    const T weight = T(w1), one_minus_weight = T(1 - w1), beta2 = T(beta2_),
            one_minus_beta2 = T(1 - beta2_), eps = T(eps_), wd = T(wd_),
            decay = T(1 - lr * wd_);
    const bool small_weight = std::abs(w1) < 0.5, use_wd = wd_ != 0;
    py::gil_scoped_release nogil;
    for_chunks(chunks, [&](const Chunk& c) {
        const std::int64_t i = c.param, b = c.begin, len = c.end - c.begin;
        const AdamScalars<T> k{step_size[i], bc2_sqrt[i], weight, one_minus_weight, beta2,
                               one_minus_beta2, eps, wd, decay};
        T* vm = amsgrad ? VM[i] + b : nullptr;
        // options dispatched once per chunk: each inner loop is branch-free (vectorized)
        const int mode = (use_wd ? (decoupled ? 2 : 1) : 0);
        T *p = P[i] + b, *m = M[i] + b, *v = V[i] + b;
        const T* g = G[i] + b;
        if (amsgrad) {
            if (mode == 0) adam_loop<T, 0, true>(p, g, m, v, vm, len, k, small_weight);
            if (mode == 1) adam_loop<T, 1, true>(p, g, m, v, vm, len, k, small_weight);
            if (mode == 2) adam_loop<T, 2, true>(p, g, m, v, vm, len, k, small_weight);
        } else {
            if (mode == 0) adam_loop<T, 0, false>(p, g, m, v, vm, len, k, small_weight);
            if (mode == 1) adam_loop<T, 1, false>(p, g, m, v, vm, len, k, small_weight);
            if (mode == 2) adam_loop<T, 2, false>(p, g, m, v, vm, len, k, small_weight);
        }
    });
}

}  // namespace

void sgd_step(const py::list& params, const py::list& grads, py::list momentum_buffers,
              double lr, double momentum, double dampening, double weight_decay, bool nesterov,
              bool maximize) {
    const char* op = "sgd_step";
    const std::size_t n = params.size();
    check_lengths(op, n, "grads", grads);
    if (momentum != 0) check_lengths(op, n, "momentum_buffers", momentum_buffers);
    std::vector<py::array> p, g, m;
    std::vector<char> fresh(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        p.push_back(param_item(op, params, i, p));
        const py::array pi = p.back();
        g.push_back(list_item(op, "grads", grads, i, pi, false));
    }
    if (momentum != 0) {
        for (std::size_t i = 0; i < n; ++i) {
            if (py::object(momentum_buffers[i]).is_none()) {
                momentum_buffers[i] = py::array(p[i].dtype(), shape_of(p[i]));
                fresh[i] = 1;
            }
            m.push_back(list_item(op, "momentum_buffers", momentum_buffers, i, p[i], true));
        }
    }
    check_lists_disjoint(op, {&p, &g, &m}, {"params", "grads", "momentum_buffers"},
                         {true, false, true});
    if (n == 0) return;
    dispatch_float(check_float_dtype(op, "params[0]", p[0]), [&](auto t) {
        sgd_typed<decltype(t)>(p, g, m, fresh, lr, momentum, dampening, weight_decay, nesterov,
                               maximize);
    });
}

void adam_step(const py::list& params, const py::list& grads, const py::list& exp_avgs,
               const py::list& exp_avg_sqs, const py::object& max_exp_avg_sqs,
               const py::object& step, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool amsgrad, bool decoupled) {
    const char* op = "adam_step";
    const std::size_t n = params.size();
    check_lengths(op, n, "grads", grads);
    check_lengths(op, n, "exp_avgs", exp_avgs);
    check_lengths(op, n, "exp_avg_sqs", exp_avg_sqs);
    py::list vmax_list;
    if (amsgrad) {
        if (!py::isinstance<py::list>(max_exp_avg_sqs)) {
            throw py::type_error(std::string(op) + ": 'max_exp_avg_sqs' must be a list when "
                                 "amsgrad=True");
        }
        vmax_list = max_exp_avg_sqs.cast<py::list>();
        check_lengths(op, n, "max_exp_avg_sqs", vmax_list);
    }
    std::vector<std::int64_t> steps(n);
    if (py::isinstance<py::int_>(step)) {
        std::fill(steps.begin(), steps.end(), step.cast<std::int64_t>());
    } else {
        py::sequence seq = step.cast<py::sequence>();
        if (seq.size() != n) {
            throw py::value_error(std::string(op) + ": 'step' has " + std::to_string(seq.size()) +
                                  " entries, expected " + std::to_string(n));
        }
        for (std::size_t i = 0; i < n; ++i) steps[i] = py::int_(seq[i]).cast<std::int64_t>();
    }
    for (auto s : steps) check_step(op, s);
    std::vector<py::array> p, g, m, v, vm;
    for (std::size_t i = 0; i < n; ++i) {
        p.push_back(param_item(op, params, i, p));
        const py::array pi = p.back();
        g.push_back(list_item(op, "grads", grads, i, pi, false));
        m.push_back(list_item(op, "exp_avgs", exp_avgs, i, pi, true));
        v.push_back(list_item(op, "exp_avg_sqs", exp_avg_sqs, i, pi, true));
        if (amsgrad) vm.push_back(list_item(op, "max_exp_avg_sqs", vmax_list, i, pi, true));
    }
    check_lists_disjoint(op, {&p, &g, &m, &v, &vm},
                         {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"},
                         {true, false, true, true, true});
    if (n == 0) return;
    dispatch_float(check_float_dtype(op, "params[0]", p[0]), [&](auto t) {
        adam_typed<decltype(t)>(p, g, m, v, vm, steps, lr, beta1, beta2, eps, weight_decay,
                                amsgrad, decoupled);
    });
}

}  // namespace minigrad
