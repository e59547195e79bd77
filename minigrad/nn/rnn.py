"""Recurrent layers: ``LSTMCell`` and ``LSTM`` (PyTorch's names, shapes, defaults, parameter
names and initialisation).

``LSTMCell``: two matmuls (primitives) and one fused ``lstm_cell`` op
(``minigrad/ops/rnn.py``). ``LSTM`` computes the input projection of the whole sequence in
one matmul, ``x @ W_ih^T + b_ih + b_hh`` of shape (T, N, 4H), then runs the recurrence of each
layer and direction as one fused node (``ops.rnn.LSTMSequence``: the steps on raw arrays
forward, backpropagation through time backward, dW_hh as one GEMM over all steps). Set
``lstm.fused = False`` for the per-step graph (a matmul and an ``lstm_cell`` node per step,
what ``autograd.explain`` can show step by step); both give the same numbers, and double
backward goes through the composed twins (``ops.rnn.lstm_sequence_composed``: the same steps
from primitives).
"""

from __future__ import annotations

import math

from ..autograd import ShapeError
from ..factories import empty, zeros
from ..ops.rnn import lstm_sequence, lstm_sequence_stepwise
from ..tensor import cat, stack
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["LSTMCell", "LSTM"]


def _uniform_params(module, hidden_size):
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


class LSTMCell(Module):
    """One LSTM step: ``forward(input, hx=None) -> (h', c')``; input (N, I) or (I,)."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dev = device or "cpu"
        self.weight_ih = Parameter(empty(4 * hidden_size, input_size, dtype=dtype, device=dev))
        self.weight_hh = Parameter(empty(4 * hidden_size, hidden_size, dtype=dtype, device=dev))
        if bias:
            self.bias_ih = Parameter(empty(4 * hidden_size, dtype=dtype, device=dev))
            self.bias_hh = Parameter(empty(4 * hidden_size, dtype=dtype, device=dev))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_params(self, self.hidden_size)

    def forward(self, input, hx=None):
        if input.ndim not in (1, 2):
            raise ShapeError(
                f"LSTMCell: Expected input to be 1D or 2D, got {input.ndim}D "
                f"(shape {tuple(input.shape)})"
            )
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                f"LSTMCell: input has inconsistent input_size: got "
                f"{input.shape[-1]} expected {self.input_size} (input shape "
                f"{tuple(input.shape)})"
            )
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        N, H = x.shape[0], self.hidden_size
        if hx is None:
            h = c = zeros(N, H, dtype=x.dtype, device=x.device)
        else:
            h, c = hx
            if not batched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
            for k, t in enumerate((h, c)):
                if tuple(t.shape) != (N, H):
                    raise ShapeError(
                        f"LSTMCell: Expected hidden[{k}] size {(N, H)}, got "
                        f"{list(t.shape) if batched else list(t.shape[1:])}"
                    )
        from ..ops.rnn import lstm_cell

        h, c = lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h, c) if batched else (h[0], c[0])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class LSTM(Module):
    """Multi-layer (optionally bidirectional) LSTM, as ``torch.nn.LSTM``.

    ``forward(input, hx=None) -> (output, (h_n, c_n))``: input (T, N, I) (or (N, T, I) with
    ``batch_first``, or unbatched (T, I)); hx = (h_0, c_0), each (num_layers * D, N, H),
    zeros when omitted; output (T, N, D*H); h_n, c_n (num_layers * D, N, H). D = 2 when
    bidirectional. ``dropout`` is applied to every layer's output but the last, in training.

    ``fused`` (class attribute, default True): each layer and direction is one graph node
    (``ops.rnn.LSTMSequence``); False records one ``lstm_cell`` node per step instead.
    """

    fused = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"LSTM: hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"LSTM: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"LSTM: dropout must be a number in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.mode = "LSTM"
        dev = device or "cpu"
        D = 2 if bidirectional else 1
        H = hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H * D
            for suffix in ("", "_reverse")[:D]:
                s = f"_l{layer}{suffix}"
                setattr(
                    self,
                    "weight_ih" + s,
                    Parameter(empty(4 * H, layer_in, dtype=dtype, device=dev)),
                )
                setattr(self, "weight_hh" + s, Parameter(empty(4 * H, H, dtype=dtype, device=dev)))
                if bias:
                    setattr(self, "bias_ih" + s, Parameter(empty(4 * H, dtype=dtype, device=dev)))
                    setattr(self, "bias_hh" + s, Parameter(empty(4 * H, dtype=dtype, device=dev)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_params(self, self.hidden_size)

    def flatten_parameters(self) -> None:
        """No-op (PyTorch packs cuDNN weights here); kept so PyTorch code runs unchanged."""

    def _weights(self, layer, suffix):
        s = f"_l{layer}{suffix}"
        if self.bias:
            return (
                getattr(self, "weight_ih" + s),
                getattr(self, "weight_hh" + s),
                getattr(self, "bias_ih" + s),
                getattr(self, "bias_hh" + s),
            )
        return getattr(self, "weight_ih" + s), getattr(self, "weight_hh" + s), None, None

    def forward(self, input, hx=None):
        if input.ndim not in (2, 3):
            raise ShapeError(
                f"LSTM: Expected input to be 2D or 3D, got {input.ndim}D instead "
                f"(shape {tuple(input.shape)})"
            )
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                f"LSTM: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {input.shape[-1]} (input shape "
                f"{tuple(input.shape)})"
            )
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)  # (T, N, I) after the next line
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        T, N = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        H = self.hidden_size
        want = (self.num_layers * D, N, H)
        if hx is None:
            h0 = c0 = zeros(*want, dtype=x.dtype, device=x.device)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
            h0, c0 = hx
            if not batched:
                for k, t in enumerate((h0, c0)):
                    if t.ndim != 2:
                        raise ShapeError(
                            f"LSTM: For unbatched 2-D input, hx and cx should "
                            f"also be 2-D but got hidden[{k}] of shape "
                            f"{tuple(t.shape)}"
                        )
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            for k, t in enumerate((h0, c0)):
                if tuple(t.shape) != want:
                    got = list(t.shape) if batched else [t.shape[0], t.shape[2]]
                    exp = want if batched else (want[0], H)
                    raise ShapeError(f"LSTM: Expected hidden[{k}] size {exp}, got {got}")
        if T == 0:
            raise ShapeError(
                f"LSTM: expected a sequence of length >= 1, got input shape {tuple(input.shape)}"
            )
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:D]):
                k = layer * D + d
                out, h, c = _run_direction(
                    layer_in,
                    h0[k],
                    c0[k],
                    *self._weights(layer, suffix),
                    reverse=d == 1,
                    fused=self.fused,
                )
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if D == 1 else cat(outs, dim=2)  # (T, N, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        output = layer_in
        h_n, c_n = stack(h_n, 0), stack(c_n, 0)  # (num_layers*D, N, H)
        if not batched:
            return output[:, 0], (h_n[:, 0], c_n[:, 0])
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _run_direction(x, h, c, w_ih, w_hh, b_ih, b_hh, reverse=False, fused=True):
    """One direction of one layer over x (T, N, I): returns (output (T, N, H), h_T, c_T)."""
    xw = x.matmul(w_ih.t())  # (T, N, 4H): the input projection of every step in one matmul
    if b_ih is not None:
        xw = xw + (b_ih + b_hh)
    run = lstm_sequence if fused else lstm_sequence_stepwise
    return run(xw, h, c, w_hh, reverse=reverse)
