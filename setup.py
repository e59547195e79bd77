"""Build the optional native kernels; package metadata lives in pyproject.toml.

Two extensions, both optional for users:

* ``minigrad._C``    from ``csrc/cpu/*.cpp``: C++17, -O3, OpenMP when the compiler has it.
  If there is no compiler or the build fails, installation still succeeds and minigrad runs on
  its NumPy kernels (``minigrad.backend_info()["_C"]`` is then False).
* ``minigrad._cuda`` from ``csrc/cuda/*.cu`` (nvcc) + ``csrc/cuda/*.cpp`` (C++ compiler),
  linked with the C++ linker against the static CUDA runtime so it imports without a GPU.

Environment:

* ``MINIGRAD_CUDA=1``  build ``_cuda`` and FAIL the installation if that fails (CI uses this).
* ``MINIGRAD_CUDA=0``  skip ``_cuda``.  Unset: build it when nvcc is found; failures only warn.
* ``MINIGRAD_NATIVE_ARCH=1``  add ``-march=native`` (faster, but the binary is not portable).
* ``CUDA_HOME`` / ``CUDA_PATH``  where the CUDA toolkit lives (else found from nvcc).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
CUDA_ENV = os.environ.get("MINIGRAD_CUDA", "").strip()
CUDA_REQUIRED = CUDA_ENV == "1"
NATIVE_ARCH = os.environ.get("MINIGRAD_NATIVE_ARCH", "").strip() == "1"

# Real and virtual GPU architectures: A100 (sm_80), H100 (sm_90), and PTX for newer GPUs.
CUDA_GENCODE = [
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90,code=sm_90",
    "-gencode=arch=compute_90,code=compute_90",
]
# IEEE-exact math (no --use_fast_math) so GPU results match the CPU reference closely.
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xcompiler=-fPIC", "-Xcompiler=-fvisibility=hidden"]
NVCC_FLAGS += CUDA_GENCODE


def log(msg: str) -> None:
    print(f"minigrad setup: {msg}", file=sys.stderr, flush=True)


def rel(pattern: str) -> list[str]:
    """Sorted source paths relative to the project root (setuptools wants relative paths)."""
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def pybind11_include() -> str | None:
    try:
        import pybind11
    except ImportError:
        return None
    return pybind11.get_include()


# ----------------------------------------------------------------------------- CUDA toolkit
def find_nvcc() -> str | None:
    for env in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(env)
        if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def find_cuda_home(nvcc: str) -> str | None:
    """The toolkit root holding include/cuda_runtime.h (nvcc may be a wrapper script)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    try:  # nvcc's own idea of its root, robust to wrapper scripts in /usr/local/bin
        out = subprocess.run(
            [nvcc, "--dryrun", "--version"], capture_output=True, text=True, timeout=60
        )
        for line in (out.stdout + out.stderr).splitlines():
            if "TOP=" in line:
                candidates.append(os.path.realpath(line.split("TOP=", 1)[1].strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += ["/usr/local/cuda"]
    for home in candidates:
        if home and os.path.isfile(os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


def cuda_lib_dir(home: str) -> str | None:
    for sub in (
        "lib64",
        "lib",
        os.path.join("targets", "x86_64-linux", "lib"),
        os.path.join("targets", "sbsa-linux", "lib"),
    ):
        d = os.path.join(home, sub)
        if os.path.isfile(os.path.join(d, "libcudart_static.a")):
            return d
    return None


# ----------------------------------------------------------------------------- build_ext
class BuildExt(build_ext):
    """build_ext that probes OpenMP, compiles .cu with nvcc, and never breaks a CPU install."""

    _failed: frozenset[str] = frozenset()  # extensions whose build failed (optional ones only)

    def build_extensions(self):
        self._openmp = self._compiler_accepts("-fopenmp")
        if not self._openmp:
            log("the C++ compiler rejects -fopenmp: building the CPU kernels single-threaded")
        super().build_extensions()

    def _compiler_accepts(self, flag: str) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.cpp")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint main() { return omp_get_max_threads() < 1; }\n")
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
                self.compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=[flag])
            except Exception:
                return False
        return True

    def _cxx_flags(self) -> list[str]:
        # -fno-math-errno: lets sqrt/exp loops vectorize (kernels never read errno).
        # -fno-trapping-math: lets GCC turn the clamps in exp_f32 (x < lo ? lo : x) into vector
        # blends; without it no loop that calls exp_f32 vectorizes (GCC 12: "control flow in
        # loop"). NaN/Inf results are unchanged; only FP-exception traps, never enabled here,
        # are assumed off.
        flags = ["-O3", "-std=c++17", "-fvisibility=hidden", "-Wall", "-fno-math-errno",
                 "-fno-trapping-math"]
        if NATIVE_ARCH:
            flags.append("-march=native")
        if self._openmp:
            flags.append("-fopenmp")
        return flags

    def build_extension(self, ext):
        is_cuda = ext.name == "minigrad._cuda"
        try:
            if is_cuda:
                self._build_cuda(ext)
            else:
                self._build_cpu(ext)
        except Exception as e:
            self._failed = self._failed | {ext.name}
            if is_cuda and CUDA_REQUIRED:
                log(f"building {ext.name} FAILED and MINIGRAD_CUDA=1 requires it: {e}")
                raise
            what = "the GPU kernels" if is_cuda else "the C++ CPU kernels"
            fallback = "CuPy reference kernels" if is_cuda else "NumPy kernels"
            log(
                f"WARNING: could not build {ext.name} ({type(e).__name__}: {e}). "
                f"minigrad will run without {what}, on its {fallback}. "
                "Fix the compiler/toolkit and reinstall with `pip install -e .` to get them."
            )

    # A failed optional extension has no output file: leave it out of the copies that
    # `--inplace` and editable installs (`pip install -e .`) make, instead of failing there.
    def _built_extensions(self):
        return [e for e in self.extensions if e.name not in self._failed]

    def copy_extensions_to_source(self):
        all_extensions, self.extensions = self.extensions, self._built_extensions()
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = all_extensions

    def get_outputs(self):
        all_extensions, self.extensions = self.extensions, self._built_extensions()
        try:
            return super().get_outputs()
        finally:
            self.extensions = all_extensions

    def get_output_mapping(self):
        all_extensions, self.extensions = self.extensions, self._built_extensions()
        try:
            return super().get_output_mapping()
        finally:
            self.extensions = all_extensions

    def _build_cpu(self, ext):
        flags = self._cxx_flags()
        ext.extra_compile_args = flags + [f'-DMINIGRAD_CXX_FLAGS="{" ".join(flags)}"']
        ext.extra_link_args = ["-fopenmp"] if self._openmp else []
        super().build_extension(ext)

    def _build_cuda(self, ext):
        nvcc = find_nvcc()
        if nvcc is None:
            raise RuntimeError("nvcc not found (set CUDA_HOME or put nvcc on PATH)")
        home = find_cuda_home(nvcc)
        if home is None:
            raise RuntimeError(f"cannot find the CUDA toolkit (include/cuda_runtime.h) for {nvcc}")
        libdir = cuda_lib_dir(home)
        if libdir is None:
            raise RuntimeError(f"cannot find libcudart_static.a under {home}")
        include = os.path.join(home, "include")

        cu_sources = [s for s in ext.sources if s.endswith(".cu")]
        ext.sources = [s for s in ext.sources if not s.endswith(".cu")]
        objects = [self._nvcc_compile(nvcc, src, ext.include_dirs) for src in cu_sources]

        ext.include_dirs = [*ext.include_dirs, include]
        ext.extra_objects = [*ext.extra_objects, *objects]
        ext.extra_compile_args = ["-O3", "-std=c++17", "-fvisibility=hidden", "-Wall"]
        # Static cudart: the module imports on machines without libcudart or a GPU driver.
        ext.library_dirs = [*ext.library_dirs, libdir]
        ext.libraries = [*ext.libraries, "cudart_static", "dl", "rt", "pthread"]
        super().build_extension(ext)

    def _nvcc_compile(self, nvcc: str, src: str, include_dirs: list[str]) -> str:
        out_dir = os.path.join(self.build_temp, "cuda", os.path.dirname(src))
        os.makedirs(out_dir, exist_ok=True)
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        if not self.force and os.path.exists(obj) and self._up_to_date(obj, src):
            return obj
        cmd = [nvcc, "-c", src, "-o", obj, *NVCC_FLAGS, *[f"-I{d}" for d in include_dirs]]
        if os.environ.get("MINIGRAD_NVCC_CCBIN"):  # host compiler for nvcc, if not the default
            cmd += ["-ccbin", os.environ["MINIGRAD_NVCC_CCBIN"]]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, cwd=ROOT)
        return obj

    @staticmethod
    def _up_to_date(obj: str, src: str) -> bool:
        deps = [src, *glob.glob(os.path.join(os.path.dirname(src), "*.cuh"))]
        return all(os.path.getmtime(obj) >= os.path.getmtime(d) for d in deps)


# ----------------------------------------------------------------------------- extensions
def extensions() -> list[Extension]:
    inc = pybind11_include()
    if inc is None:
        msg = "pybind11 is not installed: skipping the native kernels (minigrad runs on NumPy)"
        if CUDA_REQUIRED:
            raise RuntimeError(msg + "; MINIGRAD_CUDA=1 requires them")
        log("WARNING: " + msg)
        return []
    exts = [
        Extension(
            "minigrad._C",
            sources=rel("csrc/cpu/*.cpp"),
            include_dirs=[inc, os.path.join("csrc", "cpu")],
            depends=rel("csrc/cpu/*.h"),
            language="c++",
        )
    ]
    if CUDA_ENV == "0":
        log("MINIGRAD_CUDA=0: skipping minigrad._cuda")
    elif CUDA_REQUIRED or find_nvcc() is not None:
        exts.append(
            Extension(
                "minigrad._cuda",
                sources=rel("csrc/cuda/*.cu") + rel("csrc/cuda/*.cpp"),
                include_dirs=[inc, os.path.join("csrc", "cuda")],
                depends=rel("csrc/cuda/*.cuh"),
                language="c++",
            )
        )
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
