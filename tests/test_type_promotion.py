"""Type promotion follows PyTorch (torch.result_type): category first (bool < integer <
float), Python numbers are "weak" (they only raise the category, to the default dtype), and
0-d tensors count only when they raise the category. True division of integers gives the
default float dtype (float32). Checked over the whole table of minigrad's dtypes against the
dtype (and values) of the same torch operation."""

import operator

import numpy as np
import pytest
import torch

import minigrad as mg

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"]
OPS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "pow": operator.pow,
}
SCALARS = [True, 3, 2.5]


def _values(dtype, shape):
    base = np.array([1, 2, 3, 1], dtype=np.float64)[: int(np.prod(shape)) or 1]
    if dtype == "bool":
        base = np.array([True, False, True, True])[: base.size]
    return base.reshape(shape).astype(dtype)


def _torch_result(op, a, b):
    ta = torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a
    tb = torch.from_numpy(np.array(b)) if isinstance(b, np.ndarray) else b
    try:
        return OPS[op](ta, tb)
    except RuntimeError:  # e.g. bool - bool, int ** negative: torch refuses
        return None


def _mg_result(op, a, b):
    ma = mg.tensor(a) if isinstance(a, np.ndarray) else a
    mb = mg.tensor(b) if isinstance(b, np.ndarray) else b
    return OPS[op](ma, mb)


def _check(op, a, b, problems):
    want = _torch_result(op, a, b)
    if want is None:
        return
    try:
        got = _mg_result(op, a, b)
    except Exception as e:  # reported below with the case
        problems.append(f"{op}({_name(a)}, {_name(b)}): raised {type(e).__name__}: {e}")
        return
    want_dt = str(want.dtype).replace("torch.", "")
    if str(got.dtype) != want_dt:
        problems.append(f"{op}({_name(a)}, {_name(b)}): {got.dtype}, torch {want_dt}")
        return
    w = want.numpy().astype(np.float64)
    g = got.numpy().astype(np.float64)
    if not np.allclose(g, w, rtol=1e-3, equal_nan=True):
        problems.append(f"{op}({_name(a)}, {_name(b)}): values {g} vs torch {w}")


def _name(x):
    if isinstance(x, np.ndarray):
        return f"{x.dtype}{'[0-d]' if x.ndim == 0 else list(x.shape)}"
    return repr(x)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("kind", ["tensor-tensor", "tensor-0d", "0d-tensor", "0d-0d"])
def test_promotion_table_matches_torch(op, kind):
    sa = () if kind.startswith("0d") else (4,)
    sb = () if kind.endswith("0d") else (4,)
    problems = []
    for da in DTYPES:
        for db in DTYPES:
            _check(op, _values(da, sa), _values(db, sb), problems)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("side", ["tensor-scalar", "scalar-tensor"])
def test_python_scalars_are_weak_like_torch(op, side):
    problems = []
    for d in DTYPES:
        for s in SCALARS:
            for shape in ((4,), ()):
                t = _values(d, shape)
                a, b = (t, s) if side == "tensor-scalar" else (s, t)
                _check(op, a, b, problems)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


def test_issue_cases():
    x = mg.ones(3)  # float32
    assert (x + mg.tensor(np.arange(3))).dtype == np.float32  # int64 tensor
    assert (mg.tensor([1, 2]) / mg.tensor([2, 4])).dtype == np.float32
    assert (x * 2.5).dtype == np.float32
    assert (mg.tensor([1, 2]) * 2.5).dtype == np.float32
    assert (x + mg.tensor(np.float64(1.0))).dtype == np.float32  # 0-d float64: weak
    assert (mg.tensor(np.array([1], np.int32)) + mg.tensor(np.float64(1.0))).dtype == np.float64


def test_gradient_flows_through_promotion():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)  # float32
    n = mg.tensor(np.array([1, 2, 3], dtype=np.int64))
    y = (x * n + n / 2).sum()
    y.backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])


def test_result_type_matches_torch():
    problems = []
    for da in DTYPES:
        for db in DTYPES:
            for sa, sb in (((2,), (2,)), ((2,), ()), ((), ())):
                a, b = _values(da, sa), _values(db, sb)
                want = str(
                    torch.result_type(torch.from_numpy(np.array(a)), torch.from_numpy(np.array(b)))
                ).split(".")[-1]
                got = str(mg.result_type(mg.tensor(a), mg.tensor(b)))
                if got != want:
                    problems.append(f"{_name(a)}, {_name(b)}: {got}, torch {want}")
        for s in SCALARS:
            want = str(torch.result_type(torch.from_numpy(_values(da, (2,))), s)).split(".")[-1]
            got = str(mg.result_type(mg.tensor(_values(da, (2,))), s))
            if got != want:
                problems.append(f"{da}[2], {s!r}: {got}, torch {want}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- refused dtypes
@pytest.mark.parametrize(
    "make",
    [
        lambda: mg.tensor(np.array([1, "a"], dtype=object)),
        lambda: mg.tensor(np.array([1.0, 2.0], dtype=object)),
        lambda: mg.tensor([1, 2], dtype=object),
        lambda: mg.tensor(np.array(["ab", "cd"])),
        lambda: mg.tensor(np.array([b"ab"])),
        lambda: mg.tensor(["a", "b"]),
        lambda: mg.Tensor(np.array([None, 1], dtype=object)),
        lambda: mg.tensor(np.array(["2020-01-01"], dtype="datetime64[D]")),
    ],
    ids=[
        "object-mixed",
        "object-floats",
        "dtype-object",
        "str",
        "bytes",
        "list-of-str",
        "Tensor-object",
        "datetime",
    ],
)
def test_tensor_refuses_object_and_string_arrays(make):
    with pytest.raises(TypeError, match=r"(?i)dtype .*(object|<U|\|S|datetime)"):
        make()


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i4", ">i8", ">u2", "<f4"])
def test_tensor_from_non_native_byte_order_is_native(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = mg.tensor(a)
    assert t.numpy().dtype.isnative
    assert t.numpy().dtype == a.dtype.newbyteorder("=")
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal((t + t).numpy(), a + a)


def test_load_gives_native_byte_order(tmp_path):
    """A checkpoint holding big-endian arrays (written elsewhere) loads as native arrays that
    work in ops."""
    path = tmp_path / "ckpt.mg"
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    mg.save({"w": mg.tensor(np.ones((2, 3), np.float32)), "a": np.ones(3, np.int64)}, path)
    # rewrite the members in big-endian order, as another machine or tool might
    with np.load(path) as npz:
        members = {k: npz[k] for k in npz.files}
    for k, v in members.items():
        if v.dtype.kind in "fi" and v.dtype.itemsize > 1:
            members[k] = (big if v.shape == (2, 3) else v).astype(v.dtype.newbyteorder(">"))
    with open(path, "wb") as f:
        np.savez(f, **members)
    out = mg.load(path)
    for x in (out["w"].numpy(), out["a"]):
        assert x.dtype.isnative, x.dtype
    np.testing.assert_array_equal(out["w"].numpy(), big)
    y = (out["w"] * 2).sum()
    assert float(y.item()) == float(big.sum() * 2)
    assert out["w"].relu().numpy().dtype == np.float32


@pytest.mark.parametrize("op", ["maximum", "minimum", "where"])
def test_maximum_minimum_where_promote_like_torch(op):
    problems = []
    cond = np.array([True, False, True, False])

    def run(lib, a, b):
        wrap = torch.from_numpy if lib is torch else mg.tensor
        ta = wrap(np.array(a)) if isinstance(a, np.ndarray) else a
        tb = wrap(np.array(b)) if isinstance(b, np.ndarray) else b
        if op == "where":
            return lib.where(wrap(cond), ta, tb)
        return getattr(lib, op)(ta, tb)

    for da in DTYPES:
        for db in DTYPES + SCALARS:
            for sb in ((4,), ()):
                a = _values(da, (4,))
                b = db if not isinstance(db, str) else _values(db, sb)
                if op != "where" and not isinstance(b, np.ndarray):
                    b = _values(np.asarray(b).dtype.name, ())  # torch.maximum wants tensors
                try:
                    want = run(torch, a, b)
                except (RuntimeError, TypeError):
                    continue
                got = run(mg, a, b)
                want_dt = str(want.dtype).replace("torch.", "")
                if str(got.dtype) != want_dt:
                    problems.append(f"{op}({_name(a)}, {_name(b)}): {got.dtype}, torch {want_dt}")
                elif not np.allclose(got.numpy().astype(float), want.numpy().astype(float)):
                    problems.append(f"{op}({_name(a)}, {_name(b)}): values differ")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:40])
