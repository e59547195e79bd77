"""LeNet as in PyTorch's CIFAR-10 tutorial: same attribute names and shapes, so the
tutorial's ``state_dict`` (converted to NumPy) loads as is.

Every conv and linear layer followed by a ReLU runs its weight op without the bias, then the
bias-add and ReLU fused (``F.bias_relu``: one pass forward and backward, only the output kept)
instead of ``F.relu(layer(x))``: the same numbers and parameters. Forward hooks on those layers
do not fire then (the layers hold the parameters but are not called): build
``LeNet(fused=False)`` (or set ``model.fused = False``) for the textbook forward, where they do."""

from __future__ import annotations

from .. import nn
from ..nn import functional as F


class LeNet(nn.Module):
    """(N, 3, 32, 32) -> (N, num_classes) logits."""

    def __init__(self, num_classes: int = 10, fused: bool = True):
        super().__init__()
        self.fused = fused
        self.conv1 = nn.Conv2d(3, 6, 5)  # -> (N, 6, 28, 28), pooled (N, 6, 14, 14)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)  # -> (N, 16, 10, 10), pooled (N, 16, 5, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        if not self.fused:  # the tutorial's forward, layer by layer
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = x.flatten(1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))
        x = self.pool(_conv_bias_relu(self.conv1, x))
        x = self.pool(_conv_bias_relu(self.conv2, x))
        x = x.flatten(1)  # (N, 400)
        x = F.bias_relu(F.linear(x, self.fc1.weight), self.fc1.bias)
        x = F.bias_relu(F.linear(x, self.fc2.weight), self.fc2.bias)
        return self.fc3(x)


def _conv_bias_relu(conv: nn.Conv2d, x):
    """``F.relu(conv(x))`` with the conv's own geometry, the bias-add fused into the ReLU."""
    x, padding = conv._explicit_padding(x)  # 'same'/'valid' as nn.Conv2d.forward resolves them
    y = F.conv2d(x, conv.weight, None, conv.stride, padding, conv.dilation, conv.groups)
    return F.bias_relu(y, conv.bias)
