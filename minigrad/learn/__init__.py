"""The learner tools: ways to look inside the engine, above the core.

- ``explain``: a step-by-step account of one backward pass (``minigrad.explain``).
- ``viz``: the autograd graph as Graphviz DOT / SVG (``minigrad.viz``).
- ``gradcheck``: analytic against finite-difference gradients (``minigrad.gradcheck``).
- ``profiler``: where the time goes, per op (``minigrad.profiler``).
- ``conformance``: every op of the OpSpec battery against PyTorch, as a report
  (``python -m minigrad.learn.conformance``; ``opdb_coverage`` counts PyTorch's op_db samples).

They observe the engine through the public hooks of :mod:`minigrad.autograd.hooks`
(``set_tracer`` and the profiler hook) and never change what it computes. The library may
import them; they never import the app (:mod:`minigrad.app`).
"""
