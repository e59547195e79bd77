"""``Module``: the base class of every layer and model (PyTorch's ``nn.Module`` API).

Assigning a :class:`Parameter` or a Module to an attribute registers it (``__setattr__``);
``register_buffer`` adds non-learnable state (BatchNorm's running statistics). Everything else
(``parameters()``, ``state_dict()``, ``to()``, ``train()``) walks those three dictionaries.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import Function, is_grad_enabled, no_grad
from ..backend import Device, to_device
from ..tensor import Tensor, bump_version, data_of, set_data
from .parameter import Parameter

_hook_ids = itertools.count()
_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _RemovableHandle:
    def __init__(self, hooks: OrderedDict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class _HookIdentity(Function):
    """Identity node around a module's inputs or outputs: its backward is where the module's
    full backward hooks see (and may replace) ``grad_output`` and ``grad_input``."""

    @staticmethod
    def forward(ctx, *arrays, state, side):
        ctx.state, ctx.side = state, side
        views = tuple(a.view() for a in arrays)  # views: outputs share the inputs' versions
        return views if len(views) > 1 else views[0]

    @staticmethod
    def backward(ctx, *grads):
        if ctx.side == "output":
            return ctx.state.output_grads(grads)
        return ctx.state.input_grads(grads)


class _BackwardHookState:
    """One module call's full backward hooks (PyTorch's ``BackwardHook``): the output node
    runs the pre-hooks and keeps ``grad_output``; the input node, which runs once every
    gradient inside the module is summed, calls the hooks with ``(grad_input, grad_output)``.
    Entries are None for arguments that are not Tensors requiring grad."""

    def __init__(self, module):
        self.module = module
        self.n_inputs = 0
        self.input_index = None  # positions of the wrapped inputs; None: none requires grad
        self.n_outputs = 0
        self.output_index = None
        self.grad_output = None

    @staticmethod
    def _wrap(values, state, side):
        index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
        if not index or not is_grad_enabled():
            return values, None
        new = _HookIdentity.apply(*(values[i] for i in index), state=state, side=side)
        new = new if isinstance(new, tuple) else (new,)
        values = list(values)
        for i, t in zip(index, new):
            values[i] = t
        return tuple(values), index

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        args, self.input_index = self._wrap(args, self, "input")
        return args

    def wrap_outputs(self, result):
        single = isinstance(result, Tensor)
        if not single and not isinstance(result, tuple):
            return result  # other output types: no hooks (as PyTorch, which wraps tuples only)
        outs = (result,) if single else result
        self.n_outputs = len(outs)
        outs, self.output_index = self._wrap(outs, self, "output")
        return outs[0] if single else outs

    @staticmethod
    def _pack(index, grads, n):
        packed = [None] * n
        for i, g in zip(index, grads):
            packed[i] = g
        return tuple(packed)

    def _check(self, res, n, what):
        if not isinstance(res, tuple | list) or len(res) != n:
            got = len(res) if isinstance(res, tuple | list) else type(res).__name__
            raise RuntimeError(
                f"{type(self.module).__name__}: backward hook returned an invalid "
                f"number of {what}, got {got}, but expected {n}"
            )
        return tuple(res)

    def output_grads(self, grads):
        grad_output = self._pack(self.output_index, grads, self.n_outputs)
        for hook in list(self.module._backward_pre_hooks.values()):
            res = hook(self.module, grad_output)
            if res is not None:
                grad_output = self._check(res, self.n_outputs, "grad_output")
        self.grad_output = grad_output
        if self.input_index is None:  # no input requires grad: the hooks run now
            grad_input = (None,) * self.n_inputs
            if self.module._backward_hooks:
                warnings.warn(
                    "Full backward hook is firing when gradients are computed with "
                    "respect to module outputs since no inputs require gradients",
                    stacklevel=2,
                )
            for hook in list(self.module._backward_hooks.values()):
                res = hook(self.module, grad_input, grad_output)
                if res is not None and not all(r is None for r in res):
                    raise RuntimeError(
                        f"{type(self.module).__name__}: backward hook for a module where no "
                        "input requires gradient should always return None or None for all "
                        "gradients"
                    )
        return tuple(grad_output[i] for i in self.output_index)

    def input_grads(self, grads):
        grad_input = self._pack(self.input_index, grads, self.n_inputs)
        for hook in list(self.module._backward_hooks.values()):
            res = hook(self.module, grad_input, self.grad_output)
            if res is not None:
                grad_input = self._check(res, self.n_inputs, "grad_input")
        return tuple(grad_input[i] for i in self.input_index)


def _register(hooks: OrderedDict, hook, prepend: bool) -> _RemovableHandle:
    key = next(_hook_ids)
    hooks[key] = hook
    if prepend:
        hooks.move_to_end(key, last=False)
    return _RemovableHandle(hooks, key)


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (nested reprs, as PyTorch prints them)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _as_array(value, key: str):
    """A state_dict value (minigrad Tensor, NumPy array, anything ``np.asarray`` takes)."""
    if isinstance(value, Tensor):
        return data_of(value)
    try:
        return np.asarray(value)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise TypeError(f"load_state_dict: value for {key!r} is not an array ({e})") from e


class Module:
    """Base class for all layers and models. Subclasses call ``super().__init__()`` first,
    assign Parameters/Modules as attributes and define ``forward``."""

    _version = 1

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ------------------------------------------------------------------ registration
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_init("parameter")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"parameter name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter "
                f"'{name}' (minigrad.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        self._check_init("buffer")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer "
                f"'{name}' (minigrad Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_init("child module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str) or "." in name or not name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            if name in params:  # replacing keeps its place in the order (as PyTorch)
                params[name] = value
            else:
                self._forget(name)
                self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter "
                    f"'{name}' (minigrad.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("child module")
            if name not in self._modules:  # replacing keeps its place in the order
                self._forget(name)
            self._modules[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module "
                    f"'{name}' (minigrad.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(minigrad Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        for d in ("_parameters", "_buffers", "_modules"):
            self.__dict__[d].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str):
        # only called when normal lookup fails
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(table, {}):
                del self.__dict__[table][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for mod_prefix, module in mods:
            for name, t in getattr(module, table).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively), then on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                data_of(p.grad)[...] = 0

    # ------------------------------------------------------------------ device and dtype
    def _apply_arrays(self, fn, floating_only: bool) -> Module:
        """Swap every parameter's and buffer's array for ``fn(array)`` in place, so the
        Parameter objects (and an optimizer's references to them) stay the same."""

        def convert(arr):
            if floating_only and arr.dtype.kind != "f":
                return arr
            return fn(arr)

        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is None:
                    continue
                old = data_of(t)
                new = convert(old)
                if new is not old:
                    set_data(t, new)
                if t.grad is not None:
                    old = data_of(t.grad)
                    new = convert(old)
                    if new is not old:
                        set_data(t.grad, new)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``; in place."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str | Device):
                device = a
            else:
                dtype = a
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")
            self._apply_arrays(lambda a: a if a.dtype == dtype else a.astype(dtype), True)
        if device is not None:
            dev = Device(device)
            self._apply_arrays(lambda a: to_device(a, dev), False)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Module:
        return self.to(Device("cuda", device))

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    # ------------------------------------------------------------------ state dict
    def _state_items(self):
        """(name, tensor) of this module's own saved state: parameters, then persistent
        buffers (PyTorch's order)."""
        for name, p in self._parameters.items():
            if p is not None:
                yield name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield name, b

    def _state_walk(self, prefix: str = ""):
        for name, t in self._state_items():
            yield prefix + name, t
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_walk(prefix + name + ".")

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        out = OrderedDict() if destination is None else destination
        for key, t in self._state_walk(prefix):
            out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values (minigrad Tensors or NumPy arrays) into the existing parameters and
        buffers, in place. Every problem is collected and reported in one RuntimeError; with
        ``strict=False`` missing/unexpected keys are returned instead (shape mismatches
        still raise). Nothing is copied when an error is raised."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = OrderedDict(self._state_walk())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, copies = [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            arr = _as_array(state_dict[key], key)
            if tuple(arr.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{tuple(arr.shape)} from checkpoint, the shape in current model "
                    f"is {tuple(target.shape)}."
                )
            else:
                copies.append((target, arr))
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: "
                    + ", ".join(f'"{k}"' for k in unexpected)
                    + ". ",
                )
            if missing:
                errors.insert(
                    0,
                    "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ",
                )
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        with no_grad():
            for target, arr in copies:
                src = to_device(arr, target.device)
                data_of(target)[...] = src.astype(target.dtype, copy=False)
                bump_version(target)
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling
    def register_forward_pre_hook(self, hook):
        """``hook(module, args) -> None or new args`` runs before ``forward``."""
        key = next(_hook_ids)
        self._forward_pre_hooks[key] = hook
        return _RemovableHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook):
        """``hook(module, args, output) -> None or new output`` runs after ``forward``."""
        key = next(_hook_ids)
        self._forward_hooks[key] = hook
        return _RemovableHandle(self._forward_hooks, key)

    def register_full_backward_hook(self, hook, prepend: bool = False):
        """``hook(module, grad_input, grad_output) -> None or new grad_input`` runs when the
        gradients with respect to the module's positional inputs are computed. Both are
        tuples, one entry per positional input / output (None where not a Tensor that
        requires grad); a returned tuple replaces ``grad_input`` for the rest of backward.
        Do not modify the arguments in place."""
        return _register(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False):
        """``hook(module, grad_output) -> None or new grad_output`` runs when the gradients
        with respect to the module's outputs arrive, before the module's own backward; a
        returned tuple replaces ``grad_output``."""
        return _register(self._backward_pre_hooks, hook, prepend)

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            out = hook(self, args)
            if out is not None:
                args = out if isinstance(out, tuple) else (out,)
        d = self.__dict__
        bw_hooks = None
        if d.get("_backward_hooks") or d.get("_backward_pre_hooks"):
            bw_hooks = _BackwardHookState(self)
            args = bw_hooks.wrap_inputs(args)
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            out = hook(self, args, result)
            if out is not None:
                result = out
        if bw_hooks is not None:
            result = bw_hooks.wrap_outputs(result)
        return result

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(m), 2)}" for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"
