// optim.cu: fused SGD and Adam/AdamW updates on the GPU, in place over a whole parameter list,
// float32 and float64 (CUDA twin of csrc/cpu/optim.cpp; same arithmetic, which follows
// minigrad/optim/_functional.py and PyTorch's single-tensor optimizers operation by operation).
//
//   The per-element update rules (and the scalars rounded to T on the host) live in
//   optim_math.h, shared with the host twins _cuda.sgd_step_host / adam_step_host, so the
//   arithmetic these kernels run is tested on a machine without a GPU.
//
// Shapes: every parameter is a flat contiguous buffer of n_i elements (any n_i >= 0).
// Algorithm: a multi-tensor apply.  The host packs up to kOptimTable (32) parameters' pointers,
// sizes and per-parameter scalars (step size and sqrt(bias correction 2), which depend on each
// parameter's own step) into a table passed BY VALUE as a kernel argument (about 2 KB, under the
// 4 KB parameter limit), so there is no device allocation, no host->device copy and nothing to
// keep alive after the call.  blockIdx.y picks the parameter, blockIdx.x grid-strides over its
// elements; each element is read once and written once.  One launch per 32 parameters (a
// typical CNN is 1-2 launches; a list of more than 32 parameters takes ceil(n/32) launches).
// Scalars are computed in double on the host and rounded to T, as the C++ twin does.
// Checked by: tests/test_optim_formula.py (no GPU: the shared formula through the host twins vs
// the reference and torch.optim, every option combination); tests/test_kernels_cuda.py (`gpu`
// marker: several steps vs the NumPy reference and torch.optim on CUDA, parameter lists with empty, 0-d and odd-sized entries and > 32 entries,
// every option combination, both dtypes); host-side validation runs without a GPU.
#include <algorithm>
#include <cmath>

#include "common.cuh"
#include "optim_math.h"

namespace minigrad {
namespace cuda {

namespace {

namespace om = minigrad::optim_math;
constexpr int K = kOptimTable;
constexpr std::int64_t kMaxBlocksX = 2048;  // per parameter: enough to fill an H100 on one param

template <typename T>
struct SgdTable {
    T* p[K];
    const T* g[K];
    T* m[K];
    std::int64_t n[K];
    int fresh[K];
};

template <typename T>
struct AdamTable {
    T* p[K];
    const T* g[K];
    T* m[K];
    T* v[K];
    T* vmax[K];
    std::int64_t n[K];
    T step_size[K];
    T bc2_sqrt[K];
};

template <typename T>
__global__ void sgd_step_kernel(SgdTable<T> t, om::SgdScalars<T> k) {
    const int q = blockIdx.y;
    const std::int64_t n = t.n[q];
    T* __restrict__ p = t.p[q];
    const T* __restrict__ g = t.g[q];
    T* __restrict__ m = t.m[q];
    const bool first = t.fresh[q] != 0;
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         j < n; j += stride) {
        om::sgd_update(p, g, m, j, first, k);
    }
}

template <typename T>
__global__ void adam_step_kernel(AdamTable<T> t, om::AdamScalars<T> k) {
    const int q = blockIdx.y;
    const std::int64_t n = t.n[q];
    T* __restrict__ p = t.p[q];
    const T* __restrict__ g = t.g[q];
    T* __restrict__ m = t.m[q];
    T* __restrict__ v = t.v[q];
    T* __restrict__ vmax = t.vmax[q];
    const T ss = t.step_size[q], bc2s = t.bc2_sqrt[q];
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         j < n; j += stride) {
        om::adam_update(p, g, m, v, vmax, j, ss, bc2s, k);
    }
}

unsigned int blocks_for(std::int64_t max_n) {
    const std::int64_t b = (max_n + kBlockSize - 1) / kBlockSize;
    return static_cast<unsigned int>(std::max<std::int64_t>(1, std::min(b, kMaxBlocksX)));
}

template <typename T>
void sgd_typed(const std::vector<SgdParam>& params, double lr, double momentum,
               double dampening, double wd, bool nesterov, bool maximize, std::uintptr_t s) {
    const auto k = om::make_sgd_scalars<T>(lr, momentum, dampening, wd, nesterov, maximize);
    SgdTable<T> t{};
    int count = 0;
    std::int64_t max_n = 0;
    auto flush = [&]() {
        if (count == 0) return;
        const dim3 grid(blocks_for(max_n), static_cast<unsigned int>(count));
        sgd_step_kernel<T><<<grid, kBlockSize, 0, as_stream(s)>>>(t, k);
        CUDA_CHECK_LAUNCH("sgd_step_kernel");
        t = SgdTable<T>{};
        count = 0;
        max_n = 0;
    };
    for (const SgdParam& q : params) {
        if (q.n == 0) continue;  // nothing to update (and a null pointer is allowed)
        t.p[count] = reinterpret_cast<T*>(q.p);
        t.g[count] = reinterpret_cast<const T*>(q.g);
        t.m[count] = reinterpret_cast<T*>(q.m);
        t.n[count] = q.n;
        t.fresh[count] = q.fresh ? 1 : 0;
        max_n = std::max(max_n, q.n);
        if (++count == K) flush();
    }
    flush();
}

template <typename T>
void adam_typed(const std::vector<AdamParam>& params, double lr, double beta1, double beta2,
                double eps, double wd, bool amsgrad, bool decoupled, std::uintptr_t s) {
    const auto k = om::make_adam_scalars<T>(lr, beta1, beta2, eps, wd, amsgrad, decoupled);
    AdamTable<T> t{};
    int count = 0;
    std::int64_t max_n = 0;
    auto flush = [&]() {
        if (count == 0) return;
        const dim3 grid(blocks_for(max_n), static_cast<unsigned int>(count));
        adam_step_kernel<T><<<grid, kBlockSize, 0, as_stream(s)>>>(t, k);
        CUDA_CHECK_LAUNCH("adam_step_kernel");
        t = AdamTable<T>{};
        count = 0;
        max_n = 0;
    };
    for (const AdamParam& q : params) {
        if (q.n == 0) continue;
        t.p[count] = reinterpret_cast<T*>(q.p);
        t.g[count] = reinterpret_cast<const T*>(q.g);
        t.m[count] = reinterpret_cast<T*>(q.m);
        t.v[count] = reinterpret_cast<T*>(q.v);
        t.vmax[count] = reinterpret_cast<T*>(q.vmax);
        t.n[count] = q.n;
        // per-parameter scalars in double, as Python computes them, then rounded to T
        om::adam_step_scalars<T>(lr, beta1, beta2, q.step, &t.step_size[count],
                                 &t.bc2_sqrt[count]);
        max_n = std::max(max_n, q.n);
        if (++count == K) flush();
    }
    flush();
}

}  // namespace

void sgd_step(const std::vector<SgdParam>& params, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, DType dtype,
              std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        sgd_typed<decltype(t)>(params, lr, momentum, dampening, weight_decay, nesterov, maximize,
                               stream);
    });
}

void adam_step(const std::vector<AdamParam>& params, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, bool decoupled, DType dtype,
               std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        adam_typed<decltype(t)>(params, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled,
                                stream);
    });
}

}  // namespace cuda
}  // namespace minigrad
