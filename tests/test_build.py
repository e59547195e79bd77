"""setup.py's native build: parallel cached compile, a loud error without pybind11, the build
record.  Each test copies setup.py into a scratch tree with two tiny C++ files (no pybind11
code, so they compile in a fraction of a second) and runs ``setup.py build_ext`` there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXX = shutil.which("c++") or shutil.which("g++")
needs_cxx = pytest.mark.skipif(CXX is None, reason="no C++ compiler")


def _tree(tmp_path):
    root = tmp_path / "src"
    (root / "csrc" / "cpu").mkdir(parents=True)
    (root / "minigrad").mkdir()
    (root / "minigrad" / "__init__.py").write_text("")
    shutil.copy(os.path.join(REPO, "setup.py"), root / "setup.py")
    (root / "csrc" / "cpu" / "common.h").write_text("inline int base() { return 1; }\n")
    (root / "csrc" / "cpu" / "a.cpp").write_text('#include "common.h"\nint a() { return base(); }')
    (root / "csrc" / "cpu" / "b.cpp").write_text('#include "common.h"\nint b() { return 2; }\n')
    return root


def _build(root, *args, hide_pybind11=False, **env):
    """Run ``setup.py build_ext --inplace`` in ``root``; pybind11 hidden on request."""
    prelude = "import sys\n"
    if hide_pybind11:
        prelude += "sys.modules['pybind11'] = None  # `import pybind11` raises ImportError\n"
    code = prelude + (
        "sys.argv = ['setup.py', 'build_ext', '--inplace'] + sys.argv[1:]\n"
        "exec(compile(open('setup.py').read(), 'setup.py', 'exec'), {'__name__': '__main__',"
        " '__file__': 'setup.py'})\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MINIGRAD_")}
    full_env.update({"MINIGRAD_CUDA": "0", **env})
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _record(root):
    with open(root / "minigrad" / "_build.json") as f:
        return json.load(f)["extensions"]


def _so(root):
    return [p for p in os.listdir(root / "minigrad") if p.startswith("_C.") and p.endswith(".so")]


@needs_cxx
def test_second_build_compiles_nothing_and_edits_recompile_only_what_changed(tmp_path):
    pytest.importorskip("pybind11")
    root = _tree(tmp_path)
    r = _build(root)
    assert r.returncode == 0, r.stderr
    assert "compiling 2 of 2 files" in r.stderr and "parallel jobs" in r.stderr
    assert "compiled csrc/cpu/a.cpp" in r.stderr and "compiled csrc/cpu/b.cpp" in r.stderr
    assert _so(root)
    assert _record(root)["minigrad._C"]["status"] == "built"
    assert _record(root)["minigrad._C"]["compiled"] == 2
    assert _record(root)["minigrad._cuda"] == {"status": "skipped", "reason": "MINIGRAD_CUDA=0"}
    # The cache lives in the tree (build/minigrad-cache), not in a temporary build folder.
    assert (root / "build" / "minigrad-cache" / "build.log").exists()

    os.remove(root / "minigrad" / _so(root)[0])
    r = _build(root)  # unchanged tree: nothing compiled or linked, the module is restored
    assert r.returncode == 0, r.stderr
    assert "up to date (no file compiled" in r.stderr and "compiled csrc" not in r.stderr
    assert _so(root)
    assert _record(root)["minigrad._C"]["status"] == "cached"

    (root / "csrc" / "cpu" / "b.cpp").write_text('#include "common.h"\nint b() { return 3; }\n')
    r = _build(root)  # one source edited: that file only
    assert "compiling 1 of 2 files" in r.stderr and "compiled csrc/cpu/b.cpp" in r.stderr
    assert "compiled csrc/cpu/a.cpp" not in r.stderr

    (root / "csrc" / "cpu" / "common.h").write_text("inline int base() { return 2; }\n")
    r = _build(root)  # a header edited: every file
    assert "compiling 2 of 2 files" in r.stderr, r.stderr


@needs_cxx
def test_compile_error_fails_the_install_unless_native_is_off(tmp_path):
    pytest.importorskip("pybind11")
    root = _tree(tmp_path)
    (root / "csrc" / "cpu" / "b.cpp").write_text("int b() { return }\n")
    r = _build(root)
    assert r.returncode != 0
    assert "building minigrad._C (the C++ CPU kernels) failed" in r.stderr
    assert "MINIGRAD_NATIVE=0" in r.stderr
    assert _record(root)["minigrad._C"]["status"] == "failed"


def test_missing_pybind11_is_an_error(tmp_path):
    root = _tree(tmp_path)
    r = _build(root, hide_pybind11=True)
    assert r.returncode != 0
    assert "pybind11 is not installed" in r.stderr
    assert "MINIGRAD_NATIVE=0" in r.stderr and "--no-build-isolation" in r.stderr
    assert not _so(root)


def test_native_off_installs_numpy_only_and_records_why(tmp_path):
    root = _tree(tmp_path)
    r = _build(root, hide_pybind11=True, MINIGRAD_NATIVE="0")
    assert r.returncode == 0, r.stderr
    assert not _so(root)
    rec = _record(root)
    assert rec["minigrad._C"]["status"] == "skipped"
    assert "MINIGRAD_NATIVE=0" in rec["minigrad._C"]["reason"]


def test_backend_info_reports_the_build_record(tmp_path):
    """A NumPy-only install: backend_info and `minigrad info` say that _C was skipped and why,
    not only the bare ImportError."""
    code = (
        "import json, sys\n"
        "sys.modules['minigrad._C'] = None\n"
        "import minigrad.kernels.native as native\n"
        f"native.build_record = lambda: json.load(open({str(tmp_path / 'b.json')!r}))\n"
        "info = native.backend_info()\n"
        "assert info['_C'] is False\n"
        "assert 'skipped at install: MINIGRAD_NATIVE=0' in info['_C_error'], info['_C_error']\n"
        "assert info['build']['extensions']['minigrad._C']['status'] == 'skipped'\n"
        "from minigrad.app.tools import info as tool\n"
        "text = tool.format_text(tool.collect())\n"
        "assert 'minigrad._C     MISSING: skipped at install: MINIGRAD_NATIVE=0' in text, text\n"
        "assert 'minigrad._C: skipped: MINIGRAD_NATIVE=0' in text, text\n"
    )
    (tmp_path / "b.json").write_text(
        json.dumps(
            {"extensions": {"minigrad._C": {"status": "skipped", "reason": "MINIGRAD_NATIVE=0"}}}
        )
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr


def test_sdist_manifest_ships_every_native_source():
    """MANIFEST.in must put every file under csrc/ in the sdist (headers included)."""
    with open(os.path.join(REPO, "MANIFEST.in")) as f:
        manifest = f.read()
    assert "graft csrc" in manifest or all(
        f"*.{ext}" in manifest for ext in ("cpp", "h", "cu", "cuh")
    )


FAKE_NVCC = """#!/bin/bash
# Stands in for nvcc: compiles the .cu file as C++ (the test's .cu files are plain C++).
src=; out=; incs=()
while [ $# -gt 0 ]; do
  case "$1" in -c) src=$2; shift;; -o) out=$2; shift;; -I*) incs+=("$1");; esac; shift
done
[ -n "$src" ] || exit 0
exec c++ -x c++ -fPIC -c "$src" -o "$out" "${incs[@]}"
"""


@needs_cxx
def test_cuda_objects_and_module_are_cached_too(tmp_path):
    """The _cuda build (nvcc objects + C++ bindings) also compiles nothing the second time."""
    pytest.importorskip("pybind11")
    root = _tree(tmp_path)
    (root / "csrc" / "cuda").mkdir()
    (root / "csrc" / "cuda" / "k.cu").write_text("int k() { return 1; }\n")
    (root / "csrc" / "cuda" / "bindings.cpp").write_text("int kb() { return 2; }\n")
    home = tmp_path / "cuda"
    (home / "bin").mkdir(parents=True)
    (home / "include").mkdir()
    (home / "lib64").mkdir()
    (home / "bin" / "nvcc").write_text(FAKE_NVCC)
    (home / "bin" / "nvcc").chmod(0o755)
    (home / "include" / "cuda_runtime.h").write_text("")
    subprocess.run(["ar", "rc", str(home / "lib64" / "libcudart_static.a")], check=True)
    env = {"MINIGRAD_CUDA": "1", "CUDA_HOME": str(home), "MINIGRAD_CUDA_ARCH": "90"}
    r = _build(root, **env)
    assert r.returncode == 0, r.stderr
    assert "nvcc: csrc/cuda/k.cu done" in r.stderr and "compiled csrc/cuda/bindings.cpp" in r.stderr
    assert _record(root)["minigrad._cuda"]["status"] == "built"
    r = _build(root, **env)
    assert r.returncode == 0, r.stderr
    assert "nvcc: csrc/cuda/k.cu unchanged (cached)" in r.stderr
    assert "minigrad._cuda: up to date" in r.stderr and "compiled csrc" not in r.stderr
    assert _record(root)["minigrad._cuda"]["status"] == "cached"
    (root / "csrc" / "cuda" / "k.cu").write_text("int k() { return 3; }\n")
    r = _build(root, **env)  # an edited .cu: recompiled by nvcc and relinked
    assert "nvcc: csrc/cuda/k.cu done" in r.stderr and "linked minigrad._cuda" in r.stderr
