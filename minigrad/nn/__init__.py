"""``minigrad.nn``: Modules, layers, losses, ``functional`` and ``init`` (PyTorch's API)."""

from . import functional, init, parallel, utils
from .attention import MultiheadAttention, TransformerEncoderLayer
from .container import ModuleDict, ModuleList, Sequential
from .layers.activation import (
    GELU,
    Dropout,
    Dropout1d,
    Dropout2d,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from .layers.conv import Conv1d, Conv2d, ConvTranspose2d
from .layers.fold import Fold, Unfold
from .layers.linear import Flatten, Identity, Linear
from .layers.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from .layers.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
)
from .layers.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    MaxPool2d,
    MaxUnpool2d,
)
from .layers.resample import PixelShuffle, PixelUnshuffle, Upsample
from .layers.sparse import Embedding
from .module import Module
from .parameter import Parameter
from .recurrent import GRU, RNN, GRUCell, RNNCell
from .rnn import LSTM, LSTMCell
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
)

__all__ = [
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "functional",
    "init",
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Dropout",
    "Embedding",
    "ReLU",
    "LeakyReLU",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "LogSoftmax",
    "Flatten",
    "Identity",
    "CrossEntropyLoss",
    "MSELoss",
    "NLLLoss",
    "L1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "LSTM",
    "LSTMCell",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "utils",
    "parallel",
    "Conv1d",
    "ConvTranspose2d",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "Dropout1d",
    "Dropout2d",
    "AdaptiveMaxPool2d",
    "MaxUnpool2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "Upsample",
    "RNN",
    "GRU",
    "RNNCell",
    "GRUCell",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
]
__all__ += ["Unfold", "Fold"]
