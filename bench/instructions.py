"""Instructions executed (callgrind): where one CPython build does more work than another.

    python -m bench.instructions --base ROOTFS.tar --interp ours=RUNTIME.tar \\
        --interp NAME=RUNTIME.tar --debian --out RESULT.json [--record RESULTS.json]

The interpreters in one root filesystem, as bench.interpreters sets it up (Debian's
``python3.13`` with ``--debian``, ours at ``/``, the others under ``/opt/<name>``), with
Debian's valgrind beside them. Each runs two fixed workloads under
``valgrind --tool=callgrind``: the import set of comparison 9 and a pure-Python kernel mix
(recursion, method calls on small objects, float arithmetic, string formatting into a
dict, a JSON round trip). Counted are the instructions of the whole process, of the
interpreter's own code (its executable and any ``libpython``) and of
``_PyEval_EvalFrameDefault``, the bytecode loop.

Unlike the wall-time comparisons, a count does not depend on what else the machine is
doing: the same binary, workload and environment give the same count (to a few
instructions), so one run is enough and a build difference of 1% shows. A count is not a
time (it misses cache misses, branch mispredictions and code layout), so it explains the
speed comparisons rather than replacing them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .harness import Figure, Outcome
from .interpreter_results import LABELS, record
from .interpreters import bwrap, interpreter_container, mount, sh, versions
from .speed import IMPORTS

#: The pure-Python workload: deterministic (PYTHONHASHSEED=0), about 0.2 s without valgrind.
KERNELS = """
import json
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
class V:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x = x
        self.y = y
    def add(self, other):
        return V(self.x + other.x, self.y + other.y)
def vectors(n):
    acc = V(0.0, 0.0)
    for i in range(n):
        acc = acc.add(V(i * 0.5, i * 1.5))
    return acc.x
def words(n):
    counts = {}
    for i in range(n):
        key = "k%d" % (i % 500)
        counts[key] = counts.get(key, 0) + len(key)
    return len(counts)
def floats(n):
    return sum((i * 0.1) ** 0.5 for i in range(n))
doc = [{"id": i, "name": "item %d" % i, "tags": ["a", "b"], "v": i / 3} for i in range(300)]
fib(20)
vectors(40000)
words(40000)
floats(40000)
for _ in range(10):
    json.loads(json.dumps(doc))
"""

WORKLOADS = {"imports": f"import {IMPORTS}", "kernels": KERNELS}

#: The bytecode loop's symbol (callgrind_annotate suffixes recursion levels: ``'2``).
EVAL = "_PyEval_EvalFrameDefault"

_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)\s+\[(.+)\]\s*$")
_TOTAL = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+PROGRAM TOTALS\s*$")


def parse_annotate(text: str, core: Sequence[str]) -> dict[str, int]:
    """``total``, ``core`` (objects whose path contains one of ``core``) and ``eval``
    instructions from ``callgrind_annotate --inclusive=no --threshold=100`` output."""
    total = core_ir = eval_ir = 0
    for line in text.splitlines():
        if match := _TOTAL.match(line):
            total = int(match[1].replace(",", ""))
            continue
        match = _LINE.match(line)
        if not match:
            continue
        count, where, obj = int(match[1].replace(",", "")), match[2], match[3]
        if any(name in obj for name in core):
            core_ir += count
        function = where.partition(":")[2]
        if function == EVAL or function.startswith(EVAL + "'"):
            eval_ir += count
    if not total:
        raise ValueError("no PROGRAM TOTALS line: not callgrind_annotate output")
    return {"total": total, "core": core_ir, "eval": eval_ir}


def count(root: Path, python: str, code: str) -> dict[str, int]:
    """Instructions of ``python -c code`` under callgrind, as root in a writable sandbox."""
    out = "/tmp/callgrind.out"
    run = [*bwrap(root, user=False, writable=True, env={"PYTHONHASHSEED": "0"}), "sh", "-c"]
    script = (
        f'valgrind --tool=callgrind --callgrind-out-file={out} {python} -c "$1" >/dev/null '
        f"2>/tmp/valgrind.log || {{ cat /tmp/valgrind.log >&2; exit 1; }}; "
        f"callgrind_annotate --inclusive=no --threshold=100 {out}"
    )
    text = sh([*run, script, "sh", code])
    return parse_annotate(text, core=(python, "libpython"))


def measure(root: Path, pythons: dict[str, str]) -> dict[str, dict[str, dict[str, int]]]:
    """Counts per workload and interpreter."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for label, code in WORKLOADS.items():
        out[label] = {}
        for name, python in pythons.items():
            out[label][name] = count(root, python, code)
            print(f"{label} {name}: {out[label][name]}", file=sys.stderr, flush=True)
    return out


_PARTS = {
    "total": "the whole process",
    "core": "the interpreter's own code",
    "eval": EVAL,
}


def outcomes(result: dict[str, Any], commands: Sequence[str]) -> list[Outcome]:
    """14-instructions: each count, and every other interpreter's against ours."""
    data: dict[str, dict[str, dict[str, int]]] = result["instructions"]
    figures: list[Figure] = []
    ratios: list[Figure] = []
    for label, per in data.items():
        for part, what in _PARTS.items():
            for who, counts in per.items():
                figures.append(
                    Figure(
                        f"`{label}`, {what}: {LABELS.get(who, who)}",
                        "M instructions",
                        (counts[part] / 1e6,),
                    )
                )
                if who != "ours" and "ours" in per:
                    ratios.append(
                        Figure(
                            f"`{label}`, {what}: {who} / ours (>1: ours executes fewer)",
                            "x",
                            (counts[part] / per["ours"][part],),
                        )
                    )
        # the speed bar's direction for each candidate (the whole process only)
        for who, counts in per.items():
            if who not in ("ours", "debian") and "debian" in per:
                ratios.append(
                    Figure(
                        f"`{label}`, the whole process: debian / {who} (>1: {who} executes fewer)",
                        "x",
                        (per["debian"]["total"] / counts["total"],),
                    )
                )
    return [
        Outcome(
            key="14-instructions",
            title="",
            status="measured",
            figures=tuple(figures),
            ratios=tuple(ratios),
            commands=tuple(commands),
            notes=(
                *(f"{LABELS.get(n, n)}: {v}" for n, v in result["versions"].items()),
                f"`imports`: python3.13 -c 'import {IMPORTS}'; `kernels`: the pure-Python "
                "workload in bench/instructions.py (recursion, method calls, float "
                "arithmetic, string formatting, a JSON round trip)",
                "valgrind --tool=callgrind (Debian 13's valgrind) as root in the shared root "
                "filesystem, PYTHONHASHSEED=0; counts are instructions, not time, and do not "
                "depend on the machine's load: one run",
                "the interpreter's own code: its executable and any libpython3.13.so (Debian's "
                "executable also holds the extension modules it builds in, _json among them, "
                "which ours load from lib-dynload: compare the whole process across builds)",
            ),
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--base", type=Path, required=True, help="the base rootfs tar")
    parser.add_argument("--interp", action="append", default=[], help="NAME=RUNTIME.tar")
    parser.add_argument("--debian", action="store_true", help="add Debian's python3.13")
    parser.add_argument("--record", type=Path, help="merge the outcome into this results file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with interpreter_container(
        args.base, args.interp, debian=args.debian, packages=("valgrind",)
    ) as (ctr, pythons):
        root = mount(ctr)
        result: dict[str, Any] = {
            "pythons": pythons,
            "versions": versions(root, pythons),
            "runs": 1,
            "load_start": list(os.getloadavg()),
            "instructions": measure(root, pythons),
            "load_end": list(os.getloadavg()),
        }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.record:
        command = "python -m bench.instructions " + " ".join(sys.argv[1:])
        record(
            args.out,
            args.record,
            args.record.parent.parent / "RESULTS.md",
            [command],
            make=outcomes,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
