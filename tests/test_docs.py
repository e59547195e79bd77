"""Run every ```python snippet of README.md and docs/*.md so the docs never go stale.

Conventions (documented in docs/kernels.md and docs/backprop.md):

* ``print(expr)  # -> expected``: the printed text must equal ``expected`` (after the arrow);
* a line ``<!-- skip: reason -->`` just before a block skips it, with that reason;
* a line ``<!-- requires: some.module -->`` just before a block skips it while that module
  does not exist (for parts of the code still being written).

Each snippet runs on its own, in a fresh namespace, exactly as written. docs/*.md snippets
run with the repository root as the working directory; README snippets run in an empty
folder holding a small synthetic CIFAR-10 copy in ``data/`` (the layout the README tells a
user to create), so that they read and write nothing in the repository.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]

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


CASES = [
    pytest.param(path, line, code, directive, id=f"{path.name}:{line}")
    for path in DOCS
    for line, code, directive in extract(path)
]


def test_docs_have_snippets():
    assert any(p.name == "backprop.md" for p in DOCS)
    assert sum(1 for case in CASES if case.values[0] == README) >= 8
    assert len(CASES) >= 10


@pytest.mark.parametrize("path,line,code,directive", CASES)
def test_snippet(path, line, code, directive, monkeypatch, tmp_path_factory):
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
    if path == README:
        from fake_cifar import make_fake_cifar

        import minigrad.data.cifar10 as cifar10

        work = tmp_path_factory.mktemp("readme")
        counts = make_fake_cifar(work / "data")  # 64 images per file instead of 10,000
        monkeypatch.setattr(cifar10, "_OFFICIAL_COUNTS", counts)
        monkeypatch.chdir(work)
    else:
        monkeypatch.chdir(ROOT)
    import minigrad as mg

    mg.manual_seed(0)
    namespace = {"__name__": "__doc_snippet__", "__expect__": _expect}
    compiled = compile(rewrite(code), f"{path.name}:{line}", "exec")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compiled, namespace)  # the docs' own code


def test_rewrite_and_extract(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n<!-- skip: not yet -->\n```python\nprint(1 + 1)  # -> 2\n```\n"
        "```python\nx = 3\n```\n"
    )
    blocks = extract(doc)
    assert blocks[0][2] == ("skip", "not yet") and blocks[1][2] is None
    assert rewrite("  print(a, b)  # -> 1 2") == "  __expect__(1, '1 2', a, b)"
    with pytest.raises(AssertionError, match="the doc says '3'"):
        _expect(1, "3", 2)
    assert os.path.exists(doc)


def test_readme_is_generated_from_sections():
    """README.md == docs/make_readme.py's output: edit docs/sections/, then regenerate."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_readme_figures_come_from_result_files(tmp_path, monkeypatch):
    """A changed result file changes the README's table: no figure is typed by hand."""
    import importlib.util as iu

    spec = iu.spec_from_file_location("make_readme", ROOT / "docs" / "make_readme.py")
    make_readme = iu.module_from_spec(spec)
    spec.loader.exec_module(make_readme)
    table = make_readme.results_table()
    src = ROOT / "benchmarks" / "results"
    summary = json.loads((src / "cifar_r1_minigrad" / "summary.json").read_text())
    assert f"**{100 * summary['test_accuracy']:.2f}%**" in table
    fake = tmp_path / "results"
    shutil.copytree(src, fake, ignore=shutil.ignore_patterns("*.png"))
    summary["test_accuracy"] = 0.1234
    (fake / "cifar_r1_minigrad" / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(make_readme, "RESULTS", fake)
    assert "**12.34%**" in make_readme.results_table()
