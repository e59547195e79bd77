"""Build the native kernels; package metadata lives in pyproject.toml.

Two extensions:

* ``minigrad._C``    from ``csrc/cpu/*.cpp``: C++17, -O3, OpenMP when the compiler has it.
  Required: if pybind11 is missing or the compile fails, the installation FAILS with a message
  saying what to do, unless ``MINIGRAD_NATIVE=0`` asks for a NumPy-only install.
* ``minigrad._cuda`` from ``csrc/cuda/*.cu`` (nvcc) + ``csrc/cuda/*.cpp`` (C++ compiler),
  linked with the C++ linker against the static CUDA runtime so it imports without a GPU.
* Both include ``csrc/common/`` (geometry, argument checks, overflow-checked int64, the
  ``dispatch_float`` template): the checks are written once for the CPU and the CUDA side.

The ``.cpp`` files compile in parallel (one job per core) into a persistent, content-addressed
cache (``build/minigrad-cache/`` in the source tree): reinstalling an unchanged tree compiles and
links nothing, and editing one file recompiles that file only.  Progress goes to stderr (``pip``
shows it with ``-v``) and to ``build/minigrad-cache/build.log``.  What was built, and why not,
is recorded in ``minigrad/_build.json`` (read by ``minigrad.backend_info()`` and
``minigrad info``).

Environment:

* ``MINIGRAD_NATIVE=0``  build no native kernels (NumPy only; slower, but needs no compiler).
* ``MINIGRAD_CUDA=1``  build ``_cuda`` and FAIL the installation if that fails (CI uses this).
* ``MINIGRAD_CUDA=0``  skip ``_cuda`` (CPU-only machines; saves minutes when nvcc exists).
  Unset: build it when nvcc is found; failures only warn.
* ``MINIGRAD_NATIVE_ARCH=1``  add ``-march=native`` (faster, but the binary is not portable).
* ``MINIGRAD_SANITIZE=1``  build ``_C`` with ASan + UBSan (``.ci/sanitize`` does, in a copy of
  the tree); load it with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``.
* ``MINIGRAD_BUILD_JOBS=N``  parallel compile jobs (default: the usable cores).
* ``MINIGRAD_BUILD_CACHE=DIR``  where the compile cache lives; ``0`` disables it.
* ``MINIGRAD_CUDA_ARCH=90`` (or ``80;90``)  GPU architectures to compile for; unset or
  ``auto``: the GPUs ``nvidia-smi`` sees, else sm_80 + sm_90 (+ PTX).  The ``.cu`` files compile
  in parallel (``MINIGRAD_BUILD_JOBS`` jobs).
* ``CUDA_HOME`` / ``CUDA_PATH``  where the CUDA toolkit lives (else found from nvcc).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
CUDA_ENV = os.environ.get("MINIGRAD_CUDA", "").strip()
CUDA_REQUIRED = CUDA_ENV == "1"
NATIVE_ARCH = os.environ.get("MINIGRAD_NATIVE_ARCH", "").strip() == "1"
NATIVE_OFF = os.environ.get("MINIGRAD_NATIVE", "").strip() == "0"
# MINIGRAD_SANITIZE=1: _C (only) with AddressSanitizer + UndefinedBehaviorSanitizer, for
# .ci/sanitize; import it with LD_PRELOAD=$(gcc -print-file-name=libasan.so).
SANITIZE = os.environ.get("MINIGRAD_SANITIZE", "").strip() == "1"
SANITIZE_FLAGS = [
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=undefined",
]
BUILD_RECORD = "_build.json"  # written into the package: what was built, and why not

# Default GPU architectures (no GPU visible at build time, MINIGRAD_CUDA_ARCH unset): A100
# (sm_80), H100/H200 (sm_90), and PTX of the newest for later GPUs.
CUDA_DEFAULT_ARCHS = ["80", "90"]
# IEEE-exact math (no --use_fast_math) so GPU results match the CPU reference closely.
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xcompiler=-fPIC", "-Xcompiler=-fvisibility=hidden"]


def detected_cuda_archs() -> list[str]:
    """Compute capabilities of the visible GPUs ('90' for 9.0), from nvidia-smi; [] if none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    caps = {line.strip().replace(".", "") for line in out.stdout.splitlines()}
    return sorted(c for c in caps if c.isdigit())


def cuda_archs() -> list[str]:
    """MINIGRAD_CUDA_ARCH ('90', '80;90', '80,90' or 'auto'); unset or 'auto': the GPUs
    nvidia-smi sees, else CUDA_DEFAULT_ARCHS."""
    env = os.environ.get("MINIGRAD_CUDA_ARCH", "").strip().lower()
    if env and env != "auto":
        archs = [
            a.strip().replace(".", "").removeprefix("sm_")
            for a in env.replace(";", ",").split(",")
            if a.strip()
        ]
        bad = [a for a in archs if not a.isdigit()]
        if bad or not archs:
            raise RuntimeError(f"MINIGRAD_CUDA_ARCH={env!r}: expected e.g. '90' or '80;90'")
        return sorted(set(archs), key=int)
    return detected_cuda_archs() or CUDA_DEFAULT_ARCHS


def cuda_gencode(archs: list[str]) -> list[str]:
    """SASS for every arch, plus PTX of the newest (JIT-compiled on later GPUs)."""
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def log(msg: str) -> None:
    print(f"minigrad setup: {msg}", file=sys.stderr, flush=True)
    cache = build_cache_dir()
    if cache is not None:
        try:
            os.makedirs(cache, exist_ok=True)
            with open(os.path.join(cache, "build.log"), "a", encoding="utf-8") as f:
                f.write(f"{datetime.datetime.now().isoformat(timespec='seconds')} {msg}\n")
        except OSError:
            pass


def build_jobs() -> int:
    env = os.environ.get("MINIGRAD_BUILD_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def build_cache_dir() -> str | None:
    """The persistent compile cache (None when MINIGRAD_BUILD_CACHE=0).

    It lives in the source tree (not in pip's temporary build folder) so that a second
    ``pip install`` of the same tree finds it."""
    env = os.environ.get("MINIGRAD_BUILD_CACHE", "").strip()
    if env == "0":
        return None
    return os.path.abspath(env) if env else os.path.join(ROOT, "build", "minigrad-cache")


def sha256(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def children_cpu_seconds() -> float:
    """CPU time of finished child processes (the compiler runs), user + system."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def local_headers() -> list[str]:
    """Every header under csrc/: a change to any of them invalidates every cached object."""
    found = []
    for ext in ("h", "hpp", "cuh", "inc"):
        found += glob.glob(os.path.join(ROOT, "csrc", "**", f"*.{ext}"), recursive=True)
    return sorted(found)


def rel(pattern: str) -> list[str]:
    """Sorted source paths relative to the project root (setuptools wants relative paths)."""
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def pybind11_include() -> str | None:
    try:
        import pybind11
    except ImportError:
        return None
    return pybind11.get_include()


def pybind11_version() -> str | None:
    try:
        import pybind11
    except ImportError:
        return None
    return pybind11.__version__


PYBIND11_MISSING = (
    "pybind11 is not installed in the Python environment that builds minigrad, so its C++ "
    "kernels (minigrad._C) cannot be compiled.  `pip install -e . --no-build-isolation` builds "
    "with the packages of the current environment: run `pip install pybind11 setuptools` "
    "first, or drop --no-build-isolation (pip then fetches pybind11 itself).  To install "
    "without native kernels on purpose (NumPy only, several times slower), set "
    "MINIGRAD_NATIVE=0."
)


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
    """build_ext that probes OpenMP, compiles .cpp files in parallel through a persistent
    cache, compiles .cu with nvcc, and records what it built in minigrad/_build.json."""

    _failed: frozenset[str] = frozenset()  # extensions not built (failed optional, or skipped)
    _record: dict  # extension name -> {"status": built|cached|failed|skipped, "reason": ...}

    def run(self):
        self._record = {}
        inplace = bool(self.inplace or getattr(self, "editable_mode", False))
        try:
            super().run()
        finally:  # a failed build records why, too
            self._write_record(inplace)

    def _write_record(self, inplace: bool):
        """minigrad/_build.json: read by minigrad.backend_info() and `minigrad info`."""
        record = {
            "format": 1,
            "built_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "pybind11": pybind11_version(),
            "compiler": " ".join(getattr(self.compiler, "compiler_so", None) or []) or None,
            "jobs": build_jobs(),
            "cache": build_cache_dir(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("MINIGRAD_")},
            "extensions": {
                **{
                    name: {"status": "skipped", "reason": why}
                    for name, why in NOT_REQUESTED.items()
                },
                **self._record,
            },
        }
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        dirs = [os.path.join(self.build_lib, "minigrad")]
        if inplace:
            dirs.append(os.path.join(ROOT, "minigrad"))
        for d in dirs:
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, BUILD_RECORD), "w", encoding="utf-8") as f:
                    f.write(text)
            except OSError as e:
                log(f"could not write the build record in {d}: {e}")

    def build_extensions(self):
        if NATIVE_OFF:
            for ext in self.extensions:
                self._skip(ext, "MINIGRAD_NATIVE=0: native kernels not requested")
            log("MINIGRAD_NATIVE=0: building no native kernels; minigrad runs on NumPy")
            return
        if pybind11_include() is None:
            log("ERROR: " + PYBIND11_MISSING)
            raise RuntimeError(PYBIND11_MISSING)
        for name, why in NOT_REQUESTED.items():
            log(f"not building {name}: {why}")
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
        # -g0: Python's own CFLAGS carry -g; debug info for pybind11's templates made every
        # file's compile ~35% slower (and _C 10x larger) for nothing a user needs.  Flags
        # appended later (MINIGRAD_SANITIZE's -g) still win.
        flags = [
            "-O3",
            "-g0",
            "-std=c++17",
            "-fvisibility=hidden",
            "-Wall",
            "-fno-math-errno",
            "-fno-trapping-math",
        ]
        if NATIVE_ARCH:
            flags.append("-march=native")
        if self._openmp:
            flags.append("-fopenmp")
        return flags

    def _skip(self, ext, reason: str) -> None:
        self._failed = self._failed | {ext.name}
        self._record[ext.name] = {"status": "skipped", "reason": reason}

    def build_extension(self, ext):
        is_cuda = ext.name == "minigrad._cuda"
        t0 = time.perf_counter()
        try:
            if is_cuda:
                self._build_cuda(ext)
                self._record.setdefault(ext.name, {"status": "built"})
            else:
                self._build_cpu(ext)
            self._record[ext.name]["seconds"] = round(time.perf_counter() - t0, 1)
        except Exception as e:
            self._failed = self._failed | {ext.name}
            self._record[ext.name] = {
                "status": "failed",
                "reason": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - t0, 1),
            }
            if not is_cuda:
                log(
                    f"ERROR: building {ext.name} (the C++ CPU kernels) failed: "
                    f"{type(e).__name__}: {e}.  The compiler's messages are above.  Install a "
                    "C++17 compiler (g++ or clang++), or set MINIGRAD_NATIVE=0 to install "
                    "without native kernels (NumPy only, several times slower)."
                )
                raise
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
        if SANITIZE:  # -O1 -g: readable reports, and half the compile time of -O3;
            # -fno-wrapv undoes Python's -fwrapv so UBSan reports signed int64 overflow
            flags = flags + SANITIZE_FLAGS + ["-O1", "-g", "-fno-wrapv"]
        ext.extra_compile_args = flags + [f'-DMINIGRAD_CXX_FLAGS="{" ".join(flags)}"']
        ext.extra_link_args = ["-fopenmp"] if self._openmp else []
        if SANITIZE:
            ext.extra_link_args = ext.extra_link_args + SANITIZE_FLAGS
        self._record[ext.name] = self._build_cached(ext)
        self._record[ext.name]["flags"] = " ".join(flags)

    # ------------------------------------------------------------------ parallel, cached build
    def _fingerprint(self, ext) -> str:
        """Everything besides the source text that changes an object file: compiler and its
        version, flags, macros, include dirs, pybind11 and Python versions, and every header
        under csrc/.  pybind11's include dir is named by version, not path, because pip's
        build isolation installs it in a new temporary folder each time."""
        cc = list(self.compiler.compiler_so)
        if not hasattr(self, "_cc_version"):
            try:
                out = subprocess.run(
                    [cc[0], "--version"], capture_output=True, text=True, timeout=60
                )
                self._cc_version = out.stdout
            except (OSError, subprocess.SubprocessError):
                self._cc_version = ""
        pyb = pybind11_include()
        incs = [f"pybind11-{pybind11_version()}" if d == pyb else d for d in ext.include_dirs]
        headers = [sha256(os.path.relpath(h, ROOT), file_bytes(h)) for h in local_headers()]
        return sha256(
            json.dumps(
                [
                    cc,
                    self._cc_version,
                    ext.extra_compile_args,
                    ext.define_macros,
                    ext.undef_macros,
                    incs,
                    sysconfig.get_paths()["include"],
                    sysconfig.get_config_var("EXT_SUFFIX"),
                    self.debug,
                ]
            ),
            *headers,
        )

    def _cache_dir(self) -> str:
        """The persistent cache, or a folder in build_temp when it is off or not writable
        (a read-only source tree)."""
        cache = build_cache_dir()
        if cache is not None:
            try:
                os.makedirs(os.path.join(cache, "tmp"), exist_ok=True)
                return cache
            except OSError as e:
                log(f"cannot use the build cache {cache} ({e}); compiling without it")
        return os.path.join(os.path.abspath(self.build_temp), "mg-cache")

    def _build_cached(self, ext) -> dict:
        """Compile ``ext``'s sources in parallel into the persistent cache and link them.

        Objects are stored under the hash of their source and :meth:`_fingerprint`; the
        linked module under the hash of its objects and link flags, so an unchanged tree
        compiles and links nothing."""
        t0 = time.perf_counter()
        cpu0 = children_cpu_seconds()
        cache = self._cache_dir()
        target = self.get_ext_fullpath(ext.name)
        fingerprint = self._fingerprint(ext)
        keys = {
            src: sha256(fingerprint, src, file_bytes(os.path.join(ROOT, src)))[:24]
            for src in ext.sources
        }
        objects = {
            src: os.path.join(cache, "obj", f"{os.path.basename(src)}-{k}.o")
            for src, k in keys.items()
        }
        link_key = sha256(
            json.dumps(
                [
                    list(self.compiler.linker_so),
                    ext.extra_link_args,
                    self.get_libraries(ext),
                    ext.library_dirs,
                    ext.runtime_library_dirs,
                    sorted(keys.values()),
                ]
            ),
            *(file_bytes(o) for o in ext.extra_objects),  # e.g. nvcc's objects for _cuda
        )[:24]
        linked = os.path.join(cache, "lib", link_key, os.path.basename(target))
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        if os.path.exists(linked) and not self.force:
            shutil.copyfile(linked, target + ".part")  # never rewrite a loaded module in place
            os.replace(target + ".part", target)
            log(f"{ext.name}: up to date (no file compiled; cached in {cache})")
            return {"status": "cached", "compiled": 0, "reused": len(keys)}

        todo = [s for s in ext.sources if self.force or not os.path.exists(objects[s])]
        todo.sort(key=lambda s: -os.path.getsize(os.path.join(ROOT, s)))  # longest first
        jobs = min(build_jobs(), max(1, len(todo)))
        log(
            f"building {ext.name}: compiling {len(todo)} of {len(keys)} files with {jobs} "
            f"parallel jobs ({len(keys) - len(todo)} unchanged, from the cache in {cache})"
        )
        for src in todo:
            log(f"  queued {src}")

        def compile_one(src: str) -> str:
            t = time.perf_counter()
            tmp = tempfile.mkdtemp(dir=os.path.join(cache, "tmp"))
            try:
                (obj,) = self.compiler.compile(
                    [src],
                    output_dir=tmp,
                    macros=ext.define_macros,
                    include_dirs=ext.include_dirs,
                    debug=self.debug,
                    extra_postargs=ext.extra_compile_args,
                    depends=ext.depends,
                )
                # the key hashed the source before the compiler read it: a file edited in
                # between must not be cached under its old text's key
                now = sha256(fingerprint, src, file_bytes(os.path.join(ROOT, src)))[:24]
                if now != keys[src]:
                    raise RuntimeError(f"{src} changed while it compiled; build again")
                os.replace(obj, objects[src])  # atomic: a killed build leaves no half object
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log(f"  compiled {src} in {time.perf_counter() - t:.1f} s")
            return src

        os.makedirs(os.path.join(cache, "obj"), exist_ok=True)
        os.makedirs(os.path.join(cache, "tmp"), exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = {pool.submit(compile_one, src): src for src in todo}
            errors = []
            for fut in concurrent.futures.as_completed(futures):
                if fut.exception() is not None:
                    errors.append(f"{futures[fut]}: {fut.exception()}")
        if errors:
            raise RuntimeError("compiling failed: " + "; ".join(sorted(errors)))

        t = time.perf_counter()
        self.compiler.link_shared_object(
            [objects[s] for s in ext.sources] + list(ext.extra_objects),
            target,
            libraries=self.get_libraries(ext),
            library_dirs=ext.library_dirs,
            runtime_library_dirs=ext.runtime_library_dirs,
            extra_postargs=ext.extra_link_args,
            export_symbols=self.get_export_symbols(ext),
            debug=self.debug,
            build_temp=self.build_temp,
            target_lang="c++",
        )
        os.makedirs(os.path.dirname(linked), exist_ok=True)
        shutil.copyfile(target, linked + ".part")
        os.replace(linked + ".part", linked)
        seconds = time.perf_counter() - t0
        cpu = children_cpu_seconds() - cpu0
        log(f"  linked {ext.name} in {time.perf_counter() - t:.1f} s")
        log(
            f"built {ext.name} in {seconds:.1f} s ({len(todo)} files compiled; the compiler "
            f"used {cpu:.1f} CPU seconds)"
        )
        return {
            "status": "built",
            "compiled": len(todo),
            "reused": len(keys) - len(todo),
            "compiler_cpu_seconds": round(cpu, 1),
        }

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
        archs = cuda_archs()
        gencode = cuda_gencode(archs)
        jobs = min(build_jobs(), max(1, len(cu_sources)))
        log(f"nvcc: {len(cu_sources)} .cu files for sm_{', sm_'.join(archs)}, {jobs} parallel jobs")
        # nvcc runs as a subprocess, so threads give real parallelism; map keeps source order.
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            objects = list(
                pool.map(
                    lambda src: self._nvcc_compile(nvcc, src, ext.include_dirs, gencode), cu_sources
                )
            )

        ext.include_dirs = [*ext.include_dirs, include]
        ext.extra_objects = [*ext.extra_objects, *objects]
        ext.extra_compile_args = ["-O3", "-g0", "-std=c++17", "-fvisibility=hidden", "-Wall"]
        # Static cudart: the module imports on machines without libcudart or a GPU driver.
        ext.library_dirs = [*ext.library_dirs, libdir]
        ext.libraries = [*ext.libraries, "cudart_static", "dl", "rt", "pthread"]
        self._record[ext.name] = self._build_cached(ext)
        self._record[ext.name]["archs"] = archs

    def _nvcc_compile(
        self, nvcc: str, src: str, include_dirs: list[str], gencode: list[str]
    ) -> str:
        # the object name carries the architectures: switching MINIGRAD_CUDA_ARCH recompiles
        tag = "sm" + "_".join(
            a.split("=")[-1].removeprefix("sm_") for a in gencode if "code=sm_" in a
        )
        # Objects live in the persistent cache under the hash of the source, every header
        # under csrc/, nvcc and its flags: a reinstall of an unchanged tree compiles nothing.
        out_dir = os.path.join(self._cache_dir(), "cuda")
        os.makedirs(out_dir, exist_ok=True)
        flags = [*NVCC_FLAGS, *gencode]
        if os.environ.get("MINIGRAD_NVCC_CCBIN"):  # host compiler for nvcc, if not the default
            flags += ["-ccbin", os.environ["MINIGRAD_NVCC_CCBIN"]]
        pyb = pybind11_include()
        incs = [f"pybind11-{pybind11_version()}" if d == pyb else d for d in include_dirs]
        key = sha256(
            json.dumps([os.path.realpath(nvcc), flags, incs, src]),
            file_bytes(os.path.join(ROOT, src)),
            *(sha256(os.path.relpath(h, ROOT), file_bytes(h)) for h in local_headers()),
        )
        obj = os.path.join(out_dir, f"{os.path.basename(src)}.{tag}-{key[:24]}.o")
        if not self.force and os.path.exists(obj):
            log(f"nvcc: {src} unchanged (cached)")
            return obj
        cmd = [nvcc, "-c", src, "-o", obj + ".part.o", *flags, *[f"-I{d}" for d in include_dirs]]
        log(" ".join(cmd))
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        os.replace(obj + ".part.o", obj)  # atomic: a killed build leaves no half object
        log(f"nvcc: {src} done in {time.perf_counter() - t0:.1f} s")
        return obj


# ----------------------------------------------------------------------------- extensions
NOT_REQUESTED: dict[str, str] = {}  # extension -> why it is not in the build at all


def extensions() -> list[Extension]:
    # pybind11 missing is reported by BuildExt when it builds (an error unless
    # MINIGRAD_NATIVE=0), so that metadata and sdist commands still work without it.
    inc = pybind11_include()
    pyb = [inc] if inc else []
    exts = [
        Extension(
            "minigrad._C",
            sources=rel("csrc/cpu/*.cpp"),
            include_dirs=[*pyb, os.path.join("csrc", "cpu"), os.path.join("csrc", "common")],
            depends=rel("csrc/cpu/*.h") + rel("csrc/common/*.h"),
            language="c++",
        )
    ]
    if NATIVE_OFF:
        NOT_REQUESTED["minigrad._cuda"] = "MINIGRAD_NATIVE=0"
    elif CUDA_ENV == "0":
        NOT_REQUESTED["minigrad._cuda"] = "MINIGRAD_CUDA=0"
    elif not CUDA_REQUIRED and find_nvcc() is None:
        NOT_REQUESTED["minigrad._cuda"] = "nvcc not found (set CUDA_HOME or put nvcc on PATH)"
    else:
        exts.append(
            Extension(
                "minigrad._cuda",
                sources=rel("csrc/cuda/*.cu") + rel("csrc/cuda/*.cpp"),
                include_dirs=[*pyb, os.path.join("csrc", "cuda"), os.path.join("csrc", "common")],
                depends=rel("csrc/cuda/*.cuh") + rel("csrc/cuda/*.h") + rel("csrc/common/*.h"),
                language="c++",
            )
        )
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
