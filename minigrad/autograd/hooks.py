"""Observer hooks: how tools outside the core watch the engine without the engine importing
them. Each hook is ``None`` unless a tool installed it, so the hot paths pay one ``is None``
test.

- tracer (:func:`tracing`, :func:`set_tracer`): the backward loop calls
  ``tracer.record(node, upstream_grads, input_grads, seconds, raw_input_grads)`` after each
  node (raw = before reduction to the inputs' shapes; AccumulateGrad nodes: ``(), 0.0, ()``).
  Used by ``minigrad.autograd.explain`` and ``minigrad.profiler``.
- profiler (:func:`set_profiler`): ``Function.apply`` hands each call to
  ``profiler.forward(cls, args, kwargs)``, which times it and calls ``apply`` again with
  ``profiler.busy`` set.
- forward mode (:func:`set_forward_ad`): set by ``minigrad.func`` while a jvp runs;
  ``forward_ad(FunctionClass, args, kwargs, results)`` after every op, and
  ``forward_ad_inplace(target, result)`` when an in-place op writes ``result`` into ``target``.

Read the current value as ``hooks.tracer`` etc.; install through the functions below.
"""

from __future__ import annotations

from contextlib import contextmanager

tracer = None
profiler = None
forward_ad = None
forward_ad_inplace = None


def get_tracer():
    """The installed backward tracer, or None."""
    return tracer


def set_tracer(new):
    """Install ``new`` as the backward tracer (None removes it); returns the previous one."""
    global tracer
    prev, tracer = tracer, new
    return prev


@contextmanager
def tracing(new):
    """``with tracing(t): loss.backward()``: ``t.record(...)`` sees every node, then the
    previous tracer comes back."""
    prev = set_tracer(new)
    try:
        yield new
    finally:
        set_tracer(prev)


def get_profiler():
    return profiler


def set_profiler(new):
    """Install ``new`` as the forward profiler hook (None removes it); returns the previous."""
    global profiler
    prev, profiler = profiler, new
    return prev


def set_forward_ad(push, push_inplace):
    """Install the forward-mode hooks (both None removes them); returns the previous pair."""
    global forward_ad, forward_ad_inplace
    prev = (forward_ad, forward_ad_inplace)
    forward_ad, forward_ad_inplace = push, push_inplace
    return prev
