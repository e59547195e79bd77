"""The typed surface (Tensor, its method modules, ops/, nn.functional): mypy passes on it, and
every public function and method there is fully annotated.

The modules are the ``files`` of ``[tool.mypy]`` in pyproject.toml, so the two checks and the
CI's ``mypy`` run always cover the same list.
"""

import ast
import glob
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy_files() -> list[Path]:
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[tool\.mypy\]\n(.*?)(?=^\[)", text, re.S | re.M)
    assert section, "pyproject.toml has no [tool.mypy] section"
    files = re.search(r"^files\s*=\s*\[(.*?)\]", section.group(1), re.S | re.M)
    assert files, "[tool.mypy] has no files = [...] list"
    patterns = re.findall(r'"([^"]+)"', files.group(1))
    out = sorted({Path(p) for pat in patterns for p in glob.glob(str(ROOT / pat))})
    assert out, f"[tool.mypy] files match nothing: {patterns}"
    return out


def _is_public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def unannotated(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: name (missing: ...)`` for each public function, or public method of a
    public class, with a parameter (other than self/cls) or the return left unannotated."""
    problems = []

    def visit(body, owner):
        for node in body:
            if isinstance(node, ast.ClassDef) and _is_public(node.name):
                visit(node.body, f"{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not _is_public(node.name):
                    continue
                a = node.args
                params = a.posonlyargs + a.args + a.kwonlyargs
                params += [p for p in (a.vararg, a.kwarg) if p is not None]
                if (
                    owner
                    and params
                    and params[0].arg in ("self", "cls")
                    and params[0].annotation is None
                ):
                    params = params[1:]
                missing = [p.arg for p in params if p.annotation is None]
                if node.returns is None:
                    missing.append("return")
                if missing:
                    problems.append(
                        f"{filename}:{node.lineno}: {owner}{node.name} "
                        f"(missing: {', '.join(missing)})"
                    )
            elif isinstance(node, ast.If):  # e.g. definitions under a version check
                visit(node.body + node.orelse, owner)

    visit(ast.parse(source).body, "")
    return problems


def test_the_annotation_check_can_fail():
    src = (
        "def ok(x: int, *a: int, k: int = 1, **kw: int) -> int: ...\n"
        "def _private(x): ...\n"
        "def bad(x, y: int): ...\n"
        "def no_return(x: int): ...\n"
        "class C:\n"
        "    def m(self, x: int) -> int: ...\n"
        "    def __add__(self, other): ...\n"
        "    @staticmethod\n"
        "    def forward(ctx, a: int) -> int: ...\n"
        "class _Hidden:\n"
        "    def m(self, x): ...\n"
    )
    got = unannotated(src, "f.py")
    assert got == [
        "f.py:3: bad (missing: x, return)",
        "f.py:4: no_return (missing: return)",
        "f.py:7: C.__add__ (missing: other, return)",
        "f.py:9: C.forward (missing: ctx)",
    ], got


def test_public_functions_are_annotated():
    problems = []
    for path in _mypy_files():
        problems += unannotated(path.read_text(), str(path.relative_to(ROOT)))
    assert not problems, "public functions without full type hints:\n" + "\n".join(problems)


def test_mypy_passes():
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (pip install -e .[test] installs it)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output", "--no-pretty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy failed (exit {proc.returncode}):\n{out}"
    assert "Success" in out, out
