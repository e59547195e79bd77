// kernels.h: every entry point of minigrad._C, by family (the file that defines it), as
// bindings.cpp binds them.  Each validates its own arguments (common.h, csrc/common) before
// touching memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;

namespace minigrad {
// elementwise.cpp
py::array relu_forward(const py::array& x);
py::array relu_backward(const py::array& dy, const py::array& x);
py::array bias_relu_forward(const py::array& x, const py::array& bias);
py::tuple bias_relu_backward(const py::array& dy, const py::array& y);

using Pair = std::array<std::int64_t, 2>;
// conv.cpp
py::array im2col(const py::array& x, std::int64_t KH, std::int64_t KW, const Pair& stride,
                 const Pair& padding, const Pair& dilation, bool folded);
py::array col2im(const py::array& cols, const std::vector<std::int64_t>& x_shape,
                 std::int64_t KH, std::int64_t KW, const Pair& stride, const Pair& padding,
                 const Pair& dilation, bool folded);
// conv_direct.cpp
std::string conv2d_direct_isa();
py::array conv2d_direct_forward(const py::array& x, const py::array& weight,
                                const py::object& bias, const Pair& padding);
py::array conv2d_direct_input_grad(const py::array& dy, const py::array& weight,
                                   const Pair& padding, const std::vector<std::int64_t>& x_shape);
py::array conv2d_direct_weight_grad(const py::array& dy, const py::array& x, const Pair& kernel,
                                    const Pair& padding);
// pool.cpp
py::tuple maxpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding, const Pair& dilation, bool ceil_mode);
py::array maxpool2d_backward(const py::array& dy, const py::array& indices,
                             const std::vector<py::ssize_t>& x_shape, const Pair& kernel,
                             const Pair& stride, const Pair& padding, const Pair& dilation,
                             bool ceil_mode);
py::array avgpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding, bool ceil_mode, bool count_include_pad,
                            const std::optional<std::int64_t>& divisor_override);
py::array avgpool2d_backward(const py::array& dy, const std::vector<py::ssize_t>& x_shape,
                             const Pair& kernel, const Pair& stride, const Pair& padding,
                             bool ceil_mode, bool count_include_pad,
                             const std::optional<std::int64_t>& divisor_override);
// optim.cpp
void sgd_step(const py::list& params, const py::list& grads, py::list momentum_buffers,
              double lr, double momentum, double dampening, double weight_decay, bool nesterov,
              bool maximize);
void adam_step(const py::list& params, const py::list& grads, const py::list& exp_avgs,
               const py::list& exp_avg_sqs, const py::object& max_exp_avg_sqs,
               const py::object& step, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool amsgrad, bool decoupled);
// lstm.cpp
py::tuple lstm_cell_forward(const py::array& gates, const py::array& c_prev);
py::tuple lstm_cell_backward(const py::array& dh, const py::array& dc, const py::array& c_prev,
                             const py::array& act, const py::array& tanh_c);
// attention.cpp
py::tuple attention_forward(const py::array& q, const py::array& k, const py::array& v,
                            const py::object& mask, double scale, bool is_causal);
py::tuple attention_backward(const py::array& dout, const py::array& q, const py::array& k,
                             const py::array& v, const py::array& out, const py::array& lse,
                             const py::object& mask, double scale, bool is_causal);
// attention_rows.cpp
py::array attention_rows_forward(const py::array& s, const py::object& mask, double scale,
                                 std::int64_t i0, bool is_causal);
void attention_rows_backward(const py::array& s, const py::array& dp, const py::array& lse,
                             const py::array& D, const py::object& mask, double scale,
                             std::int64_t i0, bool is_causal);
// loss.cpp
py::tuple cross_entropy_forward(const py::array& logits, const py::array& target,
                                const py::object& weight, std::int64_t ignore_index,
                                double label_smoothing);
py::array cross_entropy_backward(const py::array& dlosses, const py::array& logits,
                                 const py::array& target, const py::array& lse,
                                 const py::object& weight, std::int64_t ignore_index,
                                 double label_smoothing);
// batchnorm.cpp
py::tuple batch_norm_forward(const py::array& x, const py::object& weight,
                             const py::object& bias, double eps);
py::tuple batch_norm_backward(const py::array& dy, const py::array& x, const py::array& mean,
                              const py::array& var, const py::object& weight, double eps);
// module_info.cpp
py::dict build_info();
bool tune_malloc();
}  // namespace minigrad
