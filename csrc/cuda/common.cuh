// common.cuh: shared pieces of minigrad._cuda.
//
//   * DType, dispatch_float, Geom2d: from csrc/common/kernel_types.h, shared with minigrad._C
//     (the launchers below pick float/double with dispatch_float; host.cpp validates).
//   * CUDA_CHECK(call, name): turns a CUDA error into std::runtime_error (Python RuntimeError)
//     whose message names the kernel or API call and the CUDA error string.
//   * CUDA_CHECK_LAUNCH(name): checks the most recent kernel launch (launches are asynchronous,
//     so errors inside a kernel surface at the next synchronising call).
//   * grid_size(n): blocks for a grid-stride loop over n items.
//
// Entry points take CuPy device pointers as integers and CuPy's current stream; they never
// synchronise.  Checked by: tests/test_kernels.py and tests/test_kernels_cuda.py (host-side validation without a GPU; kernels vs
// the NumPy/CuPy reference under the `gpu` marker).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_types.h"

namespace minigrad {
namespace cuda {

using minigrad::DType;
using minigrad::Geom2d;

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

// ---- host entry points (one pair per op), called from host.cpp after validation ----
// elementwise.cu
void relu_forward(std::uintptr_t x, std::uintptr_t y, std::int64_t n, DType dtype,
                  std::uintptr_t stream);
void relu_backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t dx, std::int64_t n,
                   DType dtype, std::uintptr_t stream);

// Geom2d (kernel_types.h): the 2-D window geometry of im2col/col2im and pooling, computed and
// validated on the host by csrc/common/geometry.h, the same code as minigrad._C's.

// conv.cu: cols (N, C, KH, KW, OH, OW) <-> x (N, C, H, W)
void im2col(std::uintptr_t x, std::uintptr_t cols, const Geom2d& g, DType dtype,
            std::uintptr_t stream);
void col2im(std::uintptr_t cols, std::uintptr_t dx, const Geom2d& g, DType dtype,
            std::uintptr_t stream);

// pool.cu: x (N, C, H, W) -> y, indices (N, C, OH, OW); indices are int64 h*W + w
void maxpool2d_forward(std::uintptr_t x, std::uintptr_t y, std::uintptr_t indices,
                       const Geom2d& g, DType dtype, std::uintptr_t stream);
void maxpool2d_backward(std::uintptr_t dy, std::uintptr_t indices, std::uintptr_t dx,
                        const Geom2d& g, DType dtype, std::uintptr_t stream);
// divisor: 0 = PyTorch's window count rule, > 0 = divisor_override
void avgpool2d_forward(std::uintptr_t x, std::uintptr_t y, const Geom2d& g,
                       bool count_include_pad, std::int64_t divisor, DType dtype,
                       std::uintptr_t stream);
void avgpool2d_backward(std::uintptr_t dy, std::uintptr_t dx, const Geom2d& g,
                        bool count_include_pad, std::int64_t divisor, DType dtype,
                        std::uintptr_t stream);

// lstm.cu: gates/act/dgates (N, 4H); c_prev, h, c, tanh_c, dh, dc, dc_prev (N, H)
void lstm_cell_forward(std::uintptr_t gates, std::uintptr_t c_prev, std::uintptr_t h,
                       std::uintptr_t c, std::uintptr_t act, std::uintptr_t tanh_c,
                       std::int64_t N, std::int64_t H, DType dtype, std::uintptr_t stream);
void lstm_cell_backward(std::uintptr_t dh, std::uintptr_t dc, std::uintptr_t c_prev,
                        std::uintptr_t act, std::uintptr_t tanh_c, std::uintptr_t dgates,
                        std::uintptr_t dc_prev, std::int64_t N, std::int64_t H, DType dtype,
                        std::uintptr_t stream);

// optim.cu: in-place fused updates over a parameter list (validated in host.cpp)
struct SgdParam {
    std::uintptr_t p, g, m;  // m: momentum buffer (0 when momentum == 0)
    std::int64_t n;
    bool fresh;              // first momentum step: the buffer is set to the gradient
};
struct AdamParam {
    std::uintptr_t p, g, m, v, vmax;  // vmax: 0 unless amsgrad
    std::int64_t n;
    std::int64_t step;
};
// Parameters per launch: the table travels as a kernel argument (well under the 4 KB limit).
constexpr int kOptimTable = 32;
void sgd_step(const std::vector<SgdParam>& params, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, DType dtype,
              std::uintptr_t stream);
void adam_step(const std::vector<AdamParam>& params, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, bool decoupled, DType dtype,
               std::uintptr_t stream);

}  // namespace cuda
}  // namespace minigrad
