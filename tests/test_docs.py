"""Run every ```python snippet of docs/*.md so the docs never go stale.

Conventions (documented in docs/kernels.md and docs/backprop.md):

* ``print(expr)  # -> expected``: the printed text must equal ``expected`` (after the arrow);
* a line ``<!-- skip: reason -->`` just before a block skips it, with that reason;
* a line ``<!-- requires: some.module -->`` just before a block skips it while that module
  does not exist (for parts of the code still being written).

Each snippet runs on its own, in a fresh namespace, with the repository root as the
working directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^```python\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*(skip|requires)\s*:\s*(.*?)\s*-->\s*$")
_EXPECT = re.compile(r"^(\s*)print\((.*)\)\s*#\s*->\s?(.*)$")


def extract(path: Path) -> list[tuple[int, str, tuple | None]]:
    """``[(line number, code, directive)]`` for each python block of ``path``."""
    lines = path.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            directive = None
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0:
                m = _DIRECTIVE.match(lines[j].strip())
                if m:
                    directive = (m.group(1), m.group(2))
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            blocks.append((start + 1, "\n".join(lines[start:i]), directive))
        i += 1
    return blocks


def rewrite(code: str) -> str:
    """``print(x)  # -> v`` becomes ``__expect__(line, 'v', x)``."""
    out = []
    for n, line in enumerate(code.splitlines(), 1):
        m = _EXPECT.match(line)
        if m:
            indent, args, expected = m.groups()
            line = f"{indent}__expect__({n}, {expected.rstrip()!r}, {args})"
        out.append(line)
    return "\n".join(out)


def _expect(line, expected, *values):
    text = " ".join(str(v) for v in values)
    print(text)
    assert text == expected, f"snippet line {line}: printed {text!r}, the doc says {expected!r}"


CASES = [pytest.param(path, line, code, directive, id=f"{path.name}:{line}")
         for path in DOCS for line, code, directive in extract(path)]


def test_docs_have_snippets():
    assert any(p.name == "backprop.md" for p in DOCS)
    assert len(CASES) >= 10


@pytest.mark.parametrize("path,line,code,directive", CASES)
def test_snippet(path, line, code, directive, monkeypatch):
    if directive is not None:
        kind, arg = directive
        if kind == "skip":
            pytest.skip(f"{path.name}:{line}: {arg}")
        if kind == "requires":
            for mod in arg.split(","):
                mod = mod.strip()
                try:
                    found = importlib.util.find_spec(mod) is not None
                except ModuleNotFoundError:
                    found = False
                if not found:
                    pytest.skip(f"{path.name}:{line}: needs {mod}, not written yet")
    monkeypatch.chdir(ROOT)
    import minigrad as mg

    mg.manual_seed(0)
    namespace = {"__name__": "__doc_snippet__", "__expect__": _expect}
    compiled = compile(rewrite(code), f"{path.name}:{line}", "exec")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compiled, namespace)  # noqa: S102 - the docs' own code


def test_rewrite_and_extract(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n<!-- skip: not yet -->\n```python\nprint(1 + 1)  # -> 2\n```\n"
                   "```python\nx = 3\n```\n")
    blocks = extract(doc)
    assert blocks[0][2] == ("skip", "not yet") and blocks[1][2] is None
    assert rewrite("  print(a, b)  # -> 1 2") == "  __expect__(1, '1 2', a, b)"
    with pytest.raises(AssertionError, match="the doc says '3'"):
        _expect(1, "3", 2)
    assert os.path.exists(doc)
