"""``minigrad.profiler``: the public name of :mod:`minigrad.learn.profiler`."""

import sys

from .learn import profiler as _module
from .learn.profiler import *  # noqa: F403

sys.modules[__name__] = _module  # the same module object, not a copy
