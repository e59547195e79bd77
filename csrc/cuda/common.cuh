// common.cuh: shared pieces of minigrad._cuda.
//
//   * DType: the element types kernels are instantiated for (validated in bindings.cpp).
//   * CUDA_CHECK(call, name): turns a CUDA error into std::runtime_error (Python RuntimeError)
//     whose message names the kernel or API call and the CUDA error string.
//   * CUDA_CHECK_LAUNCH(name): checks the most recent kernel launch (launches are asynchronous,
//     so errors inside a kernel surface at the next synchronising call).
//   * grid_size(n): blocks for a grid-stride loop over n items.
//
// Entry points take CuPy device pointers as integers and CuPy's current stream; they never
// synchronise.  Checked by: tests/test_kernels.py (host-side validation without a GPU; kernels vs
// the NumPy/CuPy reference under the `gpu` marker).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace minigrad {
namespace cuda {

enum class DType { Float32, Float64 };

inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
    throw std::runtime_error(std::string("minigrad._cuda: ") + what + " failed: " +
                             cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") at " +
                             file + ":" + std::to_string(line));
}

#define CUDA_CHECK(call, name)                                                    \
    do {                                                                          \
        cudaError_t err_ = (call);                                                \
        if (err_ != cudaSuccess) {                                                \
            minigrad::cuda::throw_cuda_error(err_, name, __FILE__, __LINE__);     \
        }                                                                         \
    } while (0)

#define CUDA_CHECK_LAUNCH(name) CUDA_CHECK(cudaGetLastError(), name)

constexpr int kBlockSize = 256;

// Blocks for a grid-stride loop: enough to fill the GPU, capped so huge n still launches.
inline unsigned int grid_size(std::int64_t n) {
    const std::int64_t blocks = (n + kBlockSize - 1) / kBlockSize;
    return static_cast<unsigned int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

inline cudaStream_t as_stream(std::uintptr_t stream) {
    return reinterpret_cast<cudaStream_t>(stream);
}

// ---- host entry points (one pair per op), called from bindings.cpp after validation ----
// elementwise.cu
void relu_forward(std::uintptr_t x, std::uintptr_t y, std::int64_t n, DType dtype,
                  std::uintptr_t stream);
void relu_backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
                   DType dtype, std::uintptr_t stream);

}  // namespace cuda
}  // namespace minigrad
