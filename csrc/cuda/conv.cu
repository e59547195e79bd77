// conv.cu: im2col and col2im on the GPU, float32 and float64 (the CUDA twin of csrc/cpu/conv.cpp).
//
//   im2col_kernel: x (N, C, H, W) -> cols (N, C, KH, KW, OH, OW),
//       cols[n, c, kh, kw, oh, ow] = x[n, c, oh*sH - pH + kh*dH, ow*sW - pW + kw*dW] (0 outside)
//   col2im_kernel: cols (N, C, KH, KW, OH, OW) -> dx (N, C, H, W), the adjoint: each dx pixel
//       is the sum of every cols entry im2col read from it.
//
// Geometry (OH, OW) is validated and computed on the host (bindings.cpp).  The GEMM of conv2d
// stays in cuBLAS through CuPy (minigrad/kernels/cuda.py).
// Algorithm: im2col is one thread per cols element (grid-stride), writes coalesced along ow.
// col2im is a GATHER, one thread per dx pixel: for each (kh, kw) the only output position whose
// window puts that tap on the pixel is oh = (h + pH - kh*dH) / sH when that divides exactly and
// lands in [0, OH) (likewise ow).  No atomics, a fixed summation order (kh, then kw): the result
// is deterministic and each dx element is written exactly once (no zero-fill pass needed).
// Checked by: tests/test_kernels_cuda.py (`gpu` marker: vs minigrad/kernels/reference.py on
// CuPy arrays with odd shapes/stride/padding/dilation, both dtypes, NaN-poisoned outputs);
// tests/test_ops.py (conv2d-*-cuda: conv2d vs PyTorch CUDA, forward and backward); host-side
// validation runs without a GPU.
#include "common.cuh"

namespace minigrad {
namespace cuda {

namespace {

template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ cols, Geom2d g,
                              std::int64_t total) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         i < total; i += stride) {
        std::int64_t r = i;
        const std::int64_t ow = r % g.OW;
        r /= g.OW;
        const std::int64_t oh = r % g.OH;
        r /= g.OH;
        const std::int64_t kw = r % g.KW;
        r /= g.KW;
        const std::int64_t kh = r % g.KH;
        const std::int64_t plane = r / g.KH;  // n * C + c
        const std::int64_t ih = oh * g.sH - g.pH + kh * g.dH;
        const std::int64_t iw = ow * g.sW - g.pW + kw * g.dW;
        T v = T(0);
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) v = x[(plane * g.H + ih) * g.W + iw];
        cols[i] = v;
    }
}

template <typename T>
__global__ void col2im_kernel(const T* __restrict__ cols, T* __restrict__ dx, Geom2d g,
                              std::int64_t total) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    const std::int64_t plane_cols = g.KH * g.KW * g.OH * g.OW;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         i < total; i += stride) {
        const std::int64_t w = i % g.W;
        const std::int64_t h = (i / g.W) % g.H;
        const std::int64_t plane = i / (g.W * g.H);
        const T* cp = cols + plane * plane_cols;
        T sum = T(0);
        for (std::int64_t kh = 0; kh < g.KH; ++kh) {
            const std::int64_t th = h + g.pH - kh * g.dH;  // = oh * sH for the matching window
            if (th < 0 || th % g.sH != 0) continue;
            const std::int64_t oh = th / g.sH;
            if (oh >= g.OH) continue;
            for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t tw = w + g.pW - kw * g.dW;
                if (tw < 0 || tw % g.sW != 0) continue;
                const std::int64_t ow = tw / g.sW;
                if (ow >= g.OW) continue;
                sum += cp[((kh * g.KW + kw) * g.OH + oh) * g.OW + ow];
            }
        }
        dx[i] = sum;
    }
}

template <typename T>
void launch_im2col(std::uintptr_t x, std::uintptr_t cols, const Geom2d& g, std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.KH * g.KW * g.OH * g.OW;
    if (total == 0) return;
    im2col_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        reinterpret_cast<const T*>(x), reinterpret_cast<T*>(cols), g, total);
    CUDA_CHECK_LAUNCH("im2col_kernel");
}

template <typename T>
void launch_col2im(std::uintptr_t cols, std::uintptr_t dx, const Geom2d& g, std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.H * g.W;
    if (total == 0) return;
    col2im_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        reinterpret_cast<const T*>(cols), reinterpret_cast<T*>(dx), g, total);
    CUDA_CHECK_LAUNCH("col2im_kernel");
}

}  // namespace

void im2col(std::uintptr_t x, std::uintptr_t cols, const Geom2d& g, DType dtype,
            std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) { launch_im2col<decltype(t)>(x, cols, g, stream); });
}

void col2im(std::uintptr_t cols, std::uintptr_t dx, const Geom2d& g, DType dtype,
            std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) { launch_col2im<decltype(t)>(cols, dx, g, stream); });
}

}  // namespace cuda
}  // namespace minigrad
