"""Forward-mode automatic differentiation with dual numbers.

While a ``jvp`` runs, every tensor may carry a *tangent* (the directional derivative of its
value along the input tangents). After each op, ``autograd.Function.apply`` calls
:func:`_push`, which computes the op's output tangents from its input tangents with the
op's **jvp rule** (``JVP`` below), one rule beside each primitive's math:

    y = a * b          ->  ty = ta * b + a * tb
    y = exp(a)         ->  ty = y * ta
    y = softmax(a)     ->  ty = y * (ta - sum(y * ta))

Ops that are linear in their tensor inputs (shape ops, indexing, sums, pooling's average...)
share one rule: apply the same op to the tangents. The fused kernels without a rule of their
own (LSTM cell and sequence, attention, softmax-cross-entropy) fall back to the transposed
vector-Jacobian product of the op, through its composed twin: ``J u = d/dv <J^T v, u>``.
``rule_kind(FunctionClass)`` says which path an op takes.

Levels nest (a ``jvp`` inside a ``jvp``): a level's tangent computations run with only the
outer levels active, so the outer levels differentiate them in turn.
"""

from __future__ import annotations

import math

from .. import autograd
from ..autograd import enable_grad
from ..factories import zeros_like
from ..ops import attention as _attention
from ..ops import conv as _conv
from ..ops import elementwise as E
from ..ops import indexing as I
from ..ops import loss as _loss
from ..ops import matmul as _matmul
from ..ops import pool as P
from ..ops import reduce as R
from ..ops import rnn as _rnn
from ..ops import shape as S
from ..tensor import Tensor, data_of

_stack: list[_Level] = []  # active forward-mode levels, outermost first
_depth = 0  # how many of them are live for the op now running (outer ones only, inside a rule)


class _Level:
    """One ``jvp``: the tangents of the values it has seen, keyed by the identity of the
    tensor's array (the graph hands backward its saved values as new Tensor objects around the
    same arrays, so a backward pass inside a jvp finds their tangents: forward over reverse).
    The arrays are kept alive so their ids are not reused while the level runs."""

    def __init__(self):
        self.tangents: dict[int, tuple[object, Tensor]] = {}

    def set(self, t: Tensor, tangent: Tensor) -> None:
        arr = data_of(t)
        self.tangents[id(arr)] = (arr, tangent)

    def get(self, t) -> Tensor | None:
        if not isinstance(t, Tensor):
            return None
        arr = data_of(t)
        entry = self.tangents.get(id(arr))
        return None if entry is None or entry[0] is not arr else entry[1]


def _float(t) -> bool:
    return isinstance(t, Tensor) and t.dtype.kind == "f"


# ----------------------------------------------------------------------------- rules
# A rule gets (args, kwargs, outs, tan): args/kwargs as passed to apply, outs the result
# tensors, tan(i) the tangent of args[i] (zeros when it has none; None for a non-tensor).
# It returns one tangent per output (None for integer outputs).


def _linear(cls, args, kwargs, outs, tan):
    """Ops linear in their float tensor inputs: the same op on the tangents."""
    new = [tan(i) if _float(a) else a for i, a in enumerate(args)]
    res = cls.apply(*new, **kwargs)
    return res if isinstance(res, tuple) else (res,)


def _unary(fn):
    return lambda cls, args, kwargs, outs, tan: (fn(args[0], outs[0], tan(0)),)


def _binary(fn):
    """fn(a, b, out, ta, tb) where a side may be a Python number (its tangent is 0)."""

    def rule(cls, args, kwargs, outs, tan):
        return (fn(args[0], args[1], outs[0], tan(0), tan(1)),)

    return rule


def _mul(a, b, y, ta, tb):
    # d(a b) = ta b + a tb
    terms = [ta * b if ta is not None else None, a * tb if tb is not None else None]
    return _sum_terms(terms, y)


def _div(a, b, y, ta, tb):
    # d(a / b) = ta / b - tb a / b^2 = (ta - y tb) / b
    num = _sum_terms([ta, -(y * tb) if tb is not None else None], y)
    return num / b


def _pow(a, b, y, ta, tb):
    # d(a^b) = b a^(b-1) ta + a^b log(a) tb   (the log term taken as 0 where a == 0, as backward)
    terms = []
    if ta is not None:
        terms.append(ta * 0.0 if isinstance(b, int | float) and b == 0 else ta * b * a ** (b - 1))
    if tb is not None:
        log_a = math.log(a) if isinstance(a, int | float) else a.log()
        term = tb * y * log_a
        if isinstance(a, Tensor):
            term = term.masked_fill((a == 0) & (b >= 0), 0.0)
        terms.append(term)
    return _sum_terms(terms, y)


def _extreme(a, b, y, ta, tb, pick_a):
    """maximum/minimum: the tangent of the side that wins; ties split evenly (as backward)."""
    ta = ta if ta is not None else zeros_like(y)
    tb = tb if tb is not None else zeros_like(y)
    a_t = a if isinstance(a, Tensor) else Tensor(a)
    b_t = b if isinstance(b, Tensor) else Tensor(b)
    win = pick_a(a_t, b_t)
    tie = a_t == b_t
    return E.Where.apply(tie, (ta + tb) * 0.5, E.Where.apply(win, ta, tb))


def _sum_terms(terms, like):
    terms = [t for t in terms if t is not None]
    if not terms:
        return zeros_like(like)
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _reduce_extreme(cls, args, kwargs, outs, tan):
    a, y = args[0], outs[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    dims = R.normalize_dims(dim, a.ndim, "max")
    y_keep = y if keepdim else y.reshape(R.keepdim_shape(a.shape, dims))
    hit = a == y_keep
    if getattr(cls, "nan_ties", False):  # max()/min(): a NaN result is the NaNs
        hit = hit | (a.isnan() & y_keep.isnan())
    mask = hit.to(a.dtype)
    # the tangent of the (average over tied) extreme elements, as amax's backward splits it
    t = (tan(0) * mask).sum(dims, keepdim=keepdim) / mask.sum(dims, keepdim=keepdim)
    return (t,)


def _var(cls, args, kwargs, outs, tan):
    # d var = 2 / (n - correction) * sum((a - mean) ta), as Var's backward
    a, dims, correction, keepdim = args
    n = math.prod(a.shape[d] for d in dims)
    scale = 2.0 / (n - correction) if n - correction > 0 else float("inf")
    centered = a - a.mean(dims, keepdim=True)
    return ((centered * tan(0)).sum(dims, keepdim=keepdim) * scale,)


def _softmax(cls, args, kwargs, outs, tan):
    dim = args[1] if len(args) > 1 else kwargs["dim"]
    y, ta = outs[0], tan(0)
    return (y * (ta - (y * ta).sum(dim, keepdim=True)),)  # J = diag(y) - y y^T


def _log_softmax(cls, args, kwargs, outs, tan):
    dim = args[1] if len(args) > 1 else kwargs["dim"]
    ta = tan(0)
    return (ta - (outs[0].exp() * ta).sum(dim, keepdim=True),)


def _logsumexp(cls, args, kwargs, outs, tan):
    a = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    dims = R.normalize_dims(dim, a.ndim, "logsumexp")
    y_keep = outs[0] if keepdim else outs[0].reshape(R.keepdim_shape(a.shape, dims))
    return (((a - y_keep).exp() * tan(0)).sum(dims, keepdim=keepdim),)


def _matmul_rule(cls, args, kwargs, outs, tan):
    a, b = args
    terms = []
    if tan.present(0):
        terms.append(cls.apply(tan(0), b))
    if tan.present(1):
        terms.append(cls.apply(a, tan(1)))
    return (_sum_terms(terms, outs[0]),)


def _conv2d(cls, args, kwargs, outs, tan):
    # conv(x, w) + b is bilinear in (x, w) plus b: d = conv(tx, w) + conv(x, tw) + tb
    x, w, b, *geometry = args
    terms = []
    if tan.present(0):
        terms.append(cls.apply(tan(0), w, None, *geometry))
    if tan.present(1):
        terms.append(cls.apply(x, tan(1), None, *geometry))
    if b is not None and tan.present(2):
        terms.append(tan(2).reshape(1, -1, 1, 1).expand(outs[0].shape))
    return (_sum_terms(terms, outs[0]),)


def _bias_relu(cls, args, kwargs, outs, tan):
    x, bias = args
    y = outs[0]
    t = tan(0)
    if bias is not None and tan.present(1):
        t = t + tan(1).reshape((1, -1) + (1,) * (x.ndim - 2))
    return (t * (y > 0).to(y.dtype),)


def _maxpool(cls, args, kwargs, outs, tan):
    y, indices = outs
    n, c = y.shape[0], y.shape[1]
    tx = tan(0).reshape(n, c, -1)
    ty = tx.gather(2, indices.reshape(n, c, -1)).reshape(y.shape)  # d max = t at the argmax
    return (ty, None)


def _masked_fill(cls, args, kwargs, outs, tan):
    return (E.MaskedFill.apply(tan(0), args[1], 0.0),)  # filled places are constant


def _pad(cls, args, kwargs, outs, tan):
    a, pad, *_ = args
    return (S.Pad.apply(tan(0), pad, 0.0),)  # padding is constant


def _clamp(cls, args, kwargs, outs, tan):
    a, lo, hi = args
    t = tan(0)
    if lo is not None:
        t = t * (a >= lo).to(a.dtype)
    if hi is not None:
        t = t * (a <= hi).to(a.dtype)
    return (t,)


def _relu(a, y, ta):
    return ta * (a > 0).to(a.dtype)


def _abs(a, y, ta):
    return ta * a.sign()


def _where(cls, args, kwargs, outs, tan):
    cond, a, b = args
    ta = tan(1) if isinstance(a, Tensor) else zeros_like(outs[0])
    tb = tan(2) if isinstance(b, Tensor) else zeros_like(outs[0])
    return (E.Where.apply(cond, ta, tb),)


JVP = {
    E.Add: _binary(lambda a, b, y, ta, tb: _sum_terms([ta, tb], y)),
    E.Sub: _binary(lambda a, b, y, ta, tb: _sum_terms([ta, -tb if tb is not None else None], y)),
    E.Mul: _binary(_mul),
    E.Div: _binary(_div),
    E.DivRounding: lambda cls, args, kwargs, outs, tan: (zeros_like(outs[0]),),  # constant
    E.Pow: _binary(_pow),
    E.Maximum: _binary(lambda a, b, y, ta, tb: _extreme(a, b, y, ta, tb, lambda p, q: p > q)),
    E.Minimum: _binary(lambda a, b, y, ta, tb: _extreme(a, b, y, ta, tb, lambda p, q: p < q)),
    E.Neg: _unary(lambda a, y, ta: -ta),
    E.Abs: _unary(_abs),
    E.Exp: _unary(lambda a, y, ta: y * ta),
    E.Log: _unary(lambda a, y, ta: ta / a),
    E.Sqrt: _unary(lambda a, y, ta: ta / (2 * y)),
    E.Sin: _unary(lambda a, y, ta: a.cos() * ta),
    E.Cos: _unary(lambda a, y, ta: -(a.sin() * ta)),
    E.Tanh: _unary(lambda a, y, ta: (1 - y * y) * ta),
    E.Sigmoid: _unary(lambda a, y, ta: y * (1 - y) * ta),
    E.Relu: _unary(_relu),
    E.Clamp: _clamp,
    E.Where: _where,
    E.MaskedFill: _masked_fill,
    E.BiasReLU: _bias_relu,
    R.Amax: _reduce_extreme,
    R.Amin: _reduce_extreme,
    R.MaxAll: _reduce_extreme,
    R.MinAll: _reduce_extreme,
    R.Var: _var,
    R.Softmax: _softmax,
    R.LogSoftmax: _log_softmax,
    R.LogSumExp: _logsumexp,
    _matmul.MatMul: _matmul_rule,
    _conv.Conv2d: _conv2d,
    P.MaxPool2d: _maxpool,
    S.Pad: _pad,
}
# Linear in their float tensor inputs: the tangent is the same op applied to the tangents.
LINEAR = {
    E.Cast,
    E.ToDevice,
    E.Copy,
    R.Sum,
    S.Reshape,
    S.Permute,
    S.BroadcastTo,
    S.Cat,
    I.GetItem,
    I.IndexAdd,
    I.Gather,
    I.ScatterAdd,
    I.IndexPut,
    P.AvgPool2d,
    _rnn._Unbind,
}
# Fused kernels that use the transposed-vjp fallback through their composed twin.
FALLBACK = {_rnn.LSTMCell, _rnn.LSTMSequence, _attention.Attention, _loss.SoftmaxCrossEntropy}


def _register_late():
    """The ops/special, scan and index_extra primitives keep their rules beside them."""
    from ..ops import extra as X

    JVP.update(X.JVP)
    LINEAR.update(X.LINEAR)


def rule_kind(cls) -> str:
    """ "rule" (a jvp rule of its own), "linear" (the op on the tangents) or
    "transposed-vjp" (the fallback)."""
    _ensure_rules()
    if cls in JVP:
        return "rule"
    if cls in LINEAR:
        return "linear"
    return "transposed-vjp"


_rules_ready = False


def _ensure_rules():
    global _rules_ready
    if not _rules_ready:
        _register_late()
        _rules_ready = True


# ----------------------------------------------------------------------------- the hook
def _transposed_vjp(cls, args, kwargs, outs, tangents):
    """J u = d/dv <J^T v, u>: the vjp is linear in v, so differentiating it w.r.t. v along u
    gives the jvp. Runs the op again through its composed twin (create_graph)."""
    from ..autograd import grad

    with enable_grad():
        inputs = [a.detach().requires_grad_() if _float(a) else a for a in args]
        res = cls.apply(*inputs, **kwargs)
        res = res if isinstance(res, tuple) else (res,)
        float_out = [r for r in res if _float(r)]
        vs = [zeros_like(r).requires_grad_() for r in float_out]
        diff = [(x, t) for x, t in zip(inputs, tangents) if _float(x) and t is not None]
        g = grad(
            float_out, [x for x, _ in diff], grad_outputs=vs, create_graph=True, allow_unused=True
        )
        pairs = [(gi, t) for gi, (_, t) in zip(g, diff) if gi is not None]
        if not pairs:
            return tuple(zeros_like(r) if _float(r) else None for r in res)
        jv = grad(
            [gi for gi, _ in pairs], vs, grad_outputs=[t for _, t in pairs], allow_unused=True
        )
    it = iter(jv)
    return tuple((next(it) if _float(r) else None) for r in res)


class _Tangents:
    """tan(i) for one level: the tangent of args[i], zeros for a tensor without one."""

    def __init__(self, level, args):
        self.level, self.args = level, args

    def __call__(self, i):
        a = self.args[i]
        if not isinstance(a, Tensor):
            return None
        t = self.level.get(a)
        return t if t is not None else zeros_like(a)

    def present(self, i) -> bool:
        return self.level.get(self.args[i]) is not None


def _push(cls, args, kwargs, results):
    """autograd's forward-mode hook: give ``results`` their tangents at every live level."""
    global _depth
    outs = results if isinstance(results, tuple) else (results,)
    live = _depth
    for k in range(live - 1, -1, -1):
        level = _stack[k]
        if not any(level.get(a) is not None for a in args):
            continue
        saved, _depth = _depth, k  # only the outer levels see this level's math
        try:
            tangents = _rule_tangents(cls, args, kwargs, outs, level)
        finally:
            _depth = saved
        for out, t in zip(outs, tangents):
            if t is not None and _float(out):
                level.set(out, t)


def _rule_tangents(cls, args, kwargs, outs, level):
    _ensure_rules()
    tan = _Tangents(level, args)
    if cls in JVP:
        return JVP[cls](cls, args, kwargs, outs, tan)
    if cls in LINEAR:
        return _linear(cls, args, kwargs, outs, tan)
    global _depth
    tangents = [tan(i) if _float(a) else None for i, a in enumerate(args)]
    saved, _depth = _depth, 0  # the fallback's own ops carry no tangents
    try:
        return _transposed_vjp(cls, args, kwargs, outs, tangents)
    finally:
        _depth = saved


def _push_inplace(target, result) -> None:
    """An in-place op wrote ``result`` into ``target``: the target takes its tangent."""
    for level in _stack[:_depth]:
        t = level.get(result)
        if t is not None:
            level.set(target, t)
        elif level.get(target) is not None:  # overwritten by a constant
            level.set(target, zeros_like(target))


class dual_level:
    """Context manager: a new forward-mode level (``with dual_level() as level: ...``)."""

    def __enter__(self) -> _Level:
        global _depth
        self.level = _Level()
        _stack.append(self.level)
        _depth = len(_stack)
        autograd.hooks.set_forward_ad(_push, _push_inplace)
        return self.level

    def __exit__(self, *exc):
        global _depth
        _stack.pop()
        _depth = len(_stack)
        if not _stack:
            autograd.hooks.set_forward_ad(None, None)
        return False
