"""``RNN``, ``GRU``, ``RNNCell`` and ``GRUCell`` (PyTorch's names, shapes, defaults, parameter
names and initialisation), composed from primitives: the engine differentiates each step, so
there is no hand-written backward and double backward works.

Per layer and direction, the input projection of the whole sequence is one matmul,
``x @ W_ih^T + b_ih`` of shape (T, N, G*H); each step then adds ``h @ W_hh^T + b_hh`` and
applies the cell:

* RNN (G = 1):  ``h' = tanh(xw + h W_hh^T + b_hh)`` (or relu);
* GRU (G = 3, gates r, z, n in PyTorch's order):
  ``r = σ(xw_r + hw_r)``, ``z = σ(xw_z + hw_z)``, ``n = tanh(xw_n + r * hw_n)``,
  ``h' = (1 - z) * n + z * h``.
"""

from __future__ import annotations

from ..autograd import ShapeError
from ..factories import empty, zeros
from ..tensor import cat, stack
from . import functional as F
from .module import Module
from .parameter import Parameter
from .rnn import _uniform_params

__all__ = ["RNNCell", "GRUCell", "RNN", "GRU"]


def _rnn_step(xw, h, w_hh, b_hh, nonlinearity):
    """One RNN step from the projected input xw (N, H)."""
    pre = xw + h.matmul(w_hh.t())
    if b_hh is not None:
        pre = pre + b_hh
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _gru_step(xw, h, w_hh, b_hh, _nonlinearity=None):
    """One GRU step from the projected input xw (N, 3H)."""
    hw = h.matmul(w_hh.t())
    if b_hh is not None:
        hw = hw + b_hh
    x_r, x_z, x_n = xw.chunk(3, -1)
    h_r, h_z, h_n = hw.chunk(3, -1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h  # = n + z (h - n)


class _CellBase(Module):
    _gates = 1
    _step = staticmethod(_rnn_step)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.nonlinearity = nonlinearity
        g, dev = self._gates * hidden_size, device or "cpu"
        self.weight_ih = Parameter(empty(g, input_size, dtype=dtype, device=dev))
        self.weight_hh = Parameter(empty(g, hidden_size, dtype=dtype, device=dev))
        if bias:
            self.bias_ih = Parameter(empty(g, dtype=dtype, device=dev))
            self.bias_hh = Parameter(empty(g, dtype=dtype, device=dev))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _uniform_params(self, hidden_size)

    def forward(self, input, hx=None):
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: expected input (N, {self.input_size}) or "
                f"({self.input_size},), got shape {tuple(input.shape)}"
            )
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        n, hsz = x.shape[0], self.hidden_size
        if hx is None:
            h = zeros(n, hsz, dtype=x.dtype, device=x.device)
        else:
            h = hx if batched else hx.unsqueeze(0)
            if tuple(h.shape) != (n, hsz):
                raise ShapeError(f"{name}: Expected hidden size {(n, hsz)}, got {tuple(hx.shape)}")
        xw = x.matmul(self.weight_ih.t())
        if self.bias_ih is not None:
            xw = xw + self.bias_ih
        h = self._step(xw, h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h if batched else h[0]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class RNNCell(_CellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``; ``forward(input, hx=None) -> h'``."""


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n); ``forward(input, hx=None) -> h'``."""

    _gates = 3
    _step = staticmethod(_gru_step)

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__(input_size, hidden_size, bias, "tanh", device, dtype)


class _RNNBase(Module):
    """Multi-layer, optionally bidirectional recurrence over (T, N, I) (``batch_first``:
    (N, T, I); unbatched: (T, I)). ``forward(input, hx=None) -> (output, h_n)``: output
    (T, N, D*H), h_n (num_layers*D, N, H); ``dropout`` on every layer's output but the last,
    in training."""

    _gates = 1
    _step = staticmethod(_rnn_step)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        d, g, dev = 2 if bidirectional else 1, self._gates * hidden_size, device or "cpu"
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * d
            for suffix in ("", "_reverse")[:d]:
                s = f"_l{layer}{suffix}"
                setattr(
                    self, "weight_ih" + s, Parameter(empty(g, layer_in, dtype=dtype, device=dev))
                )
                setattr(
                    self, "weight_hh" + s, Parameter(empty(g, hidden_size, dtype=dtype, device=dev))
                )
                if bias:
                    setattr(self, "bias_ih" + s, Parameter(empty(g, dtype=dtype, device=dev)))
                    setattr(self, "bias_hh" + s, Parameter(empty(g, dtype=dtype, device=dev)))
        _uniform_params(self, hidden_size)

    def flatten_parameters(self) -> None:
        """No-op (PyTorch packs cuDNN weights here); kept so PyTorch code runs unchanged."""

    def _weights(self, layer: int, suffix: str):
        s = f"_l{layer}{suffix}"
        get = lambda n: getattr(self, n + s, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _direction(self, x, h, layer, suffix, reverse):
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
        xw = x.matmul(w_ih.t())  # (T, N, G*H): all steps in one matmul
        if b_ih is not None:
            xw = xw + b_ih
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs = [None] * x.shape[0]
        for t in steps:
            h = self._step(xw[t], h, w_hh, b_hh, self.nonlinearity)
            outs[t] = h
        return stack(outs, 0), h

    def forward(self, input, hx=None):
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: expected input (T, N, {self.input_size}) (or batch_first,"
                f" or unbatched (T, {self.input_size})), got shape "
                f"{tuple(input.shape)}"
            )
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ShapeError(
                f"{name}: expected a sequence of length >= 1, got input shape {tuple(input.shape)}"
            )
        d = 2 if self.bidirectional else 1
        want = (self.num_layers * d, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = zeros(*want, dtype=x.dtype, device=x.device)
        else:
            h0 = hx if batched else hx.unsqueeze(1)
            if tuple(h0.shape) != want:
                exp = want if batched else (want[0], want[2])
                raise ShapeError(f"{name}: Expected hidden size {exp}, got {tuple(hx.shape)}")
        h_n, layer_in = [], x
        for layer in range(self.num_layers):
            outs = []
            for k, suffix in enumerate(("", "_reverse")[:d]):
                out, h = self._direction(layer_in, h0[layer * d + k], layer, suffix, k == 1)
                outs.append(out)
                h_n.append(h)
            layer_in = outs[0] if d == 1 else cat(outs, dim=2)  # (T, N, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        output, h_n = layer_in, stack(h_n, 0)
        if not batched:
            return output[:, 0], h_n[:, 0]
        return (output.transpose(0, 1) if self.batch_first else output), h_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s


class RNN(_RNNBase):
    """Elman RNN, as ``torch.nn.RNN`` (``nonlinearity`` "tanh" or "relu")."""


class GRU(_RNNBase):
    """Gated recurrent unit, as ``torch.nn.GRU`` (weights (3H, ·) in the order r, z, n)."""

    _gates = 3
    _step = staticmethod(_gru_step)

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
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            "tanh",
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )
