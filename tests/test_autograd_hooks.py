"""The engine's public observer hooks (minigrad/autograd/hooks.py): a tracer sees every node
of a backward pass, is removed afterwards (also when backward raises), nests, and is what
``explain()`` and the profiler use; ``minigrad.autograd`` has no module ``__getattr__``."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd


class Recorder:
    def __init__(self):
        self.names = []

    def record(self, node, upstream_grads, input_grads, seconds, raw_input_grads):
        self.names.append(node.name())


def test_tracing_sees_every_node_then_restores():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    rec = Recorder()
    assert autograd.get_tracer() is None
    with autograd.tracing(rec) as t:
        assert t is rec and autograd.get_tracer() is rec
        loss.backward()
    assert autograd.get_tracer() is None
    assert rec.names == ["SumBackward", "MulBackward", "AccumulateGrad"]
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_tracer_removed_when_backward_raises_and_nesting_restores():
    outer, inner = Recorder(), Recorder()
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with autograd.tracing(outer):
        with pytest.raises(RuntimeError, match="only for scalar outputs"):
            with autograd.tracing(inner):
                (x * 2).backward()
        assert autograd.get_tracer() is outer
        (x * 3).sum().backward()
    assert autograd.get_tracer() is None
    assert inner.names == [] and outer.names == ["SumBackward", "MulBackward", "AccumulateGrad"]


def test_set_tracer_returns_the_previous_one():
    a, b = Recorder(), Recorder()
    assert autograd.set_tracer(a) is None
    try:
        assert autograd.set_tracer(b) is a
        assert autograd.set_tracer(a) is b
    finally:
        autograd.set_tracer(None)


def test_explain_installs_itself_through_the_public_hook():
    rec = Recorder()
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with autograd.tracing(rec):
        with autograd.explain() as trace:
            assert autograd.get_tracer() is trace
            (x * x).sum().backward()
        assert autograd.get_tracer() is rec  # explain put the outer tracer back
    assert len(trace.records) == 3 and rec.names == []


def test_no_module_getattr_and_the_torch_style_names_resolve():
    assert "__getattr__" not in vars(autograd)
    from minigrad.explain import explain
    from minigrad.func import functional
    from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck

    assert autograd.explain is explain and autograd.functional is functional
    assert autograd.gradcheck is gradcheck and autograd.gradgradcheck is gradgradcheck
    assert autograd.GradcheckError is GradcheckError
    with pytest.raises(AttributeError):
        autograd.no_such_name  # noqa: B018
