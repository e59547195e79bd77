"""``minigrad conformance``: how exact is every op, on every kernel variant, in every dtype?

For each :class:`~minigrad.testing.opinfo.OpSpec` of ``all_specs()`` (the test suite's table:
no second copy), each CPU kernel variant built here, and float64 / float32 / float16:

* forward and gradient against **PyTorch in float64** (the oracle), given the same inputs
  rounded to the dtype under test, so the error measured is the op's own: max absolute error
  and max relative error (relative only where ``|oracle| > atol``, so values near zero do not
  blow it up); pass when ``|err| <= scale * (atol + rtol * |oracle|)`` with the tolerances of
  ``minigrad.testing.checks.TOL`` and ``scale = max(1, sqrt(n) / 4)`` for n-element inputs
  (reductions accumulate rounding), as the test suite does;
* in float64 only: first- and second-order finite differences (``gradcheck`` /
  ``gradgradcheck``), pass/fail;
* per op, whether PyTorch's own OpInfo samples (``op_db``) run against it in the tests
  (``tests/test_opdb_*.py``) and how many pass: ``passed/run``, ``-`` where none run
  (:mod:`minigrad.learn.opdb_coverage`; ``--no-opdb`` skips this sweep).

A dtype the op refuses on purpose is reported ``unsupported``, not failed: the op raised
``DTypeError`` or ``NotImplementedError`` whose message names that dtype. Any other exception
(an ``IndexError``, a bare ``NotImplementedError``, the oracle failing) is a ``FAIL``.

Usage::

    python -m minigrad.learn.conformance [--op NAME ...] [--dtype float32 ...] [--out DIR]
                                         [--no-fd] [--no-opdb] [--quiet]

``--op`` takes OpSpec names (``scaled_dot_product_attention``) or kernel-registry names
(``attention``, as in ``minigrad.kernels.available()`` and ``MINIGRAD_KERNELS``). Writes
``DIR/conformance.json`` and ``DIR/conformance.md`` (default DIR: ``runs/conformance``, never
the tracked ``docs/``; regenerate the committed report with ``--out docs``); exits 0 when
nothing failed, 1 when something did, 2 for bad arguments (unknown op names are listed with
the valid ones) or when PyTorch, the oracle, is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

DTYPES = ("float64", "float32", "float16")
DEFAULT_OUT = os.path.join("runs", "conformance")


def _kernel_names(specs) -> dict[str, list[str]]:
    """Kernel-registry names (``minigrad.kernels.available()``, ``MINIGRAD_KERNELS``) -> the
    spec names they cover (``attention`` -> ``scaled_dot_product_attention``)."""
    from minigrad import kernels

    names = set(kernels.available()) | {s.kernel for s in specs if s.kernel}
    return {
        k: [s.name for s in specs if s.kernel == k]
        or [s.name for s in specs if s.name in (k, f"nn.{k}")]
        for k in sorted(names)
    }


def _deliberate_refusal(e: BaseException, dtype: str) -> bool:
    """True for an op refusing ``dtype`` on purpose: DTypeError/NotImplementedError naming it."""
    from minigrad.autograd import DTypeError

    return isinstance(e, DTypeError | NotImplementedError) and dtype in str(e)


def _variants(spec, device: str = "cpu") -> list[str]:
    """Kernel variants that run this spec here on ``device`` ("cpu" or "cuda"); ``default``
    for ops without kernels."""
    if spec.kernel is None:
        return ["default"]
    from minigrad import kernels

    built = kernels.available().get(spec.kernel, [])
    # the device's variants in the registry's order
    return [v for v in kernels.VARIANTS[device] if v in built] or ["default"]


def _rounded(sample, dtype):
    """The sample with every float array rounded to ``dtype`` and back to float64, so the
    oracle sees exactly the inputs the op under test sees."""
    args = tuple(
        a.astype(dtype).astype(np.float64)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
        else a
        for a in sample.args
    )
    return dataclasses.replace(sample, args=args)


def _errors(actual, expected, atol):
    a = np.asarray(actual, np.float64)
    b = np.asarray(expected, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != oracle shape {b.shape}")
    if a.size == 0:
        return 0.0, 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isinf(a) & (a == b), 0.0, diff)
    abs_err = float(np.max(diff))
    big = np.abs(b) > atol
    rel_err = float(np.max(diff[big] / np.abs(b[big]))) if big.any() else 0.0
    return abs_err, rel_err


def _within(actual, expected, rtol, atol) -> bool:
    a = np.asarray(actual, np.float64)
    b = np.asarray(expected, np.float64)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


@contextlib.contextmanager
def _variant(spec, variant):
    if variant in ("default",) or spec.kernel is None:
        yield
        return
    from minigrad import kernels

    with kernels.use(spec.kernel, variant):
        yield


def check_dtype(spec, variant: str, dtype: str, device: str = "cpu") -> dict:
    """Forward/gradient errors of one (spec, variant, dtype) over all samples, vs torch fp64
    (minigrad runs on ``device``; the oracle is always PyTorch float64 on the CPU)."""
    from minigrad.testing import checks

    np_dtype = np.dtype(dtype)
    tol = checks.TOL[np_dtype]
    row = {
        "op": spec.name,
        "family": spec.family,
        "variant": variant,
        "dtype": dtype,
        "rtol": tol["rtol"],
        "atol": tol["atol"],
        "fwd_abs": 0.0,
        "fwd_rel": 0.0,
        "grad_abs": 0.0,
        "grad_rel": 0.0,
        "samples": 0,
        "status": "pass",
        "detail": "",
    }
    rng = np.random.default_rng(0)
    failures = []
    # ops whose result depends on the dtype itself (nan_to_num's default: the dtype's largest
    # finite value) are held to PyTorch in that dtype instead of float64
    oracle = np_dtype if spec.extra.get("oracle_in_dtype") else np.float64
    with _variant(spec, variant), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sample in spec.samples(rng):
            rs = _rounded(sample, np_dtype)
            what = "the oracle (torch float64)"
            try:
                ref_out, _ = checks.torch_forward_backward(spec, rs, oracle, None)
                vrng = np.random.default_rng(1)
                v = checks.upstream(vrng, ref_out.shape)
                if spec.differentiable:
                    v = v.astype(np_dtype).astype(np.float64)
                else:
                    v = None
                what = "minigrad"
                out, grads, _ = checks.mg_forward_backward(spec, rs, np_dtype, v, device=device)
                what = "the oracle (torch float64)"
                ref_out, ref_grads = checks.torch_forward_backward(spec, rs, oracle, v)
            except Exception as e:
                detail = f"{sample.name or 'sample'}: {type(e).__name__}: {e}"
                if what == "minigrad" and _deliberate_refusal(e, dtype):
                    row["status"] = "unsupported"  # the op refuses this dtype on purpose
                    row["detail"] = detail[:300]
                    return row
                failures.append(f"{detail} (raised by {what})"[:300])
                continue
            n = max(1, max((a.size for a in sample.args if isinstance(a, np.ndarray)), default=1))
            scale = max(1.0, math.sqrt(n) / 4)
            rtol, atol = tol["rtol"] * scale, tol["atol"] * scale
            row["samples"] += 1
            try:
                fa, fr = _errors(out, ref_out, tol["atol"])
            except AssertionError as e:
                failures.append(f"{sample.name} forward: {e}")
                continue
            row["fwd_abs"], row["fwd_rel"] = max(row["fwd_abs"], fa), max(row["fwd_rel"], fr)
            if not _within(out, ref_out, rtol, atol):
                failures.append(f"{sample.name} forward (abs {fa:.2e}, rel {fr:.2e})")
            for k, (g, rg) in enumerate(zip(grads, ref_grads)):
                if rg is None:
                    if g is not None and np.any(g):
                        failures.append(f"{sample.name} grad{k}: nonzero where oracle has none")
                    continue
                if g is None:
                    failures.append(f"{sample.name} grad{k}: missing")
                    continue
                try:
                    ga, gr = _errors(g, rg, tol["atol"])
                except AssertionError as e:
                    failures.append(f"{sample.name} grad{k}: {e}")
                    continue
                row["grad_abs"] = max(row["grad_abs"], ga)
                row["grad_rel"] = max(row["grad_rel"], gr)
                if not _within(g, rg, rtol, atol):
                    failures.append(f"{sample.name} grad{k} (abs {ga:.2e}, rel {gr:.2e})")
    if failures:
        row["status"] = "FAIL"
        row["detail"] = "; ".join(failures)[:500]
    return row


def check_finite_differences(spec, variant: str) -> tuple[str, str, str]:
    """(gradcheck, gradgradcheck, detail) in float64: "pass", "FAIL" or "n/a"."""
    from minigrad.testing import checks

    if not spec.differentiable or spec.extra.get("no_gradcheck"):
        return "n/a", "n/a", ""
    rng = np.random.default_rng(0)
    samples = spec.samples(rng)
    results = []
    detail = []
    for which, fn, wanted in (
        ("gradcheck", checks.check_gradcheck, True),
        ("gradgradcheck", checks.check_gradgradcheck, spec.gradgrad),
    ):
        if not wanted:
            results.append("n/a")
            continue
        ok = True
        with _variant(spec, variant), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for sample in samples:
                try:
                    if not fn(spec, sample):
                        raise AssertionError("returned False")
                except Exception as e:
                    ok = False
                    detail.append(
                        f"{which} {sample.name}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0][:150] if str(e) else ''}"
                    )
                    break
        results.append("pass" if ok else "FAIL")
    return results[0], results[1], "; ".join(detail)


def run(
    specs, dtypes=DTYPES, finite_differences=True, progress=None, device: str = "cpu"
) -> list[dict]:
    rows = []
    finite_differences = finite_differences and device == "cpu"  # gradcheck runs on the CPU
    for spec in specs:
        for variant in _variants(spec, device):
            fd = ("n/a", "n/a", "")
            if finite_differences and "float64" in dtypes:
                t0 = time.perf_counter()
                fd = check_finite_differences(spec, variant)
                fd_s = time.perf_counter() - t0
            for dtype in dtypes:
                t0 = time.perf_counter()
                row = check_dtype(spec, variant, dtype, device)
                row["device"] = device
                row["seconds"] = round(time.perf_counter() - t0, 3)
                if dtype == "float64" and finite_differences:
                    row["gradcheck"], row["gradgradcheck"] = fd[0], fd[1]
                    row["seconds"] = round(row["seconds"] + fd_s, 3)
                    if "FAIL" in fd[:2]:
                        row["status"] = "FAIL"
                        row["detail"] = "; ".join(x for x in (row["detail"], fd[2]) if x)
                else:
                    row["gradcheck"] = row["gradgradcheck"] = "-"
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


# ----------------------------------------------------------------------------- output
COLUMNS = [
    ("op", "op"),
    ("variant", "variant"),
    ("dtype", "dtype"),
    ("fwd_abs", "fwd abs err"),
    ("fwd_rel", "fwd rel err"),
    ("grad_abs", "grad abs err"),
    ("grad_rel", "grad rel err"),
    ("tol", "tolerance (rtol/atol)"),
    ("gradcheck", "gradcheck"),
    ("gradgradcheck", "gradgradcheck"),
    ("opdb", "op_db samples (pass/run)"),
    ("status", "result"),
]


def _cells(row) -> list[str]:
    out = []
    for key, _ in COLUMNS:
        if key == "tol":
            out.append(f"{row['rtol']:.0e}/{row['atol']:.0e}")
        elif key in ("fwd_abs", "fwd_rel", "grad_abs", "grad_rel"):
            out.append("-" if row["status"] == "unsupported" else f"{row[key]:.2e}")
        elif key == "opdb":
            out.append(row.get("opdb", "-"))
        else:
            out.append(str(row[key]))
    return out


def format_table(rows) -> str:
    header = [title for _, title in COLUMNS]
    body = [_cells(r) for r in rows]
    widths = [max(len(x[i]) for x in body + [header]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + body]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def summary(rows) -> dict:
    counts = {"pass": 0, "FAIL": 0, "unsupported": 0}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "rows": len(rows),
        "ops": len({r["op"] for r in rows}),
        **counts,
        "failed": sorted(
            {f"{r['op']}[{r['variant']},{r['dtype']}]" for r in rows if r["status"] == "FAIL"}
        ),
    }


def format_markdown(rows, meta) -> str:
    s = summary(rows)
    lines = [
        "# minigrad conformance report",
        "",
        f"Generated by `python -m minigrad.learn.conformance` ({meta['date']}, torch "
        f"{meta['torch']}, numpy {meta['numpy']}, {meta['machine']}).",
        "",
        f"**{s['ops']} ops, {s['rows']} (op, variant, dtype) rows: {s['pass']} pass, "
        f"{s['FAIL']} fail, {s['unsupported']} unsupported.**",
        "",
        "Oracle: PyTorch float64 on the same (rounded) inputs. Errors are maxima over the "
        "spec's samples; relative error only where |oracle| > atol. gradcheck / "
        "gradgradcheck: finite differences in float64. Tolerances: "
        "`minigrad.testing.checks.TOL`, scaled by max(1, sqrt(n)/4) for n-element inputs.",
        "",
    ]
    if s["failed"]:
        lines += ["Failing: " + ", ".join(f"`{f}`" for f in s["failed"]), ""]
    lines += _opdb_summary(rows, meta.get("opdb"))
    header = [title for _, title in COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        lines.append("| " + " | ".join(_cells(r)) + " |")
    lines += _opdb_unmapped(meta.get("opdb"))
    notes = [r for r in rows if r["detail"]]
    if notes:
        lines += ["", "## Details", ""]
        for r in notes:
            detail = r["detail"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"- `{r['op']}` {r['variant']} {r['dtype']} ({r['status']}): {detail}")
    return "\n".join(lines) + "\n"


def _opdb_summary(rows, opdb) -> list[str]:
    if opdb is None:
        return []
    if opdb["reason"]:
        return [f"op_db column: not run ({opdb['reason']}).", ""]
    ops = {r["op"]: r.get("opdb", "-") for r in rows}
    covered = [op for op, c in ops.items() if c != "-"]
    total = opdb["totals"]
    return [
        f"op_db samples (pass/run): PyTorch's OpInfo samples (`op_db`, float64) run "
        f"against minigrad in `tests/test_opdb_*.py`, outputs and first-input gradients "
        f"compared, through the tests' own harness; an op's cell sums its op_db entries "
        f"(ops that share an entry, such as `sort` and `sort_indices`, show the same "
        f"samples); `-` where the tests run none. **{len(covered)} of {len(ops)} ops "
        f"here run them; the tests run {len(opdb['entries'])} op_db entries, "
        f"{total['passed']}/{total['run']} samples pass** (the tests require >= 99% per "
        f"entry).",
        "",
    ]


def _opdb_unmapped(opdb) -> list[str]:
    if not opdb or opdb["reason"]:
        return []
    extra = [e for e in opdb["entries"] if not e["specs"]]
    if not extra:
        return []
    lines = [
        "",
        "## op_db entries run in the tests without a row above",
        "",
        "| op_db entry | test file | samples (pass/run) |",
        "|---|---|---|",
    ]
    for e in extra:
        name = e["name"] + (f".{e['variant']}" if e["variant"] else "")
        lines.append(f"| {name} | {e['file']} | {e['passed']}/{e['run']} |")
    return lines


def add_opdb(rows, specs, progress=None) -> dict:
    """Fill each row's "opdb" cell; returns the report's op_db section (all listed entries
    when every spec is reported, else only the entries of ``specs``)."""
    from minigrad.learn import opdb_coverage as oc

    listed = oc.listed_entries()
    mapped = {k: [s.name for s in specs if k in oc.entries_for(s.name, listed)] for k in listed}
    wanted = (
        listed
        if len(specs) == len(_all_spec_names())
        else {k: f for k, f in listed.items() if mapped[k]}
    )
    results, reason = oc.run_entries(wanted, progress=progress)
    for r in rows:
        r["opdb"] = oc.cell(r["op"], results, listed) if not reason else "-"
    entries = [
        {
            "name": k[0],
            "variant": k[1],
            "file": v["file"],
            "passed": v["passed"],
            "run": v["run"],
            "specs": mapped[k],
        }
        for k, v in sorted(results.items())
    ]
    return {
        "reason": reason,
        "entries": entries,
        "totals": {
            "passed": sum(e["passed"] for e in entries),
            "run": sum(e["run"] for e in entries),
        },
    }


def _all_spec_names() -> list[str]:
    from minigrad.testing.opinfo import all_specs

    return [s.name for s in all_specs()]


def _meta() -> dict:
    import torch

    return {
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": f"{platform.machine()} {platform.system()}",
        "python": platform.python_version(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="minigrad conformance",
        description="Check every op against PyTorch float64 and finite differences.",
    )
    parser.add_argument(
        "--op",
        action="append",
        default=[],
        metavar="NAME",
        help="only this op (repeatable, or comma-separated)",
    )
    parser.add_argument(
        "--dtype", action="append", default=[], choices=DTYPES, help="only this dtype (repeatable)"
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help="write DIR/conformance.json and DIR/conformance.md (default: "
        f"{DEFAULT_OUT}; --out docs regenerates the committed report)",
    )
    parser.add_argument(
        "--no-fd", action="store_true", help="skip the finite-difference gradcheck/gradgradcheck"
    )
    parser.add_argument(
        "--no-opdb",
        action="store_true",
        help="skip the op_db column (PyTorch's OpInfo samples run through "
        "the tests' harness, tests/test_opdb_*.py)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="run minigrad on this device and its kernel variants (cuda: "
        "cuda, cupy; needs CuPy and a GPU; finite differences stay on the CPU)",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import minigrad

        if not minigrad.cuda_available():
            print(
                "minigrad: error: --device cuda needs CuPy and a CUDA GPU (none found)",
                file=sys.stderr,
            )
            return 2

    from minigrad.testing.opinfo import all_specs

    specs = all_specs()
    names = [n.strip() for entry in args.op for n in entry.split(",") if n.strip()]
    if names:
        valid = [s.name for s in specs]
        kernels = _kernel_names(specs)
        unknown = [n for n in names if n not in valid and not kernels.get(n)]
        if unknown:
            print(
                f"minigrad conformance: unknown op(s): {', '.join(unknown)}\n"
                f"valid ops: {', '.join(valid)}\nkernel names: "
                f"{', '.join(k for k, v in kernels.items() if v)}",
                file=sys.stderr,
            )
            return 2
        wanted = {n for n in names if n in valid}  # a spec name means that spec only
        wanted |= {op for n in names if n not in valid for op in kernels[n]}
        specs = [s for s in specs if s.name in wanted]
    dtypes = tuple(args.dtype) or DTYPES
    try:
        import torch  # noqa: F401
    except ImportError as e:
        print(
            f"minigrad: error: the conformance suite compares every op with PyTorch, which "
            f"is not importable here ({e}): install it with `pip install torch`",
            file=sys.stderr,
        )
        return 2

    def progress(row):
        if not args.quiet:
            print(
                f"  {row['op']:<20} {row['variant']:<8} {row['dtype']:<8} {row['status']}",
                file=sys.stderr,
                flush=True,
            )

    rows = run(
        specs, dtypes, finite_differences=not args.no_fd, progress=progress, device=args.device
    )
    meta = {**_meta(), "device": args.device}
    if not args.no_opdb:

        def opdb_progress(name, variant, row):
            if not args.quiet:
                print(
                    f"  op_db {name + ('.' + variant if variant else ''):<40} "
                    f"{row['passed']}/{row['run']}",
                    file=sys.stderr,
                    flush=True,
                )

        meta["opdb"] = add_opdb(rows, specs, opdb_progress)
    s = summary(rows)
    if not args.quiet:
        print(format_table(rows))
    print(
        f"{s['ops']} ops, {s['rows']} rows: {s['pass']} pass, {s['FAIL']} fail, "
        f"{s['unsupported']} unsupported"
        + (f" (failing: {', '.join(s['failed'])})" if s["failed"] else "")
    )
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "conformance.json")
    md_path = os.path.join(args.out, "conformance.md")
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "summary": s, "rows": rows}, f, indent=1)
    with open(md_path, "w") as f:
        f.write(format_markdown(rows, meta))
    print(f"wrote {json_path} and {md_path}")
    return 1 if s["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
