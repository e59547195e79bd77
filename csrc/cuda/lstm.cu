// lstm.cu: the fused LSTM cell tail on the GPU, float32 and float64 (CUDA twin of
// csrc/cpu/lstm.cpp; the gate matmuls stay in cuBLAS through CuPy, minigrad/ops/rnn.py).
//
//   lstm_cell_forward_kernel: gates (N, 4H) in PyTorch's block order [i | f | g | o], c_prev (N, H)
//       act = [sigmoid(i) | sigmoid(f) | tanh(g) | sigmoid(o)] (N, 4H)
//       c = f*c_prev + i*g, tanh_c = tanh(c), h = o*tanh_c        (N, H) each
//   lstm_cell_backward_kernel: dh, dc, c_prev, tanh_c (N, H), act (N, 4H) ->
//       dc_total = dc + dh*o*(1 - tanh_c^2)
//       dgates = [dc_total*g*i(1-i) | dc_total*c_prev*f(1-f) | dc_total*i*(1-g^2) | dh*tanh_c*o(1-o)]
//       dc_prev = dc_total*f
//
// Algorithm: one thread per (n, j) in N*H (grid-stride): reads the unit's four gates, writes
// all outputs of that unit; every element read once and written once.  Consecutive threads
// touch consecutive j, so each of the four gate blocks is read coalesced.  IEEE exp/tanh (no
// fast math) so results match the NumPy reference to a few ulps.
// Checked by: tests/test_kernels_cuda.py (`gpu` marker: vs minigrad/kernels/reference.py on
// CuPy arrays with odd N, H, both dtypes, NaN-poisoned outputs; vs a torch.nn.LSTMCell step on
// CUDA); host-side validation runs without a GPU.
#include "common.cuh"

namespace minigrad {
namespace cuda {

namespace {

__device__ __forceinline__ float sigmoid_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double sigmoid_(double x) { return 1.0 / (1.0 + exp(-x)); }
__device__ __forceinline__ float tanh_(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_(double x) { return tanh(x); }

template <typename T>
__global__ void lstm_cell_forward_kernel(const T* __restrict__ gates, const T* __restrict__ c_prev,
                                         T* __restrict__ h, T* __restrict__ c,
                                         T* __restrict__ act, T* __restrict__ tanh_c,
                                         std::int64_t H, std::int64_t total) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < total; idx += stride) {
        const std::int64_t n = idx / H, j = idx % H;
        const T* gr = gates + n * 4 * H;
        T* ar = act + n * 4 * H;
        const T i = sigmoid_(gr[j]);
        const T f = sigmoid_(gr[H + j]);
        const T gg = tanh_(gr[2 * H + j]);
        const T o = sigmoid_(gr[3 * H + j]);
        const T cn = f * c_prev[idx] + i * gg;
        const T tc = tanh_(cn);
        ar[j] = i;
        ar[H + j] = f;
        ar[2 * H + j] = gg;
        ar[3 * H + j] = o;
        c[idx] = cn;
        tanh_c[idx] = tc;
        h[idx] = o * tc;
    }
}

template <typename T>
__global__ void lstm_cell_backward_kernel(const T* __restrict__ dh, const T* __restrict__ dc,
                                          const T* __restrict__ c_prev,
                                          const T* __restrict__ act,
                                          const T* __restrict__ tanh_c, T* __restrict__ dgates,
                                          T* __restrict__ dc_prev, std::int64_t H,
                                          std::int64_t total) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < total; idx += stride) {
        const std::int64_t n = idx / H, j = idx % H;
        const T* ar = act + n * 4 * H;
        T* dr = dgates + n * 4 * H;
        const T i = ar[j], f = ar[H + j], gg = ar[2 * H + j], o = ar[3 * H + j];
        const T tc = tanh_c[idx], dhv = dh[idx];
        const T dct = dc[idx] + dhv * o * (T(1) - tc * tc);
        dr[j] = dct * gg * i * (T(1) - i);
        dr[H + j] = dct * c_prev[idx] * f * (T(1) - f);
        dr[2 * H + j] = dct * i * (T(1) - gg * gg);
        dr[3 * H + j] = dhv * tc * o * (T(1) - o);
        dc_prev[idx] = dct * f;
    }
}

template <typename T>
void launch_fwd(std::uintptr_t gates, std::uintptr_t c_prev, std::uintptr_t h, std::uintptr_t c,
                std::uintptr_t act, std::uintptr_t tanh_c, std::int64_t N, std::int64_t H,
                std::uintptr_t s) {
    const std::int64_t total = N * H;
    if (total == 0) return;
    lstm_cell_forward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        reinterpret_cast<const T*>(gates), reinterpret_cast<const T*>(c_prev),
        reinterpret_cast<T*>(h), reinterpret_cast<T*>(c), reinterpret_cast<T*>(act),
        reinterpret_cast<T*>(tanh_c), H, total);
    CUDA_CHECK_LAUNCH("lstm_cell_forward_kernel");
}

template <typename T>
void launch_bwd(std::uintptr_t dh, std::uintptr_t dc, std::uintptr_t c_prev, std::uintptr_t act,
                std::uintptr_t tanh_c, std::uintptr_t dgates, std::uintptr_t dc_prev,
                std::int64_t N, std::int64_t H, std::uintptr_t s) {
    const std::int64_t total = N * H;
    if (total == 0) return;
    lstm_cell_backward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        reinterpret_cast<const T*>(dh), reinterpret_cast<const T*>(dc),
        reinterpret_cast<const T*>(c_prev), reinterpret_cast<const T*>(act),
        reinterpret_cast<const T*>(tanh_c), reinterpret_cast<T*>(dgates),
        reinterpret_cast<T*>(dc_prev), H, total);
    CUDA_CHECK_LAUNCH("lstm_cell_backward_kernel");
}

}  // namespace

void lstm_cell_forward(std::uintptr_t gates, std::uintptr_t c_prev, std::uintptr_t h,
                       std::uintptr_t c, std::uintptr_t act, std::uintptr_t tanh_c,
                       std::int64_t N, std::int64_t H, DType dtype, std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        launch_fwd<decltype(t)>(gates, c_prev, h, c, act, tanh_c, N, H, stream);
    });
}

void lstm_cell_backward(std::uintptr_t dh, std::uintptr_t dc, std::uintptr_t c_prev,
                        std::uintptr_t act, std::uintptr_t tanh_c, std::uintptr_t dgates,
                        std::uintptr_t dc_prev, std::int64_t N, std::int64_t H, DType dtype,
                        std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        launch_bwd<decltype(t)>(dh, dc, c_prev, act, tanh_c, dgates, dc_prev, N, H, stream);
    });
}

}  // namespace cuda
}  // namespace minigrad
