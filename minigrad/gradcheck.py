"""``minigrad.gradcheck``: the public name of :mod:`minigrad.learn.gradcheck`."""

import sys

from .learn import gradcheck as _module
from .learn.gradcheck import *  # noqa: F403

sys.modules[__name__] = _module  # the same module object, not a copy
