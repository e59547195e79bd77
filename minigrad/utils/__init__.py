"""``minigrad.utils``: helpers with PyTorch's ``torch.utils`` names (``checkpoint``)."""

from . import checkpoint

__all__ = ["checkpoint"]
