"""Mutation testing of minigrad's numerical core (not collected by pytest; not run in CI).

    python tests/mutation.py                      # sampled run over every module below
    python tests/mutation.py --module minigrad/kernels/reference_optim.py --limit 40
    python tests/mutation.py --list               # print the mutants, run nothing
    python tests/mutation.py --ids ID [ID ...]    # re-run chosen mutants (e.g. old survivors)

Each mutant changes ONE expression of a module: an arithmetic/comparison/boolean operator
swapped, a numeric or boolean constant changed, a unary minus/not dropped, or two adjacent
positional arguments of a call swapped. Sites inside ``raise`` statements, f-strings,
docstrings and warnings are skipped (only messages would change). Mutants are applied one at a
time to a TEMPORARY COPY of the repository (minigrad/ with its built ``_C``/``_cuda`` extensions,
tests/, pyproject.toml); the working tree is never touched. For each mutant the module's test
commands (``TESTS`` below, most targeted first) run with ``pytest -x`` until one fails (killed)
or all pass (survived); a run past ``--timeout`` counts as killed-by-timeout only when the
unmutated baseline of the same commands finished in well under the limit.

The report (``--out``, default benchmarks/results/mutation-report.{json,md}) lists every
mutant with its status and the first failing test; ``--explain FILE`` (JSON: {mutant id:
one-line reason}) attaches an equivalence argument to survivors.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODULES = [
    "minigrad/ops/elementwise.py",
    "minigrad/ops/reduce.py",
    "minigrad/ops/shape.py",
    "minigrad/ops/indexing.py",
    "minigrad/ops/matmul.py",
    "minigrad/ops/conv.py",
    "minigrad/ops/pool.py",
    "minigrad/ops/loss.py",
    "minigrad/ops/rnn.py",
    "minigrad/ops/attention.py",
    "minigrad/kernels/reference.py",
    "minigrad/kernels/cpp.py",
    "minigrad/kernels/cuda.py",
    "minigrad/kernels/reference_optim.py",
    "minigrad/kernels/reference_loss.py",
    "minigrad/learn/gradcheck.py",
    "minigrad/nn/functional.py",
    "minigrad/nn/_loss_functional.py",
]

_OPS_QUICK = 'tests/test_ops.py -k "(test_matches_torch and f64) or test_bad_input_raises"'
# module -> pytest argument strings, most targeted (fastest to fail) first
TESTS = {
    "minigrad/ops/elementwise.py": [_OPS_QUICK],
    "minigrad/ops/reduce.py": [_OPS_QUICK],
    "minigrad/ops/shape.py": [_OPS_QUICK],
    "minigrad/ops/indexing.py": [_OPS_QUICK],
    "minigrad/ops/matmul.py": [_OPS_QUICK],
    "minigrad/ops/conv.py": ["tests/test_conv_pool.py", "tests/test_ops.py -k conv"],
    "minigrad/ops/pool.py": ["tests/test_conv_pool.py", "tests/test_ops.py -k pool"],
    "minigrad/ops/loss.py": [
        "tests/test_loss_cross_entropy.py",
        'tests/test_ops.py -k "loss or nll or entropy"',
    ],
    "minigrad/ops/rnn.py": ["tests/test_rnn.py"],
    "minigrad/ops/attention.py": ["tests/test_attention.py", "tests/test_attention_cpp_kernel.py"],
    "minigrad/kernels/reference_optim.py": ["tests/test_optim.py", "tests/test_optim_formula.py"],
    "minigrad/learn/gradcheck.py": [
        "tests/test_gradcheck.py",
        "tests/test_autograd.py -k gradcheck",
    ],
    "minigrad/nn/functional.py": ["tests/test_nn.py", _OPS_QUICK],
    "minigrad/nn/_loss_functional.py": [
        "tests/test_loss_cross_entropy.py",
        'tests/test_ops.py -k "loss or nll or entropy"',
    ],
}
# kernel modules: the tests follow the op named by the enclosing function
KERNEL_TESTS = {
    "bias_relu": ["tests/test_elementwise_bias_relu.py"],
    "relu": ["tests/test_kernels.py -k relu"],
    "conv": ['tests/test_kernels.py -k "conv or col"', "tests/test_conv_pool.py"],
    "col": ['tests/test_kernels.py -k "conv or col"', "tests/test_conv_pool.py"],
    "pool": ["tests/test_kernels.py -k pool", "tests/test_conv_pool.py"],
    "_windows": ['tests/test_kernels.py -k "conv or pool or col"', "tests/test_conv_pool.py"],
    "_avg": ["tests/test_kernels.py -k pool", "tests/test_conv_pool.py"],
    "lstm": ["tests/test_kernels.py -k lstm", "tests/test_rnn.py"],
    "attention": ["tests/test_attention_cpp_kernel.py", "tests/test_attention.py"],
    "_finite": ["tests/test_attention_cpp_kernel.py", "tests/test_attention.py"],
    "_neginf": ["tests/test_attention_cpp_kernel.py", "tests/test_attention.py"],
    "masked": ["tests/test_attention_cpp_kernel.py", "tests/test_attention.py"],
    "sgd": ["tests/test_optim.py", "tests/test_kernels.py -k sgd"],
    "adam": ["tests/test_optim.py", "tests/test_kernels.py -k adam"],
    "cross_entropy": ["tests/test_loss_cross_entropy.py"],
    "_ce": ["tests/test_loss_cross_entropy.py"],
}
KERNEL_MODULES = {
    "minigrad/kernels/reference.py": [],
    "minigrad/kernels/reference_loss.py": [],
    "minigrad/kernels/cpp.py": [],
    "minigrad/kernels/cuda.py": ["tests/test_cuda_fake.py"],
}
KERNEL_FALLBACK = ["tests/test_kernels.py"]

BINOP_SWAP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.Pow: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.MatMult: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
CMP_SWAP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass
class Mutant:
    id: str
    module: str
    line: int
    function: str
    kind: str
    before: str
    after: str
    tests: list = field(default_factory=list)
    status: str = "pending"  # killed | survived | timeout | error | untested
    killed_by: str = ""
    killed_arg: str = ""
    seconds: float = 0.0
    note: str = ""


# ----------------------------------------------------------------------------- finding sites
def _skip_ranges(tree) -> list[tuple[int, int, int, int]]:
    """Source spans whose mutation only changes messages: raise statements, f-strings,
    docstrings, warnings.warn(...) calls."""
    spans = []
    for node in ast.walk(tree):
        skip = isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert))
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            skip = name in ("warn", "warn_missing_C", "_with_op_context")
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            skip = True
        if skip:
            spans.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset))
    return spans


def _inside(node, spans) -> bool:
    start = (node.lineno, node.col_offset)
    end = (node.end_lineno, node.end_col_offset)
    return any((a, b) <= start and end <= (c, d) for a, b, c, d in spans)


def _functions(tree) -> dict[int, str]:
    """line -> name of the innermost enclosing function (for reports and kernel test maps)."""
    owner = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for line in range(node.lineno, node.end_lineno + 1):
                if line not in owner or owner[line][0] < node.lineno:
                    owner[line] = (node.lineno, node.name)
    return {line: name for line, (_, name) in owner.items()}


def _top_functions(tree) -> dict[int, str]:
    owner = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for line in range(node.lineno, node.end_lineno + 1):
                owner[line] = node.name
    return owner


def _mutations(node):
    """(kind, replacement node) pairs for one AST node."""
    import copy

    out = []
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
        new = copy.deepcopy(node)
        new.op = BINOP_SWAP[type(node.op)]()
        out.append(("binop", new))
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAP:
        new = copy.deepcopy(node)
        new.op = BINOP_SWAP[type(node.op)]()
        out.append(("augassign", new))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAP:
                new = copy.deepcopy(node)
                new.ops[i] = CMP_SWAP[type(op)]()
                out.append(("compare", new))
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(("boolop", new))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        if not (isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)):
            out.append(("unary-drop", copy.deepcopy(node.operand)))
    elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)):
        v = node.value
        if isinstance(v, bool):
            out.append(("constant", ast.Constant(not v)))
        elif isinstance(v, int):
            out.append(("constant", ast.Constant(v + 1 if v != 1 else 0)))
        elif isinstance(v, float):
            out.append(("constant", ast.Constant(v * 2 if v not in (0.0, 1.0) else 1.0 - v)))
    elif isinstance(node, ast.Call):
        args = node.args
        for i in range(len(args) - 1):
            a, b = args[i], args[i + 1]
            if isinstance(a, ast.Starred) or isinstance(b, ast.Starred):
                continue
            if ast.dump(a) == ast.dump(b):
                continue
            new = copy.deepcopy(node)
            new.args[i], new.args[i + 1] = new.args[i + 1], new.args[i]
            out.append((f"swap-args{i}", new))
    return out


def find_mutants(module: str, root: str = REPO) -> list[tuple[Mutant, tuple]]:
    src = open(os.path.join(root, module)).read()
    tree = ast.parse(src)
    spans = _skip_ranges(tree)
    inner, top = _functions(tree), _top_functions(tree)
    lines = src.splitlines()
    found, seen = [], {}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or _inside(node, spans):
            continue
        if node.lineno not in top:  # module level: tables, __all__, ENTRY_POINTS, imports
            continue
        for kind, new in _mutations(node):
            before = ast.get_source_segment(src, node) or ""
            after = ast.unparse(new)
            if after == before:
                continue
            mid = f"{module}:{node.lineno}:{node.col_offset}:{kind}"
            seen[mid] = seen.get(mid, 0) + 1
            if seen[mid] > 1:  # nested nodes starting at the same place (a * b * c): ~2, ~3
                mid += f"~{seen[mid]}"
            span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
            m = Mutant(
                mid,
                module,
                node.lineno,
                inner.get(node.lineno, "<module>"),
                kind,
                " ".join(before.split())[:120],
                after[:120],
            )
            m.tests = tests_for(module, top.get(node.lineno, ""))
            found.append((m, (span, after, isinstance(node, ast.AugAssign), lines)))
    return found


_OPS_MODULES = {
    f"minigrad/ops/{n}.py"
    for n in ("elementwise", "reduce", "shape", "indexing", "matmul", "__init__")
}


def tests_for(module: str, top_function: str) -> list[str]:
    """The pytest argument strings for a mutant; an entry starting with "?" runs only when
    every earlier one selected no test (a -k filter that matched nothing). The tests written
    for earlier survivors (tests/test_mutants.py) always run too."""
    return _tests_for(module, top_function) + ["tests/test_mutants.py"]


def _tests_for(module: str, top_function: str) -> list[str]:
    if module in _OPS_MODULES and top_function[:1].isupper():  # a Function class: its op
        name = top_function.lower()
        return [
            f'tests/test_ops.py -k "((test_matches_torch and f64) or test_bad_input_raises)'
            f' and {name}"',
            "?" + _OPS_QUICK,
            f"tests/test_nan_propagation.py -k {name}",
        ]
    if module in KERNEL_MODULES:
        tests = list(KERNEL_MODULES[module])
        for key, files in KERNEL_TESTS.items():
            if key in top_function:
                tests += [f for f in files if f not in tests]
                break
        return tests or list(KERNEL_FALLBACK)
    return list(TESTS[module])


def apply(src_lines: list[str], span, replacement: str, statement: bool) -> str:
    """Replace the source span with ``replacement`` (parenthesised expressions keep the line
    count by padding newlines inside the parentheses)."""
    l0, c0, l1, c1 = span
    head = src_lines[l0 - 1][:c0]
    tail = src_lines[l1 - 1][c1:]
    if statement:  # a whole (augmented assignment) statement: blank lines keep the count
        text = replacement + "\n" * (l1 - l0)
    else:
        text = "(" + replacement + "\n" * (l1 - l0) + ")"
    new = src_lines[: l0 - 1] + [head + text + tail] + src_lines[l1:]
    return "\n".join(new) + "\n"


# ----------------------------------------------------------------------------- running
def make_copy(from_worktree: bool = False) -> str:
    """A snapshot to mutate: the committed tree (``git archive HEAD``: others may be half-way
    through an edit in the working tree) plus the built extensions from the working tree;
    with ``from_worktree`` the working tree's files as they are."""
    root = tempfile.mkdtemp(prefix="minigrad-mutation-")
    names = ["minigrad", "tests", "pyproject.toml", "setup.py"]
    if from_worktree:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
        for name in names:
            src = os.path.join(REPO, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(root, name), ignore=ignore)
            elif os.path.exists(src):
                shutil.copy2(src, root)
    else:
        archive = subprocess.run(
            ["git", "archive", "HEAD", *names], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "xf", "-", "-C", root], input=archive, check=True)
        pkg = os.path.join(REPO, "minigrad")
        for name in os.listdir(pkg):  # the built (untracked) extensions and build record
            if name.endswith((".so", ".pyd")) or name == "_build.json":
                shutil.copy2(os.path.join(pkg, name), os.path.join(root, "minigrad", name))
    return root


def env_for(root: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("CI", None)
    return env


def check_copy_imports_itself(root: str) -> None:
    code = "import minigrad, minigrad._C as c; print(minigrad.__file__); print(c.__file__)"
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    paths = r.stdout.split()
    if r.returncode != 0 or len(paths) != 2 or not all(p.startswith(root) for p in paths):
        raise SystemExit(
            f"the copy in {root} does not import its own minigrad/_C: {r.stdout}{r.stderr}"
        )


def run_pytest(root: str, arg: str, timeout: float) -> tuple[str, str, float]:
    """('pass' | 'fail' | 'timeout', first failing test id, seconds)."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-W",
        "ignore::DeprecationWarning",
        *shlex.split(arg),
    ]
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            cmd, cwd=root, env=env_for(root), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", "", time.monotonic() - t0
    dt = time.monotonic() - t0
    if r.returncode in (0, 5):  # 5: nothing collected after -k
        return ("pass" if r.returncode == 0 else "empty"), "", dt
    failed = [
        ln.split(" ", 1)[1].split(" - ")[0]
        for ln in r.stdout.splitlines()
        if ln.startswith(("FAILED ", "ERROR "))
    ]
    last = (r.stdout.strip().splitlines() or [f"exit {r.returncode}"])[-1]
    return "fail", failed[0] if failed else last, dt


_FORK = False  # set by main(): run pytest in a forked child of a process that has imported
# torch, numpy and pytest once (saves several seconds of start-up per run); minigrad itself
# is never imported in the parent, so each child imports the (mutated) copy afresh.


_CHILD = 0  # the forked pytest process group running now (killed on SIGTERM)


def _terminate(signum, frame):
    if _CHILD:
        try:
            os.killpg(_CHILD, 9)
        except ProcessLookupError:
            pass
    raise KeyboardInterrupt  # runs main()'s cleanup: the copy is removed


def _preload() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import torch  # noqa: F401

    assert "minigrad" not in sys.modules


def run_pytest_forked(root: str, arg: str, timeout: float) -> tuple[str, str, float]:
    log = os.path.join(root, ".mutation-pytest.log")
    args = [
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-W",
        "ignore::DeprecationWarning",
        *shlex.split(arg),
    ]
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: own process group (so a timeout kills its subprocesses too)
        code = 3
        try:
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(root)
            os.environ.update(env_for(root))
            sys.path.insert(0, root)
            import pytest

            code = int(pytest.main(args))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    global _CHILD
    _CHILD = pid
    status = None
    while time.monotonic() - t0 < timeout:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        return "timeout", "", time.monotonic() - t0
    dt = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code in (0, 5):  # 5: nothing collected after -k
        return ("pass" if code == 0 else "empty"), "", dt
    out = open(log, errors="replace").read()
    failed = [
        ln.split(" ", 1)[1].split(" - ")[0]
        for ln in out.splitlines()
        if ln.startswith(("FAILED ", "ERROR "))
    ]
    last = (out.strip().splitlines() or [f"exit {code}"])[-1]
    return "fail", failed[0] if failed else last, dt


def runner(root: str, arg: str, timeout: float) -> tuple[str, str, float]:
    return (run_pytest_forked if _FORK else run_pytest)(root, arg, timeout)


def run_mutant(root: str, m: Mutant, info, timeout: float) -> None:
    span, after, statement, lines = info
    path = os.path.join(root, m.module)
    original = "\n".join(lines) + "\n"
    mutated = apply(lines, span, after, statement)
    try:
        compile(mutated, m.module, "exec")
    except SyntaxError as e:
        m.status, m.note = "error", f"mutant does not compile: {e}"
        return
    with open(path, "w") as f:
        f.write(mutated)
    t0 = time.monotonic()
    try:
        ran = False
        for arg in m.tests:
            if arg.startswith("?"):
                if ran:
                    continue
                arg = arg[1:]
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                m.status = "timeout"
                return
            result, test, _ = runner(root, arg, left)
            if result == "fail":
                m.status, m.killed_by, m.killed_arg = "killed", test, arg
                return
            if result == "timeout":
                m.status, m.note = "timeout", f"ran past {timeout:.0f} s in {arg}"
                return
            ran = ran or result == "pass"
        m.status = "survived" if ran else "untested"
    finally:
        m.seconds = round(time.monotonic() - t0, 1)
        with open(path, "w") as f:
            f.write(original)


# ----------------------------------------------------------------------------- report
def summarize(mutants: list[Mutant]) -> dict:
    per = {}
    for m in mutants:
        row = per.setdefault(
            m.module,
            {"killed": 0, "survived": 0, "timeout": 0, "error": 0, "untested": 0, "pending": 0},
        )
        row[m.status] += 1
    return per


def _merge_into(out, m: Mutant) -> None:
    """Replace mutant ``m.id`` in the report at ``out`` (a re-run after adding tests)."""
    with open(out + ".json") as f:
        data = json.load(f)
    old = [
        Mutant(**{k: v for k, v in d.items() if k in Mutant.__dataclass_fields__})
        for d in data["mutants"]
    ]
    m.note = m.note or f"re-run {time.strftime('%H:%M', time.gmtime())}"
    merged = [m if o.id == m.id else o for o in old]
    if m.id not in {o.id for o in old}:
        merged.append(m)
    data["meta"].setdefault("reruns", []).append(m.id)
    write_report(merged, out, data["meta"])


def combine(paths, out, explain_path=None) -> int:
    explain = json.load(open(explain_path)) if explain_path else {}
    mutants, metas, reruns = {}, [], []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        metas.append(data["meta"])
        if "--ids" in data["meta"]["command"]:  # a re-run of earlier survivors
            reruns += [d["id"] for d in data["mutants"]]
        reruns += data["meta"].get("reruns", [])
        for d in data["mutants"]:
            m = Mutant(**{k: v for k, v in d.items() if k in Mutant.__dataclass_fields__})
            if m.status == "pending" and m.id in mutants:
                continue  # a run stopped early: keep the other run's result
            mutants[m.id] = m
    for m in mutants.values():
        if m.status == "survived" and m.id in explain:
            m.note = explain[m.id]
    ran = [m for m in mutants.values() if m.status != "pending"]
    meta = {
        "command": " ; ".join(mm["command"] for mm in metas),
        "sites": max(mm["sites"] for mm in metas),
        "seed": metas[0]["seed"],
        "date": metas[-1]["date"],
        "source": "; ".join(
            f"run {i + 1}: "
            + ("the working tree" if "--from-worktree" in mm["command"] else "a HEAD snapshot")
            for i, mm in enumerate(metas)
        ),
        "not_run": len(mutants) - len(ran),
        "reruns": reruns,
    }
    write_report(ran, out, meta)
    return 0


def write_report(mutants, out, meta):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    per = summarize(mutants)
    with open(out + ".json", "w") as f:
        json.dump(
            {"meta": meta, "summary": per, "mutants": [asdict(m) for m in mutants]}, f, indent=1
        )
    total = {k: sum(r[k] for r in per.values()) for k in ("killed", "survived", "timeout", "error")}
    commands = meta["command"].split(" ; ")
    lines = [
        "# Mutation testing report",
        "",
        "Commands (in order; later runs replace earlier results of the same mutant):"
        if len(commands) > 1
        else "Command:",
        "",
        *[f"- `{c}`" for c in commands],
        "",
        f"Ran {len(mutants)} of "
        f"{meta['sites']} mutants (seed {meta['seed']}); {meta['date']}; mutated: "
        f"{meta.get('source', '')}."
        + (
            f" {meta['not_run']} sampled mutants were not run (time)."
            if meta.get("not_run")
            else ""
        ),
        "",
        "| module | killed | survived | timeout | not compiled |",
        "|---|---:|---:|---:|---:|",
    ]
    for mod, r in sorted(per.items()):
        if r["pending"] == sum(r.values()):
            continue
        lines.append(f"| {mod} | {r['killed']} | {r['survived']} | {r['timeout']} | {r['error']} |")
    lines.append(
        f"| **total** | {total['killed']} | {total['survived']} | {total['timeout']}"
        f" | {total['error']} |"
    )
    surv = [m for m in mutants if m.status == "survived"]
    if surv:
        lines += [
            "",
            "## Survivors",
            "",
            "| mutant | change | why it survives / test that now kills it |",
            "|---|---|---|",
        ]
        for m in surv:
            change = f"`{m.before}` → `{m.after}`".replace("|", "\\|")
            lines.append(
                f"| {m.module}:{m.line} ({m.function}) | {change} | "
                f"{m.note.replace('|', '/') or 'UNEXPLAINED'} |"
            )
    done = [m for m in mutants if m.status in ("killed", "timeout", "error")]
    if done:
        lines += [
            "",
            "## Killed, timed out, not compiled",
            "",
            "| mutant | change | result | first failing test |",
            "|---|---|---|---|",
        ]
        for m in done:
            change = f"`{m.before}` → `{m.after}`".replace("|", "\\|")
            lines.append(
                f"| {m.module}:{m.line} ({m.function}) | {change} | {m.status} | "
                f"{(m.killed_by or m.note).replace('|', '/')} |"
            )
    reruns = [m for m in mutants if m.id in set(meta.get("reruns", ())) and m.status != "survived"]
    if reruns:
        lines += [
            "",
            "## Survivors of the first pass, re-run after adding tests",
            "",
            "| mutant | change | now | killed by |",
            "|---|---|---|---|",
        ]
        for m in reruns:
            change = f"`{m.before}` → `{m.after}`".replace("|", "\\|")
            lines.append(
                f"| {m.module}:{m.line} ({m.function}) | {change} | {m.status} | "
                f"{m.killed_by.replace('|', '/')} |"
            )
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help="module path(s) to mutate (repeatable)")
    ap.add_argument("--limit", type=int, default=300, help="mutants to sample in total")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-per-module", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    ap.add_argument("--ids", nargs="*", help="run exactly these mutant ids")
    ap.add_argument("--list", action="store_true", help="list the sampled mutants and exit")
    ap.add_argument(
        "--from-worktree",
        action="store_true",
        help="mutate a copy of the working tree instead of the last commit",
    )
    ap.add_argument(
        "--no-fork",
        action="store_true",
        help="start a fresh interpreter per pytest run (slower, fully isolated)",
    )
    ap.add_argument("--explain", help="JSON {mutant id: reason} attached to survivors")
    ap.add_argument(
        "--update",
        action="store_true",
        help="with --ids: replace those mutants in the existing --out report",
    )
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks/results/mutation-report"))
    ap.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="merge finished reports (runs over different modules) into --out; "
        "with --explain, attach the reasons to survivors",
    )
    args = ap.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out, args.explain)

    modules = args.module or MODULES
    for mod in modules:
        if mod not in TESTS and mod not in KERNEL_MODULES:
            raise SystemExit(f"no test map for {mod}; known: {MODULES}")
    root = make_copy(args.from_worktree)
    try:
        return _run(args, argv, modules, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(args, argv, modules, root) -> int:
    found = {mod: find_mutants(mod, root) for mod in modules}
    sites = sum(len(v) for v in found.values())
    if args.ids:
        wanted = set(args.ids)
        chosen = [x for v in found.values() for x in v if x[0].id in wanted]
        missing = wanted - {m.id for m, _ in chosen}
        if missing:
            raise SystemExit(f"unknown mutant ids: {sorted(missing)}")
    else:  # the same share of every module's sites, at least --min-per-module from each
        rng = random.Random(args.seed)
        share = min(1.0, args.limit / max(sites, 1))
        chosen = []
        for mod in modules:
            items = found[mod]
            k = min(len(items), max(args.min_per_module, round(share * len(items))))
            chosen += rng.sample(items, k)
    if args.list:
        for m, _ in chosen:
            print(f"{m.id}\t{m.before!r} -> {m.after!r}\t{m.tests}")
        print(f"{len(chosen)} of {sites} mutants", file=sys.stderr)
        return 0
    explain = json.load(open(args.explain)) if args.explain else {}
    global _FORK
    _FORK = not args.no_fork and hasattr(os, "fork")
    if _FORK:
        _preload()
    signal.signal(signal.SIGTERM, _terminate)
    check_copy_imports_itself(root)
    mutants = [m for m, _ in chosen]
    meta = {
        "command": " ".join(["python tests/mutation.py", *(argv or sys.argv[1:])]),
        "sites": sites,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    baseline = meta["baseline"] = {}

    def passes_unmutated(arg: str) -> bool:
        """Run ``arg`` on the unmutated copy once (only for commands that killed a mutant:
        a command failing without any mutation kills nothing)."""
        if arg not in baseline:
            result, test, dt = runner(root, arg, args.timeout * 2)
            baseline[arg] = [result, test, round(dt, 1)]
            print(f"baseline {arg}: {result} {test} ({dt:.0f} s)", flush=True)
        return baseline[arg][0] == "pass"

    for n, (m, info) in enumerate(chosen, 1):
        run_mutant(root, m, info, args.timeout)
        while m.status == "killed" and not passes_unmutated(m.killed_arg):
            bad = m.killed_arg
            failing = baseline[bad][1]
            if "::" in failing and bad.count("--deselect") < 5:
                fixed = f"{bad} --deselect {shlex.quote(failing)}"  # fails unmutated
            else:
                fixed = None  # fails as a whole (collection error): drop it
            print(
                f"WARNING: `{bad}` fails unmutated ({failing}): "
                f"{'deselected' if fixed else 'dropped'}",
                flush=True,
            )
            for other in mutants:
                other.tests = [(fixed if a == bad else a) for a in other.tests if a != bad or fixed]
            m.status, m.killed_by, m.killed_arg = "pending", "", ""
            run_mutant(root, m, info, args.timeout)
        if m.status == "survived" and m.id in explain:
            m.note = explain[m.id]
        print(
            f"[{n}/{len(chosen)}] {m.status:8s} {m.id}  {m.before!r} -> {m.after!r}  "
            f"{m.killed_by} ({m.seconds} s)",
            flush=True,
        )
        if args.update:
            _merge_into(args.out, m)
        else:
            write_report(mutants, args.out, meta)
    per = summarize(mutants)
    print(json.dumps(per, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
