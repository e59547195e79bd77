// pool.cu: 2-D max and average pooling on the GPU, forward and backward, float32 and float64,
// NCHW (the CUDA twin of csrc/cpu/pool.cpp; same rules, same outputs).
//
//   maxpool2d_forward_kernel:  x (N, C, H, W) -> y (N, C, OH, OW), indices int64 (N, C, OH, OW)
//       = h*W + w of the max in its (n, c) plane; ties go to the first max in row-major window
//       order, a NaN wins (as PyTorch and NumPy argmax); padding never wins.
//   maxpool2d_backward_kernel: dx[n, c].flat[indices[n, c, oh, ow]] += dy[n, c, oh, ow]
//   avgpool2d_forward_kernel:  window sum / divisor (PyTorch's count_include_pad/ceil_mode rule,
//       or divisor_override)
//   avgpool2d_backward_kernel: dy / divisor spread over each window
//
// OH/OW and the arguments are validated on the host (bindings.cpp, PyTorch's output-size rule).
// Algorithm: forward, one thread per output element, the window clipped to the input once.
// Both backwards are GATHERS, one thread per dx pixel: for each tap (kh, kw) the single window
// that puts that tap on the pixel is oh = (h + pH - kh*dH) / sH when exact and in [0, OH); max
// adds dy there when indices == this pixel, avg adds dy / divisor.  No atomics, fixed order
// (kh, then kw): deterministic, every dx element written once.  Indices outside [0, H*W) match
// no pixel and are ignored (the C++ twin raises ValueError; a device-side flag would need a
// synchronising read, which entry points never do).
// Checked by: tests/test_kernels_cuda.py (`gpu` marker: vs minigrad/kernels/reference.py on
// CuPy arrays, odd kernel/stride/padding/dilation and ceil_mode, both dtypes, NaN-poisoned
// outputs; vs torch max_pool2d/avg_pool2d on CUDA); host-side validation runs without a GPU.
#include "common.cuh"

namespace minigrad {
namespace cuda {

namespace {

#define GRID_STRIDE_LOOP(i, total)                                                          \
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; \
         i < (total); i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__device__ __forceinline__ T neg_inf();
template <>
__device__ __forceinline__ float neg_inf<float>() {
    return -__int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double neg_inf<double>() {
    return -__longlong_as_double(0x7ff0000000000000LL);
}

template <typename T>
__global__ void maxpool2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                         std::int64_t* __restrict__ ind, Geom2d g,
                                         std::int64_t total) {
    GRID_STRIDE_LOOP(i, total) {
        const std::int64_t ow = i % g.OW;
        const std::int64_t oh = (i / g.OW) % g.OH;
        const std::int64_t plane = i / (g.OW * g.OH);
        const T* xp = x + plane * g.H * g.W;
        const std::int64_t h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
        // in-bounds taps only, so the inner loops never test bounds (as the C++ twin)
        const std::int64_t kh0 = h0 < 0 ? (-h0 + g.dH - 1) / g.dH : 0;
        const std::int64_t kh1 = min(g.KH, (g.H - h0 + g.dH - 1) / g.dH);
        const std::int64_t kw0 = w0 < 0 ? (-w0 + g.dW - 1) / g.dW : 0;
        const std::int64_t kw1 = min(g.KW, (g.W - w0 + g.dW - 1) / g.dW);
        T best = neg_inf<T>();
        std::int64_t best_i = -1;
        for (std::int64_t kh = kh0; kh < kh1; ++kh) {
            const std::int64_t row = (h0 + kh * g.dH) * g.W;
            for (std::int64_t kw = kw0; kw < kw1; ++kw) {
                const std::int64_t at = row + w0 + kw * g.dW;
                const T v = xp[at];
                if (best_i < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    best_i = at;
                }
            }
        }
        y[i] = best;
        ind[i] = best_i < 0 ? 0 : best_i;
    }
}

template <typename T>
__global__ void maxpool2d_backward_kernel(const T* __restrict__ dy,
                                          const std::int64_t* __restrict__ ind,
                                          T* __restrict__ dx, Geom2d g, std::int64_t total) {
    GRID_STRIDE_LOOP(i, total) {
        const std::int64_t w = i % g.W;
        const std::int64_t h = (i / g.W) % g.H;
        const std::int64_t plane = i / (g.W * g.H);
        const std::int64_t me = h * g.W + w;
        const std::int64_t off = plane * g.OH * g.OW;
        T sum = T(0);
        for (std::int64_t kh = 0; kh < g.KH; ++kh) {
            const std::int64_t th = h + g.pH - kh * g.dH;
            if (th < 0 || th % g.sH != 0) continue;
            const std::int64_t oh = th / g.sH;
            if (oh >= g.OH) continue;
            for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t tw = w + g.pW - kw * g.dW;
                if (tw < 0 || tw % g.sW != 0) continue;
                const std::int64_t ow = tw / g.sW;
                if (ow >= g.OW) continue;
                const std::int64_t o = off + oh * g.OW + ow;
                if (ind[o] == me) sum += dy[o];
            }
        }
        dx[i] = sum;
    }
}

// Window [lo, hi) along one dim and its divisor count: PyTorch's avg_pool2d rule.
struct Span {
    std::int64_t lo, hi, count;
};

__device__ __forceinline__ Span avg_span(std::int64_t o, std::int64_t size, std::int64_t k,
                                         std::int64_t s, std::int64_t p, bool cip) {
    std::int64_t start = o * s - p;
    std::int64_t end = min(start + k, size + p);
    const std::int64_t padded = end - start;
    start = max(start, std::int64_t(0));
    end = min(end, size);
    return {start, end, cip ? padded : end - start};
}

template <typename T>
__global__ void avgpool2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y, Geom2d g,
                                         bool cip, std::int64_t divisor, std::int64_t total) {
    GRID_STRIDE_LOOP(i, total) {
        const std::int64_t ow = i % g.OW;
        const std::int64_t oh = (i / g.OW) % g.OH;
        const std::int64_t plane = i / (g.OW * g.OH);
        const T* xp = x + plane * g.H * g.W;
        const Span sh = avg_span(oh, g.H, g.KH, g.sH, g.pH, cip);
        const Span sw = avg_span(ow, g.W, g.KW, g.sW, g.pW, cip);
        T sum = T(0);
        for (std::int64_t ih = sh.lo; ih < sh.hi; ++ih)
            for (std::int64_t iw = sw.lo; iw < sw.hi; ++iw) sum += xp[ih * g.W + iw];
        const T div = divisor ? T(divisor) : T(sh.count * sw.count);
        y[i] = sum / div;
    }
}

template <typename T>
__global__ void avgpool2d_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, Geom2d g,
                                          bool cip, std::int64_t divisor, std::int64_t total) {
    GRID_STRIDE_LOOP(i, total) {
        const std::int64_t w = i % g.W;
        const std::int64_t h = (i / g.W) % g.H;
        const std::int64_t plane = i / (g.W * g.H);
        const T* gp = dy + plane * g.OH * g.OW;
        T sum = T(0);
        for (std::int64_t kh = 0; kh < g.KH; ++kh) {
            const std::int64_t th = h + g.pH - kh;  // avg pooling has no dilation
            if (th < 0 || th % g.sH != 0) continue;
            const std::int64_t oh = th / g.sH;
            if (oh >= g.OH) continue;
            const Span sh = avg_span(oh, g.H, g.KH, g.sH, g.pH, cip);
            for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t tw = w + g.pW - kw;
                if (tw < 0 || tw % g.sW != 0) continue;
                const std::int64_t ow = tw / g.sW;
                if (ow >= g.OW) continue;
                const Span sw = avg_span(ow, g.W, g.KW, g.sW, g.pW, cip);
                const T div = divisor ? T(divisor) : T(sh.count * sw.count);
                sum += gp[oh * g.OW + ow] / div;  // the forward's window always covers (h, w)
            }
        }
        dx[i] = sum;
    }
}

template <typename T>
const T* cptr(std::uintptr_t p) {
    return reinterpret_cast<const T*>(p);
}
template <typename T>
T* mptr(std::uintptr_t p) {
    return reinterpret_cast<T*>(p);
}

template <typename T>
void launch_max_fwd(std::uintptr_t x, std::uintptr_t y, std::uintptr_t ind, const Geom2d& g,
                    std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.OH * g.OW;
    if (total == 0) return;
    maxpool2d_forward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        cptr<T>(x), mptr<T>(y), mptr<std::int64_t>(ind), g, total);
    CUDA_CHECK_LAUNCH("maxpool2d_forward_kernel");
}

template <typename T>
void launch_max_bwd(std::uintptr_t dy, std::uintptr_t ind, std::uintptr_t dx, const Geom2d& g,
                    std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.H * g.W;
    if (total == 0) return;
    maxpool2d_backward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        cptr<T>(dy), cptr<std::int64_t>(ind), mptr<T>(dx), g, total);
    CUDA_CHECK_LAUNCH("maxpool2d_backward_kernel");
}

template <typename T>
void launch_avg_fwd(std::uintptr_t x, std::uintptr_t y, const Geom2d& g, bool cip,
                    std::int64_t divisor, std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.OH * g.OW;
    if (total == 0) return;
    avgpool2d_forward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        cptr<T>(x), mptr<T>(y), g, cip, divisor, total);
    CUDA_CHECK_LAUNCH("avgpool2d_forward_kernel");
}

template <typename T>
void launch_avg_bwd(std::uintptr_t dy, std::uintptr_t dx, const Geom2d& g, bool cip,
                    std::int64_t divisor, std::uintptr_t s) {
    const std::int64_t total = g.N * g.C * g.H * g.W;
    if (total == 0) return;
    avgpool2d_backward_kernel<T><<<grid_size(total), kBlockSize, 0, as_stream(s)>>>(
        cptr<T>(dy), mptr<T>(dx), g, cip, divisor, total);
    CUDA_CHECK_LAUNCH("avgpool2d_backward_kernel");
}

}  // namespace

void maxpool2d_forward(std::uintptr_t x, std::uintptr_t y, std::uintptr_t indices,
                       const Geom2d& g, DType dtype, std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) { launch_max_fwd<decltype(t)>(x, y, indices, g, stream); });
}

void maxpool2d_backward(std::uintptr_t dy, std::uintptr_t indices, std::uintptr_t dx,
                        const Geom2d& g, DType dtype, std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) { launch_max_bwd<decltype(t)>(dy, indices, dx, g, stream); });
}

void avgpool2d_forward(std::uintptr_t x, std::uintptr_t y, const Geom2d& g,
                       bool count_include_pad, std::int64_t divisor, DType dtype,
                       std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        launch_avg_fwd<decltype(t)>(x, y, g, count_include_pad, divisor, stream);
    });
}

void avgpool2d_backward(std::uintptr_t dy, std::uintptr_t dx, const Geom2d& g,
                        bool count_include_pad, std::int64_t divisor, DType dtype,
                        std::uintptr_t stream) {
    dispatch_float(dtype, [&](auto t) {
        launch_avg_bwd<decltype(t)>(dy, dx, g, count_include_pad, divisor, stream);
    });
}

}  // namespace cuda
}  // namespace minigrad
