"""``minigrad.viz``: the public name of :mod:`minigrad.learn.viz`."""

import sys

from .learn import viz as _module
from .learn.viz import *  # noqa: F403

sys.modules[__name__] = _module  # the same module object, not a copy
