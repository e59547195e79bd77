"""LeNet (PyTorch's CIFAR-10 tutorial net) against PyTorch: PyTorch's weights loaded through
``load_state_dict`` give the same logits, loss and every parameter gradient."""

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigrad as mg
from minigrad.models import LeNet
from minigrad.nn import functional as F


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 6, 5)
        self.pool = tnn.MaxPool2d(2, 2)
        self.conv2 = tnn.Conv2d(6, 16, 5)
        self.fc1 = tnn.Linear(16 * 5 * 5, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(TF.relu(self.conv1(x)))
        x = self.pool(TF.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = TF.relu(self.fc1(x))
        x = TF.relu(self.fc2(x))
        return self.fc3(x)


def _pair():
    torch.manual_seed(0)
    ref = TorchNet()
    model = LeNet()
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return ref, model


def test_structure_matches_pytorch():
    ref, model = _pair()
    assert repr(model).replace("LeNet", "TorchNet") == repr(ref)
    assert [(k, tuple(p.shape)) for k, p in model.named_parameters()] == [
        (k, tuple(p.shape)) for k, p in ref.named_parameters()
    ]


def test_logits_loss_and_grads_match_pytorch():
    ref, model = _pair()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = np.array([3, 0, 9, 3])
    logits = model(mg.tensor(x))
    loss = F.cross_entropy(logits, mg.tensor(y))
    loss.backward()
    tlogits = ref(torch.from_numpy(x))
    tloss = TF.cross_entropy(tlogits, torch.from_numpy(y))
    tloss.backward()
    assert logits.dtype == np.float32 and logits.shape == (4, 10)
    np.testing.assert_allclose(
        logits.detach().numpy(), tlogits.detach().numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    grads = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(
            p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name
        )


def test_empty_batch():
    model = LeNet()
    assert model(mg.zeros(0, 3, 32, 32)).shape == (0, 10)


@pytest.mark.parametrize("num_classes", [2, 100])
def test_num_classes(num_classes):
    assert LeNet(num_classes)(mg.randn(2, 3, 32, 32)).shape == (2, num_classes)
