// bindings.cpp: the pybind11 table of minigrad._cuda.  Names, arguments and docstrings only:
// every entry point validates its arguments in host.cpp (with csrc/common, shared with
// minigrad._C) and launches the kernels of the *.cu files on the given stream.
// Checked by: tests/test_kernels_cuda.py, tests/test_cuda_fake.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "host.h"

namespace py = pybind11;

void register_optim_host(py::module_& m);  // optim_host.cpp: host twins of the optimizer kernels

PYBIND11_MODULE(_cuda, m) {
    namespace h = minigrad::cuda::host;
    using py::arg;
    m.doc() = "minigrad CUDA kernels: device pointers as ints, launched on the given stream.";
    register_optim_host(m);

    m.def("relu_forward", &h::relu_forward, arg("x_ptr"), arg("y_ptr"), arg("n"), arg("dtype"),
          arg("stream") = 0, "y = max(x, 0) over n contiguous elements.");
    m.def("relu_backward", &h::relu_backward, arg("dy_ptr"), arg("x_ptr"), arg("dx_ptr"),
          arg("n"), arg("dtype"), arg("stream") = 0,
          "dx = dy where x > 0 else 0 over n contiguous elements.");

    m.def("im2col", &h::im2col, arg("x_ptr"), arg("x_shape"), arg("cols_ptr"),
          arg("cols_shape"), arg("KH"), arg("KW"), arg("stride"), arg("padding"),
          arg("dilation"), arg("dtype"), arg("stream") = 0,
          "cols (N, C, KH, KW, OH, OW) <- windows of x (N, C, H, W); zero padding.");
    m.def("col2im", &h::col2im, arg("cols_ptr"), arg("cols_shape"), arg("dx_ptr"),
          arg("x_shape"), arg("KH"), arg("KW"), arg("stride"), arg("padding"), arg("dilation"),
          arg("dtype"), arg("stream") = 0,
          "dx (N, C, H, W) = adjoint of im2col (a deterministic gather, no atomics).");

    m.def("maxpool2d_forward", &h::maxpool2d_forward, arg("x_ptr"), arg("x_shape"),
          arg("y_ptr"), arg("indices_ptr"), arg("y_shape"), arg("kernel"), arg("stride"),
          arg("padding"), arg("dilation"), arg("ceil_mode"), arg("dtype"), arg("stream") = 0,
          "y, indices (int64 h*W + w) <- max over each window of x (N, C, H, W).");
    m.def("maxpool2d_backward", &h::maxpool2d_backward, arg("dy_ptr"), arg("indices_ptr"),
          arg("dy_shape"), arg("dx_ptr"), arg("x_shape"), arg("kernel"), arg("stride"),
          arg("padding"), arg("dilation"), arg("ceil_mode"), arg("dtype"), arg("stream") = 0,
          "dx = dy gathered at the max positions (deterministic, no atomics).");
    m.def("avgpool2d_forward", &h::avgpool2d_forward, arg("x_ptr"), arg("x_shape"),
          arg("y_ptr"), arg("y_shape"), arg("kernel"), arg("stride"), arg("padding"),
          arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"), arg("dtype"),
          arg("stream") = 0, "y = window sum / divisor (PyTorch's avg_pool2d rule).");
    m.def("avgpool2d_backward", &h::avgpool2d_backward, arg("dy_ptr"), arg("dy_shape"),
          arg("dx_ptr"), arg("x_shape"), arg("kernel"), arg("stride"), arg("padding"),
          arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"), arg("dtype"),
          arg("stream") = 0, "dx = dy / divisor gathered from every window over each pixel.");

    m.def("lstm_cell_forward", &h::lstm_cell_forward, arg("gates_ptr"), arg("c_prev_ptr"),
          arg("h_ptr"), arg("c_ptr"), arg("act_ptr"), arg("tanh_c_ptr"), arg("N"), arg("H"),
          arg("dtype"), arg("stream") = 0,
          "h, c, act, tanh_c (N, H)/(N, 4H) <- gates (N, 4H), c_prev (N, H).");
    m.def("lstm_cell_backward", &h::lstm_cell_backward, arg("dh_ptr"), arg("dc_ptr"),
          arg("c_prev_ptr"), arg("act_ptr"), arg("tanh_c_ptr"), arg("dgates_ptr"),
          arg("dc_prev_ptr"), arg("N"), arg("H"), arg("dtype"), arg("stream") = 0,
          "dgates (N, 4H), dc_prev (N, H) <- dh, dc, c_prev, act, tanh_c.");

    m.def("sgd_step", &h::sgd_step, arg("params"), arg("grads"), arg("momentum_buffers"),
          arg("sizes"), arg("fresh"), arg("lr"), arg("momentum"), arg("dampening"),
          arg("weight_decay"), arg("nesterov"), arg("maximize"), arg("dtype"), arg("stream") = 0,
          "In-place SGD over a parameter list (device pointers); one launch per 32 parameters.");
    m.def("adam_step", &h::adam_step, arg("params"), arg("grads"), arg("exp_avgs"),
          arg("exp_avg_sqs"), arg("max_exp_avg_sqs"), arg("sizes"), arg("steps"), arg("lr"),
          arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("amsgrad"),
          arg("decoupled"), arg("dtype"), arg("stream") = 0,
          "In-place Adam/AdamW over a parameter list (device pointers); one launch per 32 "
          "parameters.");

    m.def("device_count", &h::device_count, "CUDA devices visible (0 without a GPU or driver).");
    m.def("runtime_version", &h::runtime_version,
          "CUDA runtime version this module was built with.");
}
