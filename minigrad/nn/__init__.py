"""``minigrad.nn``: Modules, layers, losses, ``functional`` and ``init`` (PyTorch's API)."""

from . import functional, init, parallel, utils
from .attention import MultiheadAttention, TransformerEncoderLayer
from .container import ModuleDict, ModuleList, Sequential
from .layers.activation import (
    GELU,
    Dropout,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from .layers.conv import Conv2d
from .layers.linear import Flatten, Identity, Linear
from .layers.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from .layers.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .layers.sparse import Embedding
from .module import Module
from .parameter import Parameter
from .rnn import LSTM, LSTMCell

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "functional", "init",
    "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
    "BatchNorm2d", "LayerNorm", "Dropout", "Embedding", "ReLU", "LeakyReLU", "GELU", "SiLU",
    "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Flatten", "Identity", "CrossEntropyLoss",
    "MSELoss", "NLLLoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "LSTM", "LSTMCell",
    "MultiheadAttention", "TransformerEncoderLayer", "utils", "parallel",
]
