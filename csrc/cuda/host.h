// host.h: the validated host entry points of minigrad._cuda, one per binding (host.cpp), bound
// under the same names by bindings.cpp.
//
// They take device pointers as Python ints (CuPy's `a.data.ptr`), shapes or element counts, a
// dtype name ("float32"/"float64") and a stream (CuPy's `get_current_stream().ptr`), validate
// everything on the host (csrc/common for geometry and shared rules, host.cpp for pointers),
// release the GIL and call the launchers declared in common.cuh.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace minigrad {
namespace cuda {
namespace host {

using Ptr = std::uintptr_t;
using Pair = std::array<std::int64_t, 2>;
using Shape = std::vector<std::int64_t>;

int device_count();
std::string runtime_version();

// elementwise.cu
void relu_forward(Ptr x, Ptr y, std::int64_t n, const std::string& dtype, Ptr stream);
void relu_backward(Ptr dy, Ptr x, Ptr dx, std::int64_t n, const std::string& dtype, Ptr stream);

// conv.cu
void im2col(Ptr x, const Shape& x_shape, Ptr cols, const Shape& cols_shape, std::int64_t KH,
            std::int64_t KW, const Pair& stride, const Pair& padding, const Pair& dilation,
            const std::string& dtype, Ptr stream);
void col2im(Ptr cols, const Shape& cols_shape, Ptr dx, const Shape& x_shape, std::int64_t KH,
            std::int64_t KW, const Pair& stride, const Pair& padding, const Pair& dilation,
            const std::string& dtype, Ptr stream);

// pool.cu
void maxpool2d_forward(Ptr x, const Shape& x_shape, Ptr y, Ptr indices, const Shape& y_shape,
                       const Pair& kernel, const Pair& stride, const Pair& padding,
                       const Pair& dilation, bool ceil_mode, const std::string& dtype,
                       Ptr stream);
void maxpool2d_backward(Ptr dy, Ptr indices, const Shape& dy_shape, Ptr dx, const Shape& x_shape,
                        const Pair& kernel, const Pair& stride, const Pair& padding,
                        const Pair& dilation, bool ceil_mode, const std::string& dtype,
                        Ptr stream);
void avgpool2d_forward(Ptr x, const Shape& x_shape, Ptr y, const Shape& y_shape,
                       const Pair& kernel, const Pair& stride, const Pair& padding,
                       bool ceil_mode, bool count_include_pad,
                       const std::optional<std::int64_t>& divisor_override,
                       const std::string& dtype, Ptr stream);
void avgpool2d_backward(Ptr dy, const Shape& dy_shape, Ptr dx, const Shape& x_shape,
                        const Pair& kernel, const Pair& stride, const Pair& padding,
                        bool ceil_mode, bool count_include_pad,
                        const std::optional<std::int64_t>& divisor_override,
                        const std::string& dtype, Ptr stream);

// lstm.cu
void lstm_cell_forward(Ptr gates, Ptr c_prev, Ptr h, Ptr c, Ptr act, Ptr tanh_c, std::int64_t N,
                       std::int64_t H, const std::string& dtype, Ptr stream);
void lstm_cell_backward(Ptr dh, Ptr dc, Ptr c_prev, Ptr act, Ptr tanh_c, Ptr dgates, Ptr dc_prev,
                        std::int64_t N, std::int64_t H, const std::string& dtype, Ptr stream);

// optim.cu
void sgd_step(const std::vector<Ptr>& params, const std::vector<Ptr>& grads,
              const std::vector<Ptr>& momentum_buffers, const std::vector<std::int64_t>& sizes,
              const std::vector<bool>& fresh, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, const std::string& dtype,
              Ptr stream);
void adam_step(const std::vector<Ptr>& params, const std::vector<Ptr>& grads,
               const std::vector<Ptr>& exp_avgs, const std::vector<Ptr>& exp_avg_sqs,
               const std::vector<Ptr>& max_exp_avg_sqs, const std::vector<std::int64_t>& sizes,
               const std::vector<std::int64_t>& steps, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, bool decoupled,
               const std::string& dtype, Ptr stream);

}  // namespace host
}  // namespace cuda
}  // namespace minigrad
