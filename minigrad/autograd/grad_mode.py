"""Grad mode and anomaly mode: thread-local switches the engine and every op read.

``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` decide whether ``Function.apply``
records graph nodes; ``detect_anomaly`` makes every node remember where its forward ran and
the backward loop check each gradient for NaN/inf.
"""

from __future__ import annotations

import functools
import threading


class _State(threading.local):
    grad_enabled = True  # the class default every new thread starts from


_state = _State()


def is_grad_enabled() -> bool:
    return _state.grad_enabled


def _set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = mode


class _GradMode:
    """Base of ``no_grad`` / ``enable_grad``: a context manager that is also a decorator."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Turn graph recording off: ``with minigrad.no_grad(): ...`` or ``@minigrad.no_grad()``."""

    mode = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` works as a plain call and as a context manager."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __call__(self, fn):  # pragma: no cover - decorator form rarely used
        raise TypeError("set_grad_enabled(mode) is a context manager or a plain call")


# ----------------------------------------------------------------------------- anomaly mode

_anomaly = False


class detect_anomaly:
    """Inside this block every node remembers where its forward ran, and a NaN or inf
    produced by a backward raises ``RuntimeError`` naming the op and that traceback."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        global _anomaly
        self._prev = _anomaly
        _anomaly = self.check_nan
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._prev
        return False


def is_anomaly_enabled() -> bool:
    return _anomaly
