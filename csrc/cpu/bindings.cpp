// bindings.cpp: the one pybind11 table of minigrad._C (CPU kernels).
//
// Every kernel (declared in kernels.h, by family) is bound under the same name it has in
// minigrad/kernels/reference.py; each kernel validates its own arguments with common.h and
// csrc/common before touching memory.  Also exports num_threads() and build_info()
// (module_info.cpp) for minigrad.backend_info().
// Checked by: tests/test_kernels.py (imports _C, compares every kernel with the reference).
#include <pybind11/stl.h>

#include "common.h"
#include "kernels.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "minigrad CPU kernels (C++17, OpenMP). Inputs must be C-contiguous.";
    m.attr("malloc_tuned") = minigrad::tune_malloc();

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
    m.def("build_info", &minigrad::build_info, "Compiler, OpenMP and flags this module was built with.");
}
