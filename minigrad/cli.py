"""Old entry point ``minigrad.cli:main``, kept for installs made before the app moved to
:mod:`minigrad.app.cli` (their ``minigrad`` script still names this path)."""

from .app.cli import main

__all__ = ["main"]
