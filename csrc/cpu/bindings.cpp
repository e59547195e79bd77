// bindings.cpp: the one pybind11 table of minigrad._C (CPU kernels).
//
// Every kernel is declared here by family and bound under the same name it has in
// minigrad/kernels/reference.py; each kernel validates its own arguments with common.h before
// touching memory.  Also exports num_threads() and build_info() for minigrad.backend_info().
// Checked by: tests/test_kernels.py (imports _C, compares every kernel with the reference).
#include <pybind11/stl.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

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
}  // namespace minigrad

#ifndef MINIGRAD_CXX_FLAGS
#define MINIGRAD_CXX_FLAGS "unknown"
#endif

namespace {

std::string compiler_name() {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " + std::to_string(_MSC_VER);
#else
    return "unknown";
#endif
}

py::dict build_info() {
    py::dict info;
    info["compiler"] = compiler_name();
#ifdef _OPENMP
    info["openmp"] = true;
#else
    info["openmp"] = false;
#endif
    info["flags"] = MINIGRAD_CXX_FLAGS;
    info["pybind11"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                       std::to_string(PYBIND11_VERSION_MINOR) + "." +
                       std::to_string(PYBIND11_VERSION_PATCH);
    return info;
}

}  // namespace

namespace {
// Keep freed memory for reuse instead of handing it back to the kernel.  A training step frees
// and reallocates the same activation-sized arrays every step; with glibc's defaults each one
// above the (dynamic) mmap threshold is a fresh mmap whose pages fault in one by one (LeNet at
// batch 128: ~1500 page faults and ~20% of the step in the kernel).  Raising the mmap and trim
// thresholds makes those arrays come from the heap, already mapped.  The price: memory freed by
// the process stays reserved for it (up to the largest working set) instead of going back to
// the OS.  MINIGRAD_MALLOC_TUNE=0 keeps glibc's defaults.  Returns whether it applied.
bool tune_malloc() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    const char* env = std::getenv("MINIGRAD_MALLOC_TUNE");
    if (env && std::strcmp(env, "0") == 0) return false;
    const int mmap_max = 32 << 20;  // glibc's upper limit for M_MMAP_THRESHOLD on 64-bit
    return mallopt(M_MMAP_THRESHOLD, mmap_max) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
    return false;
#endif
}
}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "minigrad CPU kernels (C++17, OpenMP). Inputs must be C-contiguous.";
    m.attr("malloc_tuned") = tune_malloc();

    m.def("relu_forward", &minigrad::relu_forward, py::arg("x"),
          "y = max(x, 0) elementwise (float32/float64, C-contiguous, any shape).");
    m.def("relu_backward", &minigrad::relu_backward, py::arg("dy"), py::arg("x"),
          "dx = dy where x > 0 else 0 (same shape and dtype, C-contiguous).");
    m.def("bias_relu_forward", &minigrad::bias_relu_forward, py::arg("x"), py::arg("bias"),
          "y = max(x + bias[c], 0), bias (C,) along dim 1 of x (N, C, ...) (float32/float64, "
          "C-contiguous).");
    m.def("bias_relu_backward", &minigrad::bias_relu_backward, py::arg("dy"), py::arg("y"),
          "(dx, dbias): dx = dy where y > 0 else 0, dbias[c] = sum of dx over all dims but 1 "
          "(deterministic, float64 accumulation).");

    // conv.cpp
    for (const bool folded : {false, true}) {
        m.def(folded ? "im2col_folded" : "im2col",
              [folded](const py::array& x, std::int64_t KH, std::int64_t KW, const minigrad::Pair& s,
                       const minigrad::Pair& p, const minigrad::Pair& d) {
                  return minigrad::im2col(x, KH, KW, s, p, d, folded);
              },
              py::arg("x"), py::arg("KH"), py::arg("KW"), py::arg("stride"), py::arg("padding"),
              py::arg("dilation"),
              folded ? "x (N, C, H, W) -> cols (C, KH, KW, N, OH, OW): the batch folded into the "
                       "columns of one (C*KH*KW, N*OH*OW) matrix, zero padding."
                     : "x (N, C, H, W) -> cols (N, C, KH, KW, OH, OW), zero padding.");
        m.def(folded ? "col2im_folded" : "col2im",
              [folded](const py::array& cols, const std::vector<std::int64_t>& x_shape,
                       std::int64_t KH, std::int64_t KW, const minigrad::Pair& s,
                       const minigrad::Pair& p, const minigrad::Pair& d) {
                  return minigrad::col2im(cols, x_shape, KH, KW, s, p, d, folded);
              },
              py::arg("cols"), py::arg("x_shape"), py::arg("KH"), py::arg("KW"),
              py::arg("stride"), py::arg("padding"), py::arg("dilation"),
              folded ? "Adjoint of im2col_folded: cols (C, KH, KW, N, OH, OW) -> dx (N, C, H, W)."
                     : "Adjoint of im2col: cols (N, C, KH, KW, OH, OW) -> dx (N, C, H, W).");
    }
    // pool.cpp
    // conv_direct.cpp
    m.def("conv2d_direct_isa", &minigrad::conv2d_direct_isa,
          "The instruction set the direct convolution runs with: baseline, avx2 or avx512.");
    m.def("conv2d_direct_forward", &minigrad::conv2d_direct_forward, py::arg("x"),
          py::arg("weight"), py::arg("bias"), py::arg("padding"),
          "Direct conv2d, stride 1, dilation 1, groups 1: x (N, C, H, W) -> (N, O, OH, OW).");
    m.def("conv2d_direct_input_grad", &minigrad::conv2d_direct_input_grad, py::arg("dy"),
          py::arg("weight"), py::arg("padding"), py::arg("x_shape"),
          "dx of conv2d_direct_forward (padding <= kernel - 1).");
    m.def("conv2d_direct_weight_grad", &minigrad::conv2d_direct_weight_grad, py::arg("dy"),
          py::arg("x"), py::arg("kernel"), py::arg("padding"),
          "dweight (O, C, KH, KW) of conv2d_direct_forward.");
    m.def("maxpool2d_forward", &minigrad::maxpool2d_forward, py::arg("x"), py::arg("kernel"),
          py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
          "x (N, C, H, W) -> (y, int64 flat indices h*W + w), both (N, C, OH, OW).");
    m.def("maxpool2d_backward", &minigrad::maxpool2d_backward, py::arg("dy"),
          py::arg("indices"), py::arg("x_shape"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
          "dx (x_shape) with dy scattered-added at indices.");
    m.def("avgpool2d_forward", &minigrad::avgpool2d_forward, py::arg("x"), py::arg("kernel"),
          py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
          py::arg("count_include_pad"), py::arg("divisor_override").none(true),
          "Window means (N, C, OH, OW), PyTorch's divisor rule.");
    m.def("avgpool2d_backward", &minigrad::avgpool2d_backward, py::arg("dy"),
          py::arg("x_shape"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("ceil_mode"), py::arg("count_include_pad"),
          py::arg("divisor_override").none(true), "dy / divisor spread over every window.");
    // optim.cpp
    m.def("sgd_step", &minigrad::sgd_step, py::arg("params"), py::arg("grads"),
          py::arg("momentum_buffers"), py::arg("lr"), py::arg("momentum"), py::arg("dampening"),
          py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"),
          "Fused in-place SGD over a list of parameters (None buffers are created).");
    m.def("adam_step", &minigrad::adam_step, py::arg("params"), py::arg("grads"),
          py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs").none(true),
          py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("weight_decay"), py::arg("amsgrad"), py::arg("decoupled"),
          "Fused in-place Adam/AdamW over a list of parameters.");

    // lstm.cpp
    m.def("lstm_cell_forward", &minigrad::lstm_cell_forward, py::arg("gates"),
          py::arg("c_prev"), "gates (N, 4H) [i|f|g|o], c_prev (N, H) -> (h, c, act, tanh_c).");
    m.def("lstm_cell_backward", &minigrad::lstm_cell_backward, py::arg("dh"), py::arg("dc"),
          py::arg("c_prev"), py::arg("act"), py::arg("tanh_c"),
          "-> (dgates (N, 4H), dc_prev (N, H)).");

    // attention.cpp
    m.def("attention_forward", &minigrad::attention_forward, py::arg("q"), py::arg("k"),
          py::arg("v"), py::arg("mask").none(true), py::arg("scale"), py::arg("is_causal"),
          "q (B, L, E), k (B, S, E), v (B, S, Ev), additive mask (L, S)/(B, L, S) or None "
          "-> (out (B, L, Ev), lse (B, L)); tiled online softmax.");
    m.def("attention_backward", &minigrad::attention_backward, py::arg("dout"), py::arg("q"),
          py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"),
          py::arg("mask").none(true), py::arg("scale"), py::arg("is_causal"),
          "-> (dq (B, L, E), dk (B, S, E), dv (B, S, Ev)); scores recomputed per tile.");

    // attention_rows.cpp (the softmax between the BLAS matmuls of the "blocked" variant)
    m.def("attention_rows_forward", &minigrad::attention_rows_forward, py::arg("s"),
          py::arg("mask").none(true), py::arg("scale"), py::arg("i0"), py::arg("is_causal"),
          "s (B, R, K) raw scores of query rows [i0, i0+R), in place -> softmax P; "
          "returns lse (B, R). mask: additive (L, S)/(B, L, S) or None.");
    m.def("attention_rows_backward", &minigrad::attention_rows_backward, py::arg("s"),
          py::arg("dp"), py::arg("lse"), py::arg("D"), py::arg("mask").none(true),
          py::arg("scale"), py::arg("i0"), py::arg("is_causal"),
          "in place: s (raw scores) -> P = exp(scale s + mask - lse), dp -> scale P (dp - D).");

    // loss.cpp
    m.def("cross_entropy_forward", &minigrad::cross_entropy_forward, py::arg("logits"),
          py::arg("target"), py::arg("weight").none(true), py::arg("ignore_index"),
          py::arg("label_smoothing"),
          "logits (M, C), int64 target (M,), weight (C,) or None -> (losses (M,), lse (M,)); "
          "per-sample softmax cross-entropy (reduction='none'), 0 where ignored.");
    m.def("cross_entropy_backward", &minigrad::cross_entropy_backward, py::arg("dlosses"),
          py::arg("logits"), py::arg("target"), py::arg("lse"), py::arg("weight").none(true),
          py::arg("ignore_index"), py::arg("label_smoothing"),
          "-> dlogits (M, C); softmax recomputed from lse, 0 on ignored rows.");

    // batchnorm.cpp
    m.def("batch_norm_forward", &minigrad::batch_norm_forward, py::arg("x"),
          py::arg("weight").none(true), py::arg("bias").none(true), py::arg("eps"),
          "x (N, C, ...), weight/bias (C,) or None -> (y, mean (C,), biased var (C,)); batch "
          "statistics in float64, deterministic for any thread count.");
    m.def("batch_norm_backward", &minigrad::batch_norm_backward, py::arg("dy"), py::arg("x"),
          py::arg("mean"), py::arg("var"), py::arg("weight").none(true), py::arg("eps"),
          "-> (dx (N, C, ...), dweight (C,), dbias (C,)) of batch_norm_forward.");

    m.def("num_threads", &minigrad::max_threads,
          "Threads an OpenMP region would use (omp_get_max_threads; 1 without OpenMP).");
    m.def("build_info", &build_info, "Compiler, OpenMP and flags this module was built with.");
}
