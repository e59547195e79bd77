"""LeNet as in PyTorch's CIFAR-10 tutorial: same attribute names and shapes, so the
tutorial's ``state_dict`` (converted to NumPy) loads as is."""

from __future__ import annotations

from .. import nn
from ..nn import functional as F


class LeNet(nn.Module):
    """(N, 3, 32, 32) -> (N, num_classes) logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)  # -> (N, 6, 28, 28), pooled (N, 6, 14, 14)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)  # -> (N, 16, 10, 10), pooled (N, 16, 5, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.flatten(1)  # (N, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
