"""Model registry: ``get_model(name)`` builds a CIFAR-10 model by the name the CLI uses.

=================  ===========================================================
``lenet``          the PyTorch CIFAR-10 tutorial CNN (``minigrad.models.LeNet``)
``resnet9``        DAWNBench ResNet-9, full width (64/128/256/512 channels)
``resnet9-small``  ResNet-9 at ``width=0.5`` (32/64/128/256): ~1/4 of the compute
``resnet9-tiny``   ResNet-9 at ``width=0.25`` (16/32/64/128): quick CPU runs and tests
=================  ===========================================================
"""

from __future__ import annotations

__all__ = ["MODELS", "get_model", "model_names", "uses_batchnorm"]


def _lenet(num_classes: int = 10):
    from .lenet import LeNet  # written alongside nn; imported on use

    try:
        return LeNet(num_classes=num_classes)
    except TypeError:  # a LeNet without the num_classes argument
        if num_classes != 10:
            raise
        return LeNet()


def _resnet9(width: float):
    def build(num_classes: int = 10):
        from .resnet import ResNet9

        return ResNet9(num_classes=num_classes, width=width)

    return build


MODELS = {
    "lenet": _lenet,
    "resnet9": _resnet9(1.0),
    "resnet9-small": _resnet9(0.5),
    "resnet9-tiny": _resnet9(0.25),
}


def model_names() -> list[str]:
    return list(MODELS)


def uses_batchnorm(name: str) -> bool:
    return name.startswith("resnet")


def get_model(name: str, num_classes: int = 10):
    """A freshly initialised model (initialisation draws from ``minigrad.manual_seed``)."""
    key = name.lower()
    if key not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[key](num_classes=num_classes)
