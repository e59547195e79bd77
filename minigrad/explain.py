"""``minigrad.explain``: the public name of :mod:`minigrad.learn.explain`."""

import sys

from .learn import explain as _module
from .learn.explain import *  # noqa: F403

sys.modules[__name__] = _module  # the same module object, not a copy
