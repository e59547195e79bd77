// host.cpp: the host side of every minigrad._cuda entry point (compiled by the host C++
// compiler; the kernels live in *.cu files compiled by nvcc).
//
// Each entry point validates all of its arguments here, before any CUDA call, then releases
// the GIL and calls the launcher (common.cuh) on the caller's stream:
//   * dtype: "float32" or "float64", else TypeError;
//   * window geometry (im2col/col2im, pooling): conv_geometry / pool_geometry from
//     csrc/common/geometry.h, the code minigrad._C runs, so OH/OW, the accepted arguments and
//     the messages are the same on both devices; every shape the caller allocated must match
//     (ValueError otherwise);
//   * counts: overflow-checked (csrc/common/checks.h), ValueError before any launch;
//   * pointers: non-null when their buffer is non-empty, aligned to the element size.  Buffers
//     are C-contiguous: raw pointers carry no strides, so minigrad/kernels/cuda.py makes every
//     input contiguous and allocates every output itself.
// CUDA failures (including "no device" on a machine without a GPU) -> RuntimeError naming the
// kernel.  cudart is linked statically, so the module imports on machines without a GPU or
// driver; device_count() then returns 0.
// Checked by: tests/test_kernels_cuda.py (validation without a GPU; kernels under the `gpu`
// marker) and tests/test_cuda_fake.py.
#include "host.h"

#include <pybind11/pybind11.h>

#include "common.cuh"
#include "geometry.h"

namespace minigrad {
namespace cuda {
namespace host {

namespace {

DType parse_dtype(const char* op, const std::string& dtype) {
    if (dtype == "float32") return DType::Float32;
    if (dtype == "float64") return DType::Float64;
    throw py::type_error(std::string(op) + ": dtype '" + dtype +
                         "' is not supported, expected 'float32' or 'float64'");
}

std::size_t elem_size(DType dt) { return dt == DType::Float32 ? 4 : 8; }

void check_n(const char* op, std::int64_t n) {
    if (n < 0) {
        throw py::value_error(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
    }
}

// Non-null when the buffer is non-empty, and aligned to its element size.
void check_buf(const char* op, const std::string& arg, Ptr ptr, std::int64_t count,
               std::size_t align) {
    if (count > 0 && ptr == 0) {
        throw py::value_error(std::string(op) + ": argument '" + arg +
                              "' is a null pointer with n=" + std::to_string(count));
    }
    check_fits(op, CheckedInt(count) * static_cast<std::int64_t>(align),
               "the byte size of '" + arg + "'");
    if (ptr % align != 0) {
        throw py::value_error(std::string(op) + ": argument '" + arg + "' (pointer " +
                              std::to_string(ptr) + ") is not aligned to " +
                              std::to_string(align) + " bytes");
    }
}

// A buffer of `shape` (elements counted overflow-checked).
void check_buf(const char* op, const char* arg, Ptr ptr, const char* shape_arg,
               const Shape& shape, std::size_t align) {
    check_buf(op, arg, ptr, shape_elements(op, shape_arg, shape), align);
}

void check_expected(const char* op, const char* arg, const Shape& got, const Shape& want) {
    if (got != want) {
        throw py::value_error(std::string(op) + ": " + arg + " is " + shape_str(got) +
                              ", expected " + shape_str(want));
    }
}

std::string item(const char* name, std::size_t i) {
    return std::string(name) + "[" + std::to_string(i) + "]";
}

void check_lstm_sizes(const char* op, std::int64_t N, std::int64_t H) {
    if (N < 0 || H < 0) {
        throw py::value_error(std::string(op) + ": N and H must be >= 0, got N=" +
                              std::to_string(N) + ", H=" + std::to_string(H));
    }
    shape_elements(op, "gates", {N, 4, H});  // the (N, 4H) buffers fit: 4*N*H below is safe
}

void check_size(const char* op, const std::vector<std::int64_t>& sizes, std::size_t i) {
    if (sizes[i] < 0) {
        throw py::value_error(std::string(op) + ": sizes[" + std::to_string(i) +
                              "] must be >= 0, got " + std::to_string(sizes[i]));
    }
}

}  // namespace

int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device / no driver" error
        return 0;
    }
    return count;
}

std::string runtime_version() {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// ---------------------------------------------------------------------------- relu
void relu_forward(Ptr x, Ptr y, std::int64_t n, const std::string& dtype, Ptr stream) {
    const char* op = "relu_forward";
    check_n(op, n);
    const DType dt = parse_dtype(op, dtype);
    check_buf(op, "x", x, n, elem_size(dt));
    check_buf(op, "y", y, n, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::relu_forward(x, y, n, dt, stream);
}

void relu_backward(Ptr dy, Ptr x, Ptr dx, std::int64_t n, const std::string& dtype, Ptr stream) {
    const char* op = "relu_backward";
    check_n(op, n);
    const DType dt = parse_dtype(op, dtype);
    check_buf(op, "dy", dy, n, elem_size(dt));
    check_buf(op, "x", x, n, elem_size(dt));
    check_buf(op, "dx", dx, n, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::relu_backward(dy, x, dx, n, dt, stream);
}

// ---------------------------------------------------------------------------- im2col / col2im
void im2col(Ptr x, const Shape& x_shape, Ptr cols, const Shape& cols_shape, std::int64_t KH,
            std::int64_t KW, const Pair& stride, const Pair& padding, const Pair& dilation,
            const std::string& dtype, Ptr stream) {
    const char* op = "im2col";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = conv_geometry(op, x_shape, KH, KW, stride, padding, dilation);
    check_expected(op, "cols_shape", cols_shape, {g.N, g.C, g.KH, g.KW, g.OH, g.OW});
    check_buf(op, "x", x, "x_shape", x_shape, elem_size(dt));
    check_buf(op, "cols", cols, "cols_shape", cols_shape, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::im2col(x, cols, g, dt, stream);
}

void col2im(Ptr cols, const Shape& cols_shape, Ptr dx, const Shape& x_shape, std::int64_t KH,
            std::int64_t KW, const Pair& stride, const Pair& padding, const Pair& dilation,
            const std::string& dtype, Ptr stream) {
    const char* op = "col2im";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = conv_geometry(op, x_shape, KH, KW, stride, padding, dilation);
    check_expected(op, "cols_shape", cols_shape, {g.N, g.C, g.KH, g.KW, g.OH, g.OW});
    check_buf(op, "cols", cols, "cols_shape", cols_shape, elem_size(dt));
    check_buf(op, "dx", dx, "x_shape", x_shape, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::col2im(cols, dx, g, dt, stream);
}

// ---------------------------------------------------------------------------- pooling
void maxpool2d_forward(Ptr x, const Shape& x_shape, Ptr y, Ptr indices, const Shape& y_shape,
                       const Pair& kernel, const Pair& stride, const Pair& padding,
                       const Pair& dilation, bool ceil_mode, const std::string& dtype,
                       Ptr stream) {
    const char* op = "maxpool2d_forward";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode);
    check_expected(op, "y_shape", y_shape, {g.N, g.C, g.OH, g.OW});
    check_buf(op, "x", x, "x_shape", x_shape, elem_size(dt));
    check_buf(op, "y", y, "y_shape", y_shape, elem_size(dt));
    check_buf(op, "indices", indices, "y_shape", y_shape, 8);
    py::gil_scoped_release nogil;
    cuda::maxpool2d_forward(x, y, indices, g, dt, stream);
}

void maxpool2d_backward(Ptr dy, Ptr indices, const Shape& dy_shape, Ptr dx, const Shape& x_shape,
                        const Pair& kernel, const Pair& stride, const Pair& padding,
                        const Pair& dilation, bool ceil_mode, const std::string& dtype,
                        Ptr stream) {
    const char* op = "maxpool2d_backward";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode);
    check_expected(op, "dy_shape", dy_shape, {g.N, g.C, g.OH, g.OW});
    check_buf(op, "dy", dy, "dy_shape", dy_shape, elem_size(dt));
    check_buf(op, "indices", indices, "dy_shape", dy_shape, 8);
    check_buf(op, "dx", dx, "x_shape", x_shape, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::maxpool2d_backward(dy, indices, dx, g, dt, stream);
}

void avgpool2d_forward(Ptr x, const Shape& x_shape, Ptr y, const Shape& y_shape,
                       const Pair& kernel, const Pair& stride, const Pair& padding,
                       bool ceil_mode, bool count_include_pad,
                       const std::optional<std::int64_t>& divisor_override,
                       const std::string& dtype, Ptr stream) {
    const char* op = "avgpool2d_forward";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, {1, 1}, ceil_mode);
    const std::int64_t div = divisor_of(op, divisor_override);
    check_expected(op, "y_shape", y_shape, {g.N, g.C, g.OH, g.OW});
    check_buf(op, "x", x, "x_shape", x_shape, elem_size(dt));
    check_buf(op, "y", y, "y_shape", y_shape, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::avgpool2d_forward(x, y, g, count_include_pad, div, dt, stream);
}

void avgpool2d_backward(Ptr dy, const Shape& dy_shape, Ptr dx, const Shape& x_shape,
                        const Pair& kernel, const Pair& stride, const Pair& padding,
                        bool ceil_mode, bool count_include_pad,
                        const std::optional<std::int64_t>& divisor_override,
                        const std::string& dtype, Ptr stream) {
    const char* op = "avgpool2d_backward";
    const DType dt = parse_dtype(op, dtype);
    const Geom2d g = pool_geometry(op, x_shape, kernel, stride, padding, {1, 1}, ceil_mode);
    const std::int64_t div = divisor_of(op, divisor_override);
    check_expected(op, "dy_shape", dy_shape, {g.N, g.C, g.OH, g.OW});
    check_buf(op, "dy", dy, "dy_shape", dy_shape, elem_size(dt));
    check_buf(op, "dx", dx, "x_shape", x_shape, elem_size(dt));
    py::gil_scoped_release nogil;
    cuda::avgpool2d_backward(dy, dx, g, count_include_pad, div, dt, stream);
}

// ---------------------------------------------------------------------------- lstm_cell
void lstm_cell_forward(Ptr gates, Ptr c_prev, Ptr h, Ptr c, Ptr act, Ptr tanh_c, std::int64_t N,
                       std::int64_t H, const std::string& dtype, Ptr stream) {
    const char* op = "lstm_cell_forward";
    check_lstm_sizes(op, N, H);
    const DType dt = parse_dtype(op, dtype);
    const std::size_t es = elem_size(dt);
    check_buf(op, "gates", gates, 4 * N * H, es);
    check_buf(op, "c_prev", c_prev, N * H, es);
    check_buf(op, "h", h, N * H, es);
    check_buf(op, "c", c, N * H, es);
    check_buf(op, "act", act, 4 * N * H, es);
    check_buf(op, "tanh_c", tanh_c, N * H, es);
    py::gil_scoped_release nogil;
    cuda::lstm_cell_forward(gates, c_prev, h, c, act, tanh_c, N, H, dt, stream);
}

void lstm_cell_backward(Ptr dh, Ptr dc, Ptr c_prev, Ptr act, Ptr tanh_c, Ptr dgates, Ptr dc_prev,
                        std::int64_t N, std::int64_t H, const std::string& dtype, Ptr stream) {
    const char* op = "lstm_cell_backward";
    check_lstm_sizes(op, N, H);
    const DType dt = parse_dtype(op, dtype);
    const std::size_t es = elem_size(dt);
    check_buf(op, "dh", dh, N * H, es);
    check_buf(op, "dc", dc, N * H, es);
    check_buf(op, "c_prev", c_prev, N * H, es);
    check_buf(op, "act", act, 4 * N * H, es);
    check_buf(op, "tanh_c", tanh_c, N * H, es);
    check_buf(op, "dgates", dgates, 4 * N * H, es);
    check_buf(op, "dc_prev", dc_prev, N * H, es);
    py::gil_scoped_release nogil;
    cuda::lstm_cell_backward(dh, dc, c_prev, act, tanh_c, dgates, dc_prev, N, H, dt, stream);
}

// ---------------------------------------------------------------------------- optimizers
void sgd_step(const std::vector<Ptr>& params, const std::vector<Ptr>& grads,
              const std::vector<Ptr>& momentum_buffers, const std::vector<std::int64_t>& sizes,
              const std::vector<bool>& fresh, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, const std::string& dtype,
              Ptr stream) {
    const char* op = "sgd_step";
    const DType dt = parse_dtype(op, dtype);
    const std::size_t n = params.size(), es = elem_size(dt);
    check_list_length(op, "grads", grads.size(), n);
    check_list_length(op, "sizes", sizes.size(), n);
    const bool use_m = momentum != 0;
    if (use_m) {
        check_list_length(op, "momentum_buffers", momentum_buffers.size(), n);
        check_list_length(op, "fresh", fresh.size(), n);
    }
    std::vector<SgdParam> table(n);
    for (std::size_t i = 0; i < n; ++i) {
        check_size(op, sizes, i);
        check_buf(op, item("params", i), params[i], sizes[i], es);
        check_buf(op, item("grads", i), grads[i], sizes[i], es);
        const Ptr m_ptr = use_m ? momentum_buffers[i] : 0;
        if (use_m) check_buf(op, item("momentum_buffers", i), m_ptr, sizes[i], es);
        table[i] = {params[i], grads[i], m_ptr, sizes[i], use_m && fresh[i]};
    }
    py::gil_scoped_release nogil;
    cuda::sgd_step(table, lr, momentum, dampening, weight_decay, nesterov, maximize, dt, stream);
}

void adam_step(const std::vector<Ptr>& params, const std::vector<Ptr>& grads,
               const std::vector<Ptr>& exp_avgs, const std::vector<Ptr>& exp_avg_sqs,
               const std::vector<Ptr>& max_exp_avg_sqs, const std::vector<std::int64_t>& sizes,
               const std::vector<std::int64_t>& steps, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, bool decoupled,
               const std::string& dtype, Ptr stream) {
    const char* op = "adam_step";
    const DType dt = parse_dtype(op, dtype);
    const std::size_t n = params.size(), es = elem_size(dt);
    check_list_length(op, "grads", grads.size(), n);
    check_list_length(op, "exp_avgs", exp_avgs.size(), n);
    check_list_length(op, "exp_avg_sqs", exp_avg_sqs.size(), n);
    check_list_length(op, "sizes", sizes.size(), n);
    check_list_length(op, "steps", steps.size(), n);
    if (amsgrad) check_list_length(op, "max_exp_avg_sqs", max_exp_avg_sqs.size(), n);
    std::vector<AdamParam> table(n);
    for (std::size_t i = 0; i < n; ++i) {
        check_size(op, sizes, i);
        check_step(op, steps[i]);
        check_buf(op, item("params", i), params[i], sizes[i], es);
        check_buf(op, item("grads", i), grads[i], sizes[i], es);
        check_buf(op, item("exp_avgs", i), exp_avgs[i], sizes[i], es);
        check_buf(op, item("exp_avg_sqs", i), exp_avg_sqs[i], sizes[i], es);
        const Ptr vmax = amsgrad ? max_exp_avg_sqs[i] : 0;
        if (amsgrad) check_buf(op, item("max_exp_avg_sqs", i), vmax, sizes[i], es);
        table[i] = {params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, sizes[i], steps[i]};
    }
    py::gil_scoped_release nogil;
    cuda::adam_step(table, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, dt, stream);
}

}  // namespace host
}  // namespace cuda
}  // namespace minigrad
