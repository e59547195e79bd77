"""Function forms of Tensor methods (``minigrad.exp(x)`` == ``x.exp()``), as in PyTorch."""

from __future__ import annotations

from .tensor import Tensor, _operand


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def abs(x):
    return _t(x).abs()


def exp(x):
    return _t(x).exp()


def log(x):
    return _t(x).log()


def sqrt(x):
    return _t(x).sqrt()


def sin(x):
    return _t(x).sin()


def cos(x):
    return _t(x).cos()


def tanh(x):
    return _t(x).tanh()


def sigmoid(x):
    return _t(x).sigmoid()


def relu(x):
    return _t(x).relu()


def maximum(a, b):
    return _t(a).maximum(b)


def minimum(a, b):
    return _t(a).minimum(b)


def clamp(x, min=None, max=None):
    return _t(x).clamp(min, max)


def sum(x, dim=None, keepdim=False, *, dtype=None):
    return _t(x).sum(dim, keepdim, dtype=dtype)


def mean(x, dim=None, keepdim=False, *, dtype=None):
    return _t(x).mean(dim, keepdim, dtype=dtype)


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _t(x).var(dim, unbiased, keepdim, correction=correction)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _t(x).std(dim, unbiased, keepdim, correction=correction)


# torch.add & co. as functions (the first operand may be a Python number, as in PyTorch)
def add(x, other, *, alpha=1):
    return _t(x).add(other, alpha=alpha)


def sub(x, other, *, alpha=1):
    return _t(x).sub(other, alpha=alpha)


def mul(x, other):
    return _t(x).mul(other)


def div(x, other, *, rounding_mode=None):
    return _t(x).div(other, rounding_mode=rounding_mode)


divide = div


def pow(x, exponent):
    return _t(x) ** exponent if isinstance(x, Tensor) else _operand(exponent).__rpow__(x)


def neg(x):
    return _t(x).neg()


def gather(x, dim, index):
    return _t(x).gather(dim, index)


def masked_fill(x, mask, value):
    return _t(x).masked_fill(mask, value)


def mm(a, b):
    return _t(a).mm(b)


def bmm(a, b):
    return _t(a).bmm(b)


def max(x, dim=None, keepdim=False):
    return _t(x).max(dim, keepdim)


def min(x, dim=None, keepdim=False):
    return _t(x).min(dim, keepdim)


def amax(x, dim=None, keepdim=False):
    return _t(x).amax(dim, keepdim)


def amin(x, dim=None, keepdim=False):
    return _t(x).amin(dim, keepdim)


def argmax(x, dim=None, keepdim=False):
    return _t(x).argmax(dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _t(x).argmin(dim, keepdim)


def logsumexp(x, dim=None, keepdim=False):
    return _t(x).logsumexp(dim, keepdim)


def softmax(x, dim, dtype=None):
    return _t(x).softmax(dim, dtype)


def log_softmax(x, dim, dtype=None):
    return _t(x).log_softmax(dim, dtype)


def matmul(a, b):
    return _t(a).matmul(_operand(b, tensor_only=True))


def reshape(x, shape):
    return _t(x).reshape(shape)


def permute(x, dims):
    return _t(x).permute(*dims)


def transpose(x, dim0, dim1):
    return _t(x).transpose(dim0, dim1)


def flatten(x, start_dim=0, end_dim=-1):
    return _t(x).flatten(start_dim, end_dim)


def squeeze(x, dim=None):
    return _t(x).squeeze(dim)


def unsqueeze(x, dim):
    return _t(x).unsqueeze(dim)


def split(x, split_size_or_sections, dim=0):
    return _t(x).split(split_size_or_sections, dim)


def chunk(x, chunks, dim=0):
    return _t(x).chunk(chunks, dim)
