"""Developer and learner tools (``minigrad conformance``, ...).

Not imported by ``import minigrad``; modules here may import PyTorch.
"""
