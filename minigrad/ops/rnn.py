"""lstm_cell: one LSTM step as a fused op around the ``lstm_cell`` kernel.

The two matmuls stay outside, as differentiable primitives::

    gates = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh          (N, 4H), blocks i | f | g | o

and :class:`LSTMCell` does the rest in one kernel call forward and one backward::

    i, f, o = sigmoid(gates_i), sigmoid(gates_f), sigmoid(gates_o);  g = tanh(gates_g)
    c = f * c_prev + i * g;   h = o * tanh(c)

Backward calls ``lstm_cell_backward`` on raw arrays. Both ops here are ``FusedFunction``s:
with ``create_graph=True`` the base class recomputes through their ``composed`` twins
(:func:`lstm_cell_composed`, :func:`lstm_sequence_composed`: the same maths from
primitives) and differentiates that, so double backward works without an extra Function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..autograd import Function, FusedFunction, ShapeError
from ..backend import get_array_module
from ..kernels import dispatch

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads
    from ..tensor import Tensor


class LSTMCell(FusedFunction):
    """(gates (N, 4H), c_prev (N, H)) -> (h, c), both (N, H)."""

    @staticmethod
    def forward(ctx: Ctx, gates: Array, c_prev: Array) -> tuple[Array, Array]:
        _check_cell_shapes(gates.shape, c_prev.shape)
        h, c, act, tanh_c = dispatch("lstm_cell", gates).lstm_cell_forward(gates, c_prev)
        ctx.save_for_backward(gates, c_prev, act, tanh_c)
        return h, c

    @staticmethod
    def backward(ctx: Ctx, dh: Tensor, dc: Tensor) -> Grads:
        gates, c_prev, act, tanh_c = ctx.saved_tensors
        dgates, dc_prev = dispatch("lstm_cell", act._data).lstm_cell_backward(
            dh._data, dc._data, c_prev._data, act._data, tanh_c._data
        )
        return dgates, dc_prev

    @staticmethod
    def composed(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        return lstm_cell_composed(gates, c_prev)


def _check_cell_shapes(gates_shape, c_shape):
    if (
        len(c_shape) != 2
        or len(gates_shape) != 2
        or tuple(gates_shape) != (c_shape[0], 4 * c_shape[1])
    ):
        raise ShapeError(
            f"lstm_cell: gates must have shape (N, 4H) and c_prev (N, H); got "
            f"gates {tuple(gates_shape)} and c_prev {tuple(c_shape)}"
        )


def lstm_cell_composed(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """The op-by-op twin of :class:`LSTMCell` (for teaching and double backward)."""
    _check_cell_shapes(gates.shape, c_prev.shape)
    i, f, g, o = gates.chunk(4, dim=1)  # each (N, H), PyTorch's gate order
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c_prev + i * g
    h = o * c.tanh()
    return h, c


def lstm_cell_fused(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """(h, c) from gate pre-activations through the fused kernel."""
    return LSTMCell.apply(gates, c_prev)


def lstm_cell(
    input: Tensor,
    hx: tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step, as ``torch._VF.lstm_cell``: ``input`` (N, I), ``hx = (h, c)`` each (N, H),
    ``w_ih`` (4H, I), ``w_hh`` (4H, H), biases (4H,) or None. Returns ``(h', c')``."""
    h, c = hx
    if input.ndim != 2 or input.shape[1] != w_ih.shape[1]:
        raise ShapeError(
            f"lstm_cell: input of shape {tuple(input.shape)} does not match "
            f"w_ih of shape {tuple(w_ih.shape)} (expected (N, {w_ih.shape[1]}))"
        )
    H = w_hh.shape[1]
    for name, t in (("h", h), ("c", c)):
        if tuple(t.shape) != (input.shape[0], H):
            raise ShapeError(
                f"lstm_cell: expected {name} of shape {(input.shape[0], H)}, got {tuple(t.shape)}"
            )
    gates = input.matmul(w_ih.t()) + h.matmul(w_hh.t())
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    return LSTMCell.apply(gates, c)


# ----------------------------------------------------------------------------- whole sequence
class LSTMSequence(FusedFunction):
    """One direction of one LSTM layer over a whole sequence, as one graph node.

    ``(xw (T, N, 4H), h0 (N, H), c0 (N, H), w_hh (4H, H), reverse) -> (out (T, N, H), h_T, c_T)``
    where ``xw = x @ W_ih^T + b_ih + b_hh`` is the input projection of every step (computed
    outside, one matmul) and ``out[t]`` is the hidden state after step t. Forward runs the
    recurrence on raw arrays (per step: one matmul and the ``lstm_cell`` kernel); backward runs
    backpropagation through time on raw arrays::

        for t from the last step back:   dgates_t, dc = lstm_cell_backward(dout_t + dh, dc, ...)
                                         dh = dgates_t @ W_hh
        dW_hh = sum_t dgates_t^T @ h_{t-1}        -- one (4H, T*N) @ (T*N, H) GEMM at the end

    so the graph holds one node per layer and direction instead of ~4 per step, and the
    weight gradient is one large matmul instead of T small ones plus T additions (what cuDNN
    and PyTorch's CPU LSTM do). The per-step path (``nn.LSTM(..., ).fused = False``: one
    ``lstm_cell`` node per step) computes the same numbers; double backward differentiates
    :func:`lstm_sequence_composed` (the same steps from primitives).
    """

    @staticmethod
    def forward(
        ctx: Ctx, xw: Array, h0: Array, c0: Array, w_hh: Array, reverse: bool = False
    ) -> tuple[Array, Array, Array]:
        T, N, G = xw.shape
        H = G // 4
        K = dispatch("lstm_cell", xw)
        xp = get_array_module(xw)
        out = xp.empty((T, N, H), xw.dtype)
        acts = xp.empty((T, N, G), xw.dtype)
        tanh_cs = xp.empty((T, N, H), xw.dtype)
        c_prevs = xp.empty((T, N, H), xw.dtype)  # the cell state each step started from
        w_t = w_hh.T
        h, c = h0, c0
        for t in range(T - 1, -1, -1) if reverse else range(T):
            gates = xw[t] + h @ w_t
            c_prevs[t] = c
            h, c, acts[t], tanh_cs[t] = K.lstm_cell_forward(gates, c)
            out[t] = h
        ctx.reverse = reverse
        ctx.save_for_backward(xw, h0, c0, w_hh, out, acts, tanh_cs, c_prevs)
        return out, h, c

    @staticmethod
    def backward(ctx: Ctx, dout: Tensor, dh_T: Tensor, dc_T: Tensor) -> Grads:
        xw, h0, c0, w_hh, out, acts, tanh_cs, c_prevs = ctx.saved_tensors
        # (the engine passes zeros for an output that got no gradient: none of these is None)
        xw, h0, out, dout = xw._data, h0._data, out._data, dout._data
        acts, tanh_cs, c_prevs, w = acts._data, tanh_cs._data, c_prevs._data, w_hh._data
        dh, dc = dh_T._data, dc_T._data
        T, N, G = xw.shape
        K = dispatch("lstm_cell", xw)
        xp = get_array_module(xw)
        dgates_all = xp.empty((T, N, G), xw.dtype)
        order = range(T) if ctx.reverse else range(T - 1, -1, -1)
        for t in order:
            dgates, dc = K.lstm_cell_backward(dout[t] + dh, dc, c_prevs[t], acts[t], tanh_cs[t])
            dgates_all[t] = dgates
            dh = dgates @ w
        needs = ctx.needs_input_grad
        dw = None
        if needs[3]:
            # h_{t-1} for every step: h0 then the outputs, shifted by one in processing order
            h_prev = xp.empty(out.shape, out.dtype)
            if ctx.reverse:
                h_prev[-1] = h0
                h_prev[:-1] = out[1:]
            else:
                h_prev[0] = h0
                h_prev[1:] = out[:-1]
            G_ = dgates_all.reshape(T * N, G)
            dw = G_.T @ h_prev.reshape(T * N, -1)  # (4H, H): one GEMM over all steps
        return dgates_all, dh, dc, dw, None

    @staticmethod
    def composed(
        xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, reverse: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        return lstm_sequence_composed(xw, h0, c0, w_hh, reverse)


class _Unbind(Function):
    """x (T, ...) -> T tensors x[0], ..., x[T-1]; backward stacks the T gradients in one op
    (slicing T times would scatter T full-size zero buffers in backward: O(T^2))."""

    @staticmethod
    def forward(ctx, x):
        return tuple(x[t] for t in range(x.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        from ..tensor import stack

        return stack(grads, 0)


def _unbind(x):
    if x.shape[0] == 1:
        return (x[0],)
    return _Unbind.apply(x)


def lstm_sequence_stepwise(
    xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, reverse: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """:class:`LSTMSequence` step by step: one matmul and one fused ``lstm_cell`` node per
    step (readable in ``autograd.explain``; differentiable twice)."""
    return _steps(xw, h0, c0, w_hh, reverse, LSTMCell.apply)


def lstm_sequence_composed(
    xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, reverse: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """The twin of :class:`LSTMSequence` from primitives only (``lstm_cell_composed`` per
    step): what ``create_graph=True`` differentiates."""
    return _steps(xw, h0, c0, w_hh, reverse, lstm_cell_composed)


def _steps(xw, h0, c0, w_hh, reverse, cell):
    from ..tensor import stack

    T = xw.shape[0]
    w_t = w_hh.t()
    steps = _unbind(xw)
    h, c = h0, c0
    outs = [None] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h, c = cell(steps[t] + h.matmul(w_t), c)
        outs[t] = h
    return stack(outs, 0), h, c


def lstm_sequence(
    xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, reverse: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """(out (T, N, H), h_T, c_T) through the fused whole-sequence op (see LSTMSequence)."""
    T, N, G = xw.shape
    if (
        G % 4
        or tuple(h0.shape) != (N, G // 4)
        or tuple(c0.shape) != (N, G // 4)
        or tuple(w_hh.shape) != (G, G // 4)
    ):
        raise ShapeError(
            f"lstm_sequence: expected xw (T, N, 4H), h0 and c0 (N, H), w_hh "
            f"(4H, H); got xw {tuple(xw.shape)}, h0 {tuple(h0.shape)}, c0 "
            f"{tuple(c0.shape)}, w_hh {tuple(w_hh.shape)}"
        )
    return LSTMSequence.apply(xw, h0, c0, w_hh, reverse)
