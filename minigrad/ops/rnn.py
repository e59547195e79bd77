"""lstm_cell: one LSTM step as a fused op around the ``lstm_cell`` kernel.

The two matmuls stay outside, as differentiable primitives::

    gates = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh          (N, 4H), blocks i | f | g | o

and :class:`LSTMCell` does the rest in one kernel call forward and one backward::

    i, f, o = sigmoid(gates_i), sigmoid(gates_f), sigmoid(gates_o);  g = tanh(gates_g)
    c = f * c_prev + i * g;   h = o * tanh(c)

Backward calls ``lstm_cell_backward`` on raw arrays. With ``create_graph=True`` (grad mode on
inside backward) it recomputes through :func:`lstm_cell_composed`, the same maths from
primitives, and differentiates that, so double backward works without an extra Function.
"""

from __future__ import annotations

from ..autograd import Function, ShapeError, is_grad_enabled
from . import kernel


class LSTMCell(Function):
    """(gates (N, 4H), c_prev (N, H)) -> (h, c), both (N, H)."""

    @staticmethod
    def forward(ctx, gates, c_prev):
        _check_cell_shapes(gates.shape, c_prev.shape)
        h, c, act, tanh_c = kernel("lstm_cell", gates).lstm_cell_forward(gates, c_prev)
        ctx.save_for_backward(gates, c_prev, act, tanh_c)
        return h, c

    @staticmethod
    def backward(ctx, dh, dc):
        gates, c_prev, act, tanh_c = ctx.saved_tensors
        if is_grad_enabled():  # create_graph=True: a differentiable gradient
            return _backward_through_twin(dh, dc, gates, c_prev, ctx.needs_input_grad)
        dgates, dc_prev = kernel("lstm_cell", act._data).lstm_cell_backward(
            dh._data, dc._data, c_prev._data, act._data, tanh_c._data)
        return dgates, dc_prev


def _check_cell_shapes(gates_shape, c_shape):
    if len(c_shape) != 2 or len(gates_shape) != 2 or tuple(gates_shape) != (
            c_shape[0], 4 * c_shape[1]):
        raise ShapeError(f"lstm_cell: gates must have shape (N, 4H) and c_prev (N, H); got "
                         f"gates {tuple(gates_shape)} and c_prev {tuple(c_shape)}")


def _backward_through_twin(dh, dc, gates, c_prev, needs):
    from ..autograd import grad as autograd_grad

    # fresh aliases so autograd.grad stops here instead of running the producers' nodes
    g_in = gates.reshape(gates.shape) if needs[0] else gates
    c_in = c_prev.reshape(c_prev.shape) if needs[1] else c_prev
    h, c = lstm_cell_composed(g_in, c_in)
    wanted = [t for t, n in zip((g_in, c_in), needs) if n]
    grads = iter(autograd_grad([h, c], wanted, grad_outputs=[dh, dc], create_graph=True,
                               retain_graph=True, allow_unused=True))
    return tuple(next(grads) if n else None for n in needs)


def lstm_cell_composed(gates, c_prev):
    """The op-by-op twin of :class:`LSTMCell` (for teaching and double backward)."""
    _check_cell_shapes(gates.shape, c_prev.shape)
    i, f, g, o = gates.chunk(4, dim=1)  # each (N, H), PyTorch's gate order
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c_prev + i * g
    h = o * c.tanh()
    return h, c


def lstm_cell_fused(gates, c_prev):
    """(h, c) from gate pre-activations through the fused kernel."""
    return LSTMCell.apply(gates, c_prev)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """One LSTM step, as ``torch._VF.lstm_cell``: ``input`` (N, I), ``hx = (h, c)`` each (N, H),
    ``w_ih`` (4H, I), ``w_hh`` (4H, H), biases (4H,) or None. Returns ``(h', c')``."""
    h, c = hx
    if input.ndim != 2 or input.shape[1] != w_ih.shape[1]:
        raise ShapeError(f"lstm_cell: input of shape {tuple(input.shape)} does not match "
                         f"w_ih of shape {tuple(w_ih.shape)} (expected (N, {w_ih.shape[1]}))")
    H = w_hh.shape[1]
    for name, t in (("h", h), ("c", c)):
        if tuple(t.shape) != (input.shape[0], H):
            raise ShapeError(f"lstm_cell: expected {name} of shape {(input.shape[0], H)}, got "
                             f"{tuple(t.shape)}")
    gates = input.matmul(w_ih.t()) + h.matmul(w_hh.t())
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    return LSTMCell.apply(gates, c)
