"""ResNet-9 for CIFAR-10: the DAWNBench network (David Page / Myrtle.ai, "How to train your
ResNet"), with batch norm, built only from ``minigrad.nn`` layers.

Layout at ``width=1`` (channels; spatial size for 32x32 inputs)::

    prep    conv3x3(3->64)    BN ReLU                          64 x 32x32
    layer1  conv3x3(64->128)  BN ReLU maxpool2 + Residual(128) 128 x 16x16
    layer2  conv3x3(128->256) BN ReLU maxpool2                 256 x 8x8
    layer3  conv3x3(256->512) BN ReLU maxpool2 + Residual(512) 512 x 4x4
    head    global max pool, flatten, linear(512->10, no bias), times ``scale`` (0.125)

``Residual(c)`` is ``x + (conv-BN-ReLU)(conv-BN-ReLU)(x)``. Convolutions have no bias (the
batch norm that follows has one). ``width`` scales every channel count (``width=0.5`` is a
quarter of the compute, trainable on a couple of CPU cores). The final ``scale`` keeps the
logits small at initialisation, as in the original recipe.
"""

from __future__ import annotations

from .. import nn

__all__ = ["ResNet9", "conv_bn", "Residual"]


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), BatchNorm2d, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class Residual(nn.Module):
    """``x + res2(res1(x))`` with two conv-BN-ReLU blocks of ``channels`` channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.res1 = conv_bn(channels, channels)
        self.res2 = conv_bn(channels, channels)

    def forward(self, x):
        return x + self.res2(self.res1(x))


class ResNet9(nn.Module):
    """ResNet-9 (DAWNBench). ``width`` multiplies every channel count (64/128/256/512)."""

    def __init__(
        self, num_classes: int = 10, width: float = 1.0, in_channels: int = 3, scale: float = 0.125
    ):
        super().__init__()
        if width <= 0:
            raise ValueError(f"ResNet9: width must be positive, got {width}")
        c0, c1, c2, c3 = (max(8, int(round(c * width))) for c in (64, 128, 256, 512))
        self.width = width
        self.scale = scale
        self.prep = conv_bn(in_channels, c0)
        self.layer1 = nn.Sequential(conv_bn(c0, c1), nn.MaxPool2d(2), Residual(c1))
        self.layer2 = nn.Sequential(conv_bn(c1, c2), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn(c2, c3), nn.MaxPool2d(2), Residual(c3))
        self.fc = nn.Linear(c3, num_classes, bias=False)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        x = x.amax(dim=(2, 3))  # global max pool: (N, C, H, W) -> (N, C)
        return self.fc(x) * self.scale

    def extra_repr(self) -> str:
        return f"width={self.width}, scale={self.scale}"
