"""Type aliases shared by the annotations of ``tensor.py``, ``ops/`` and ``nn/functional.py``.

Annotations only: every module imports these names under ``if TYPE_CHECKING:`` (with
``from __future__ import annotations``), so importing minigrad never imports this module's
dependencies and the import graph is unchanged. ``mypy`` checks the annotated modules (the
``[tool.mypy]`` section of ``pyproject.toml``; ``tests/test_typing.py`` runs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from .backend import Device
    from .tensor import Tensor

# A raw NumPy or CuPy ndarray: what ``Function.forward`` receives and returns. CuPy ships no
# type stubs, so this is ``Any`` to the checker; the name says what is meant.
Array: TypeAlias = Any

# The ``ctx`` of ``Function.forward``/``backward``: the Function instance itself. Ops store
# what backward needs on it as free attributes (``ctx.stride = stride``), hence ``Any``.
Ctx: TypeAlias = Any

# What ``Function.backward`` returns: one gradient (Tensor, raw array for a fused kernel, or
# None for "no gradient") per input of ``forward``, as a tuple when there are several.
Grads: TypeAlias = Any

Shape: TypeAlias = tuple[int, ...]
# A size given per dimension or once for all of them (kernel_size, stride, padding, ...).
IntOrTuple: TypeAlias = "int | tuple[int, ...]"
# The ``dim`` argument of a reduction: one dim, several, or None for all of them.
Dims: TypeAlias = "int | tuple[int, ...] | list[int] | None"
Scalar: TypeAlias = "int | float | bool"
# An operand of a binary Tensor op: a Tensor or a Python number (broadcast as a 0-d tensor).
TensorOrScalar: TypeAlias = "Tensor | int | float | bool"
# Anything ``np.asarray`` accepts (nested lists, NumPy or CuPy arrays, scalars).
ArrayLike: TypeAlias = Any
# A dtype: np.float32, np.dtype("float32"), "float32", a Python type (float, int, bool).
DTypeLike: TypeAlias = Any
# A device: "cpu", "cuda", "cuda:1", a Device, or None for the default.
DeviceLike: TypeAlias = "str | Device | None"


class ValuesIndices(NamedTuple):
    """What sort, topk, kthvalue, median(dim), max(dim), ... return: PyTorch's
    ``(values, indices)`` pair (at run time a ``collections.namedtuple`` named after the op)."""

    values: Tensor
    indices: Tensor


__all__ = [
    "Array",
    "ArrayLike",
    "Ctx",
    "DTypeLike",
    "DeviceLike",
    "Dims",
    "Grads",
    "IntOrTuple",
    "Scalar",
    "Shape",
    "TensorOrScalar",
    "ValuesIndices",
]
