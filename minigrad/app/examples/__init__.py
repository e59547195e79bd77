"""Trained examples (``minigrad train --task ...``): see :mod:`minigrad.app.examples.sequence`."""

from .sequence import train_charlm, train_reverse

__all__ = ["train_charlm", "train_reverse"]
