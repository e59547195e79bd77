// optim_math.h: the per-element SGD and Adam/AdamW/AMSGrad update rules, written ONCE and
// compiled twice: by nvcc into the kernels of optim.cu, and by the host C++ compiler into the
// host twins `_cuda.sgd_step_host` / `_cuda.adam_step_host` (bindings.cpp).  The host twins
// run the very same arithmetic (same scalars, rounded to T on the host the same way, same
// operation order) on NumPy arrays, so a wrong formula in the GPU kernel is caught on a machine
// without a GPU: tests/test_optim_formula.py compares the host twins with
// minigrad.kernels.reference and torch.optim for every option combination.
//
//   SGD:  g' = (maximize ? -g : g) + wd*p
//         buf = fresh ? g' : mu*buf + (1-damp)*g'       (momentum != 0)
//         p  -= lr * (momentum ? (nesterov ? g' + mu*buf : buf) : g')
//   Adam: AdamW p *= 1 - lr*wd  |  Adam g += wd*p;  m = lerp(m, g, 1-b1)
//         v = b2*v + (1-b2)*g^2;  [vmax = max(vmax, v)];  p += -(lr/bc1)*m / (sqrt(v')/sqrt(bc2) + eps)
// The arithmetic follows PyTorch's single-tensor optimizers operation by operation.
// Header-only, no CUDA headers: plain C++17 when not compiled by nvcc.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MG_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MG_HOST_DEVICE inline
#endif

namespace minigrad {
namespace optim_math {

template <typename T>
struct SgdScalars {
    T lr, momentum, one_minus_damp, wd;
    bool use_momentum, use_wd, nesterov, maximize;
};

template <typename T>
struct AdamScalars {
    T weight, one_minus_weight, beta2, one_minus_beta2, eps, wd, decay;
    int wd_mode;  // 0 none, 1 L2 through the gradient (Adam), 2 decoupled (AdamW)
    bool amsgrad, small_weight;
};

// Scalars are computed in double on the host and rounded to T once.
template <typename T>
inline SgdScalars<T> make_sgd_scalars(double lr, double momentum, double dampening, double wd,
                                      bool nesterov, bool maximize) {
    return SgdScalars<T>{T(lr),         T(momentum), T(1 - dampening), T(wd),
                         momentum != 0, wd != 0,     nesterov,         maximize};
}

template <typename T>
inline AdamScalars<T> make_adam_scalars(double lr, double beta1, double beta2, double eps,
                                        double wd, bool amsgrad, bool decoupled) {
    const double w1 = 1 - beta1;
    return AdamScalars<T>{T(w1),
                          T(1 - w1),
                          T(beta2),
                          T(1 - beta2),
                          T(eps),
                          T(wd),
                          T(1 - lr * wd),
                          wd != 0 ? (decoupled ? 2 : 1) : 0,
                          amsgrad,
                          std::abs(w1) < 0.5};
}

// Per-parameter scalars that depend on that parameter's own step count (>= 1).
template <typename T>
inline void adam_step_scalars(double lr, double beta1, double beta2, std::int64_t step,
                              T* step_size, T* bc2_sqrt) {
    const double bc1 = 1 - std::pow(beta1, double(step));
    const double bc2 = 1 - std::pow(beta2, double(step));
    *step_size = T(lr / bc1);
    *bc2_sqrt = T(std::sqrt(bc2));
}

// One element of SGD: p[j], g[j], m[j] (m unused without momentum); `first` = fresh buffer.
template <typename T>
MG_HOST_DEVICE void sgd_update(T* p, const T* g, T* m, std::int64_t j, bool first,
                               const SgdScalars<T>& k) {
    T grad = k.maximize ? -g[j] : g[j];
    const T pj = p[j];
    if (k.use_wd) grad = grad + k.wd * pj;
    if (k.use_momentum) {
        const T buf = first ? grad : m[j] * k.momentum + k.one_minus_damp * grad;
        m[j] = buf;
        grad = k.nesterov ? grad + k.momentum * buf : buf;
    }
    p[j] = pj - k.lr * grad;
}

// One element of Adam/AdamW (vmax read/written only with amsgrad).
template <typename T>
MG_HOST_DEVICE void adam_update(T* p, const T* g, T* m, T* v, T* vmax, std::int64_t j, T ss,
                                T bc2s, const AdamScalars<T>& k) {
    using std::sqrt;
    T grad = g[j];
    T param = p[j];
    if (k.wd_mode == 2) param *= k.decay;
    if (k.wd_mode == 1) grad = grad + k.wd * param;
    const T m0 = m[j];
    const T mj = k.small_weight ? m0 + k.weight * (grad - m0)
                                : grad - (grad - m0) * k.one_minus_weight;
    T vj = v[j] * k.beta2;
    vj += k.one_minus_beta2 * grad * grad;
    T denom_sq = vj;
    if (k.amsgrad) {
        const T vm = vmax[j];
        denom_sq = vm > vj ? vm : vj;
        vmax[j] = denom_sq;
    }
    const T denom = sqrt(denom_sq) / bc2s + k.eps;
    param += (-ss * mj) / denom;
    m[j] = mj;
    v[j] = vj;
    p[j] = param;
}

}  // namespace optim_math
}  // namespace minigrad
