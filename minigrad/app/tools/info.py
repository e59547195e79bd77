"""``minigrad info``: what this installation can run, and why not.

Reports the build (which native modules were compiled at install, with which flags, or why
not: the record ``minigrad/_build.json`` that setup.py writes), whether they import now, the
kernel variant each op uses by default and the ones available, the devices (CPU model, cores,
instruction-set features, OpenMP threads, CUDA GPUs), and the versions of Python, NumPy, CuPy
and PyTorch.  PyTorch is never imported (its version comes from the package metadata), so
the command is fast and loads only minigrad's own OpenMP runtime.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys

__all__ = ["collect", "format_text", "main", "build_parser"]

EXAMPLES = """\
examples:
  minigrad info                 # human-readable report
  minigrad info --json          # the same as JSON (for bug reports and scripts)
  python -m minigrad info       # the same, without the console script
  MINIGRAD_KERNELS=conv2d=numpy minigrad info   # shows the override in 'kernels'
"""

# Instruction-set extensions the C++ kernels' compiler can use (x86 and Arm names).
CPU_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_bf16",
    "amx_tile",
    "neon",
    "asimd",
    "sve",
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_info() -> dict:
    """CPU model, usable cores and instruction-set features (from /proc/cpuinfo on Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "machine": platform.machine(),
        "features": [f for f in CPU_FEATURES if f in flags],
    }


def collect() -> dict:
    """Everything ``minigrad info`` reports, as plain data."""
    import numpy as np

    import minigrad.kernels as kernels
    from minigrad.kernels import native

    info = native.backend_info()
    C = native.load_C()
    built_with = dict(C.build_info()) if C is not None else None
    devices = {"cpu": cpu_info(), "cuda": []}
    if info["cuda_devices"]:
        try:
            from minigrad import backend

            cp = backend.cupy_or_raise()
            for i in range(info["cuda_devices"]):
                props = cp.cuda.runtime.getDeviceProperties(i)
                name = props["name"]
                devices["cuda"].append(
                    {
                        "index": i,
                        "name": name.decode() if isinstance(name, bytes) else str(name),
                        "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                        "compute_capability": f"{props['major']}.{props['minor']}",
                    }
                )
        except Exception as e:  # no CuPy, or a driver problem: report, do not fail
            devices["cuda"].append({"error": f"{type(e).__name__}: {e}"})

    available = kernels.available()
    default = {}
    for op in kernels.OPS:
        entry = {}
        for dev in ("cpu", "cuda"):
            try:
                entry[dev] = kernels.current(op, dev)
            except (ValueError, RuntimeError):
                entry[dev] = None
        default[op] = entry
    return {
        "minigrad": _version("minigrad"),
        "location": os.path.dirname(os.path.dirname(os.path.abspath(kernels.__file__))),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "native": {
            "_C": info["_C"],
            "_C_error": info["_C_error"],
            "_C_built_with": built_with,
            "_cuda": info["_cuda"],
            "_cuda_error": info["_cuda_error"],
            "openmp_threads": info["openmp_threads"],
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "build": info.get("build"),
        "kernels": {
            "available": available,
            "default": default,
            "MINIGRAD_KERNELS": os.environ.get("MINIGRAD_KERNELS"),
        },
        "devices": devices,
        "versions": {
            "numpy": np.__version__,
            "cupy": _cupy_version(),
            "torch": _version("torch"),
            "tqdm": _version("tqdm"),
            "matplotlib": _version("matplotlib"),
            "pillow": _version("pillow"),
        },
    }


def _cupy_version() -> str | None:
    for dist in ("cupy", "cupy-cuda12x", "cupy-cuda11x", "cupy-cuda13x"):
        v = _version(dist)
        if v:
            return f"{v} ({dist})"
    return None


def _build_lines(build: dict | None) -> list[str]:
    if not build:
        return [
            "  none: installed before build records existed, or a source checkout that "
            "was never built; (re)install with `pip install -e .`"
        ]
    out = [
        f"  built {build.get('built_at')} with Python {build.get('python')}, pybind11 "
        f"{build.get('pybind11')}, {build.get('jobs')} parallel jobs"
    ]
    env = build.get("env") or {}
    if env:
        out.append("  environment: " + " ".join(f"{k}={v}" for k, v in sorted(env.items())))
    for name, ext in sorted((build.get("extensions") or {}).items()):
        status = ext.get("status")
        line = f"  {name}: {status}"
        if status in ("built", "cached"):
            secs = ext.get("seconds")
            line += f" ({ext.get('compiled', '?')} files compiled"
            line += f", {secs} s)" if secs is not None else ")"
        if ext.get("reason"):
            line += f": {ext['reason']}"
        out.append(line)
    return out


def format_text(data: dict) -> str:
    n = data["native"]
    cpu = data["devices"]["cpu"]
    lines = [
        f"minigrad {data['minigrad'] or '(not installed as a package)'} at {data['location']}",
        f"python {data['python']} on {data['platform']}",
        "",
        "native kernels:",
    ]
    exts = (data["build"] or {}).get("extensions") or {}

    def stale(name):  # a module left from an earlier build that the last install skipped
        ext = exts.get(f"minigrad.{name}") or {}
        if n[name] and ext.get("status") in ("skipped", "failed"):
            return (
                f"; left from an earlier build: the last install {ext['status']} it "
                f"({ext.get('reason')})"
            )
        return ""

    if n["_C"]:
        flags = (n["_C_built_with"] or {}).get("flags", "")
        lines.append(
            f"  minigrad._C     imports (C++ CPU kernels; OpenMP threads "
            f"{n['openmp_threads']}; flags {flags}{stale('_C')})"
        )
    else:
        lines.append(
            f"  minigrad._C     MISSING: {n['_C_error']} -> ops run on NumPy "
            "(slower); reinstall with `pip install -e .` and read its error"
        )
    if n["_cuda"]:
        lines.append(f"  minigrad._cuda  imports (CUDA kernels{stale('_cuda')})")
    else:
        lines.append(f"  minigrad._cuda  not available: {n['_cuda_error']}")
    lines += ["", "build record (minigrad/_build.json):", *_build_lines(data["build"])]
    lines += [
        "",
        "devices:",
        f"  cpu: {cpu['model']}, {cpu['usable_cores']} usable of {cpu['cores']} cores, "
        f"features {' '.join(cpu['features']) or '(none detected)'}",
    ]
    if n["OMP_NUM_THREADS"]:
        lines.append(f"  OMP_NUM_THREADS={n['OMP_NUM_THREADS']}")
    for gpu in data["devices"]["cuda"]:
        if "error" in gpu:
            lines.append(f"  cuda: {gpu['error']}")
        else:
            lines.append(
                f"  cuda:{gpu['index']}: {gpu['name']}, {gpu['memory_gib']} GiB, "
                f"compute capability {gpu['compute_capability']}"
            )
    if not data["devices"]["cuda"]:
        lines.append("  cuda: none (needs a CUDA GPU and CuPy: pip install -e '.[cuda]')")
    k = data["kernels"]
    lines += ["", "kernels (default cpu / cuda variant; available variants):"]
    for op, variants in k["available"].items():
        d = k["default"][op]
        lines.append(f"  {op:14s} {d['cpu'] or '-':8s} {d['cuda'] or '-':8s} {', '.join(variants)}")
    if k["MINIGRAD_KERNELS"]:
        lines.append(f"  MINIGRAD_KERNELS={k['MINIGRAD_KERNELS']}")
    lines += [
        "",
        "versions: " + ", ".join(f"{name} {v or '-'}" for name, v in data["versions"].items()),
    ]
    return "\n".join(lines)


def build_parser(prog: str = "minigrad info") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Report the build (which native kernels were compiled, or why "
        "not), devices, kernel variants, OpenMP threads, CPU features and library versions.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def main(argv: list[str] | None = None, prog: str = "minigrad info") -> int:
    args = build_parser(prog).parse_args(argv)
    data = collect()
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print(format_text(data))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
