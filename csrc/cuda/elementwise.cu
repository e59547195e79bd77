// elementwise.cu: CUDA kernels for elementwise ops (so far ReLU), float32 and float64.
//
//   relu_forward_kernel:  y[i]  = x[i] < 0 ? 0 : x[i]      (NaN propagates, like NumPy)
//   relu_backward_kernel: dx[i] = x[i] <= 0 ? 0 : dy[i]    (0 at x == 0; NaN: dy)
//
// Shapes: flat contiguous buffers of n elements (views are made contiguous in
// minigrad/kernels/cuda.py).  Algorithm: grid-stride loop, 256 threads per block, launched on the
// caller's (CuPy's current) stream without synchronising; every launch is checked.
// Checked by: tests/test_kernels.py (`gpu` marker) against minigrad/kernels/reference.py on CuPy.
#include "common.cuh"

namespace minigrad {
namespace cuda {

namespace {

template <typename T>
__global__ void relu_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t n) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         i < n; i += stride) {
        const T v = x[i];
        y[i] = v < T(0) ? T(0) : v;
    }
}

template <typename T>
__global__ void relu_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                     T* __restrict__ dx, std::int64_t n) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         i < n; i += stride) {
        dx[i] = x[i] <= T(0) ? T(0) : dy[i];  // a NaN x passes dy, as PyTorch
    }
}

template <typename T>
void launch_relu_forward(std::uintptr_t x, std::uintptr_t y, std::int64_t n,
                         std::uintptr_t stream) {
    relu_forward_kernel<T><<<grid_size(n), kBlockSize, 0, as_stream(stream)>>>(
        reinterpret_cast<const T*>(x), reinterpret_cast<T*>(y), n);
    CUDA_CHECK_LAUNCH("relu_forward_kernel");
}

template <typename T>
void launch_relu_backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
                          std::uintptr_t stream) {
    relu_backward_kernel<T><<<grid_size(n), kBlockSize, 0, as_stream(stream)>>>(
        reinterpret_cast<const T*>(dy), reinterpret_cast<const T*>(x), reinterpret_cast<T*>(dx),
        n);
    CUDA_CHECK_LAUNCH("relu_backward_kernel");
}

}  // namespace

void relu_forward(std::uintptr_t x, std::uintptr_t y, std::int64_t n, DType dtype,
                  std::uintptr_t stream) {
    if (n == 0) return;
    dispatch_float(dtype, [&](auto t) { launch_relu_forward<decltype(t)>(x, y, n, stream); });
}

void relu_backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
                   DType dtype, std::uintptr_t stream) {
    if (n == 0) return;
    dispatch_float(dtype, [&](auto t) { launch_relu_backward<decltype(t)>(dy, x, dx, n, stream); });
}

}  // namespace cuda
}  // namespace minigrad
