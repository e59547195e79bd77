// optim_host.cpp: host twins of the fused CUDA optimizer kernels, in minigrad._cuda.
//
//   sgd_step_host(params, grads, momentum_buffers, fresh, lr, momentum, dampening,
//                 weight_decay, nesterov, maximize)
//   adam_step_host(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1,
//                  beta2, eps, weight_decay, amsgrad, decoupled)
//
// Same arguments as sgd_step / adam_step, but NumPy arrays (updated in place) instead of device
// pointers, and no stream.  Each element goes through optim_math.h's sgd_update / adam_update,
// the functions the kernels in optim.cu call, with the scalars built by the same
// make_*_scalars / adam_step_scalars: the GPU's arithmetic, run on the CPU.  They exist to be
// tested without a GPU (tests/test_optim_formula.py); they are not an optimizer variant.
// Element order differs from the GPU's (serial here), which cannot change results: every
// element is independent.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "optim_math.h"

namespace py = pybind11;
namespace om = minigrad::optim_math;

namespace {

// Every array: a writeable (when `inplace`), C-contiguous array of the first param's dtype
// and size.
void check_list(const char* op, const char* name, const std::vector<py::array>& arrays,
                const std::vector<py::array>& params, bool inplace) {
    if (arrays.size() != params.size()) {
        throw py::value_error(std::string(op) + ": '" + name + "' has " +
                              std::to_string(arrays.size()) + " entries, expected " +
                              std::to_string(params.size()));
    }
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const py::array& a = arrays[i];
        const std::string arg = std::string(name) + "[" + std::to_string(i) + "]";
        if (!a.dtype().is(params[0].dtype())) {
            throw py::type_error(std::string(op) + ": '" + arg + "' has a different dtype");
        }
        if (a.size() != params[i].size()) {
            throw py::value_error(std::string(op) + ": '" + arg + "' has " +
                                  std::to_string(a.size()) + " elements, expected " +
                                  std::to_string(params[i].size()));
        }
        if (!(a.flags() & py::array::c_style)) {
            throw py::value_error(std::string(op) + ": '" + arg + "' must be C-contiguous");
        }
        if (inplace && !a.writeable()) {
            throw py::value_error(std::string(op) + ": '" + arg + "' must be writeable");
        }
    }
}

bool is_f32(const char* op, const std::vector<py::array>& params) {
    if (params.empty()) return true;
    if (params[0].dtype().is(py::dtype::of<float>())) return true;
    if (params[0].dtype().is(py::dtype::of<double>())) return false;
    throw py::type_error(std::string(op) + ": params must be float32 or float64");
}

template <typename T>
T* data(const py::array& a) {
    return static_cast<T*>(const_cast<void*>(a.data()));
}

template <typename T>
void sgd_host(const std::vector<py::array>& p, const std::vector<py::array>& g,
              const std::vector<py::array>& m, const std::vector<bool>& fresh, double lr,
              double momentum, double dampening, double wd, bool nesterov, bool maximize) {
    const auto k = om::make_sgd_scalars<T>(lr, momentum, dampening, wd, nesterov, maximize);
    for (std::size_t i = 0; i < p.size(); ++i) {
        T* mp = k.use_momentum ? data<T>(m[i]) : nullptr;
        const bool first = k.use_momentum && fresh[i];
        for (std::int64_t j = 0; j < static_cast<std::int64_t>(p[i].size()); ++j) {
            om::sgd_update(data<T>(p[i]), data<T>(g[i]), mp, j, first, k);
        }
    }
}

template <typename T>
void adam_host(const std::vector<py::array>& p, const std::vector<py::array>& g,
               const std::vector<py::array>& m, const std::vector<py::array>& v,
               const std::vector<py::array>& vmax, const std::vector<std::int64_t>& steps,
               double lr, double beta1, double beta2, double eps, double wd, bool amsgrad,
               bool decoupled) {
    const auto k = om::make_adam_scalars<T>(lr, beta1, beta2, eps, wd, amsgrad, decoupled);
    for (std::size_t i = 0; i < p.size(); ++i) {
        T ss, bc2s;
        om::adam_step_scalars<T>(lr, beta1, beta2, steps[i], &ss, &bc2s);
        T* vm = amsgrad ? data<T>(vmax[i]) : nullptr;
        for (std::int64_t j = 0; j < static_cast<std::int64_t>(p[i].size()); ++j) {
            om::adam_update(data<T>(p[i]), data<T>(g[i]), data<T>(m[i]), data<T>(v[i]), vm, j,
                            ss, bc2s, k);
        }
    }
}

}  // namespace

void register_optim_host(py::module_& m) {
    m.def(
        "sgd_step_host",
        [](const std::vector<py::array>& params, const std::vector<py::array>& grads,
           const std::vector<py::array>& momentum_buffers, const std::vector<bool>& fresh,
           double lr, double momentum, double dampening, double weight_decay, bool nesterov,
           bool maximize) {
            const char* op = "sgd_step_host";
            const bool f32 = is_f32(op, params);
            check_list(op, "params", params, params, true);
            check_list(op, "grads", grads, params, false);
            if (momentum != 0) {
                check_list(op, "momentum_buffers", momentum_buffers, params, true);
                if (fresh.size() != params.size()) {
                    throw py::value_error(std::string(op) + ": 'fresh' needs one entry per "
                                                            "parameter");
                }
            }
            if (f32) {
                sgd_host<float>(params, grads, momentum_buffers, fresh, lr, momentum, dampening,
                                weight_decay, nesterov, maximize);
            } else {
                sgd_host<double>(params, grads, momentum_buffers, fresh, lr, momentum,
                                 dampening, weight_decay, nesterov, maximize);
            }
        },
        py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("fresh"),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
        py::arg("nesterov"), py::arg("maximize"),
        "Host twin of sgd_step: the CUDA kernel's per-element formula on NumPy arrays.");
    m.def(
        "adam_step_host",
        [](const std::vector<py::array>& params, const std::vector<py::array>& grads,
           const std::vector<py::array>& exp_avgs, const std::vector<py::array>& exp_avg_sqs,
           const std::vector<py::array>& max_exp_avg_sqs, const std::vector<std::int64_t>& steps,
           double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
           bool decoupled) {
            const char* op = "adam_step_host";
            const bool f32 = is_f32(op, params);
            check_list(op, "params", params, params, true);
            check_list(op, "grads", grads, params, false);
            check_list(op, "exp_avgs", exp_avgs, params, true);
            check_list(op, "exp_avg_sqs", exp_avg_sqs, params, true);
            if (amsgrad) check_list(op, "max_exp_avg_sqs", max_exp_avg_sqs, params, true);
            if (steps.size() != params.size()) {
                throw py::value_error(std::string(op) + ": 'steps' needs one entry per parameter");
            }
            for (auto s : steps) {
                if (s < 1) throw py::value_error(std::string(op) + ": step must be >= 1");
            }
            if (f32) {
                adam_host<float>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                 lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled);
            } else {
                adam_host<double>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                  lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled);
            }
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
        py::arg("max_exp_avg_sqs"), py::arg("steps"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("amsgrad"),
        py::arg("decoupled"),
        "Host twin of adam_step: the CUDA kernel's per-element formula on NumPy arrays.");
}
