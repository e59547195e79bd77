"""``Conv2d``, ``Conv1d`` and ``ConvTranspose2d`` (the ops live in ``minigrad/ops/conv.py`` and
``minigrad/nn/_functional_layers.py``)."""

from __future__ import annotations

import math

from ... import factories
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, tuple | list) else (v, v)


def _check_groups(name: str, in_channels: int, out_channels: int, groups: int) -> None:
    """The channel/group rule every convolution layer shares (PyTorch's)."""
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
    for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % groups:
            raise ValueError(f"{name}: {what} {n} must be divisible by groups {groups}")


class Conv2d(Module):
    """2-D convolution over (N, C_in, H, W); weight (C_out, C_in / groups, kH, kW).
    Initialised as PyTorch: kaiming_uniform_(a=sqrt(5)), bias U(+-1/sqrt(fan_in))."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        _check_groups("Conv2d", in_channels, out_channels, groups)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                f"padding_mode must be one of 'zeros', 'reflect', 'replicate' or "
                f"'circular', but got padding_mode={padding_mode!r}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.dilation, self.groups = _pair(dilation), groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding)
        dev = device or "cpu"
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(factories.empty(*shape, dtype=dtype, device=dev))
        if bias:
            self.bias = Parameter(factories.empty(out_channels, dtype=dtype, device=dev))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _explicit_padding(self, input):
        """'valid' -> 0; 'same' -> symmetric padding, or an explicit pad when odd."""
        if self.padding == "valid":
            return input, (0, 0)
        if self.padding != "same":
            return input, self.padding
        total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
        if all(t % 2 == 0 for t in total):
            return input, (total[0] // 2, total[1] // 2)
        pads = (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(input, pads, mode=mode), (0, 0)

    def forward(self, input):
        x, padding = self._explicit_padding(input)
        if self.padding_mode != "zeros" and padding != (0, 0):
            # pad with the mode first (F.pad: last dim first), then convolve unpadded
            x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]), mode=self.padding_mode)
            padding = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            s += (
                f", padding={self.padding!r}"
                if isinstance(self.padding, str)
                else f", padding={self.padding}"
            )
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(Module):
    """1-D convolution over (N, C_in, L) or (C_in, L); weight (C_out, C_in / groups, K).
    Initialised as PyTorch (as ``Conv2d``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        _check_groups("Conv1d", in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"Conv1d: padding_mode {padding_mode!r} is not supported (only 'zeros')"
            )
        one = lambda v: v[0] if isinstance(v, tuple | list) else v  # noqa: E731
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = (one(kernel_size),), (one(stride),)
        self.dilation, self.padding_mode = (one(dilation),), padding_mode
        self.padding = padding if isinstance(padding, str) else (one(padding),)
        dev = device or "cpu"
        self.weight = Parameter(
            factories.empty(
                out_channels, in_channels // groups, self.kernel_size[0], dtype=dtype, device=dev
            )
        )
        if bias:
            self.bias = Parameter(factories.empty(out_channels, dtype=dtype, device=dev))
        else:
            self.register_parameter("bias", None)
        Conv2d.reset_parameters(self)

    def forward(self, input):
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(
            input, self.weight, self.bias, self.stride[0], padding, self.dilation[0], self.groups
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )


class ConvTranspose2d(Module):
    """The adjoint of ``Conv2d`` ("deconvolution"); weight (C_in, C_out / groups, kH, kW).
    ``forward(input, output_size=None)``: ``output_size`` picks the output_padding that gives
    that size, as PyTorch. Initialised as PyTorch (fan-in from weight dim 1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        _check_groups("ConvTranspose2d", in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for ConvTranspose2d, got {padding_mode!r}'
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.output_padding = _pair(padding), _pair(output_padding)
        self.dilation, self.padding_mode = _pair(dilation), padding_mode
        dev = device or "cpu"
        shape = (in_channels, out_channels // groups) + self.kernel_size
        self.weight = Parameter(factories.empty(*shape, dtype=dtype, device=dev))
        if bias:
            self.bias = Parameter(factories.empty(out_channels, dtype=dtype, device=dev))
        else:
            self.register_parameter("bias", None)
        Conv2d.reset_parameters(self)

    def _output_padding(self, input, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        want = tuple(output_size)[-2:]
        pads = []
        for i, n in enumerate(want):
            size = input.shape[-2 + i]
            base = (
                (size - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            extra = n - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"ConvTranspose2d: requested an output size of {want}, but "
                    f"the valid sizes range from {base} to "
                    f"{base + max(self.stride[i], self.dilation[i]) - 1} "
                    f"(for an input of {tuple(input.shape[-2:])})"
                )
            pads.append(extra)
        return tuple(pads)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
