"""Interpreter speed and start-up: several CPython builds in one root filesystem.

    python -m bench.interpreters --base ROOTFS.tar --interp ours=RUNTIME.tar \\
        --interp reference=REF.tar --debian --runs 3 --startup-runs 40 --out RESULT.json

One container of the Debian 13 base (buildah, the same root filesystem for everyone):
Debian's own ``python3.13`` installed with apt (``--debian``; its maintainer scripts
byte-compile its stdlib as Debian's images have it), the first ``--interp`` runtime
unpacked at ``/`` (its ``/usr/local``, where it was built for), every other one unpacked
under ``/opt/<name>`` (CPython finds its stdlib relative to the executable). The container's
root is then used directly with bubblewrap:

- speed: pyperformance's benchmark scripts (bench/speed.py: pinned wheels, pyperf --fast),
  every interpreter per benchmark in turn, the order rotating from run to run;
- start-up: ``python3.13 -c pass`` and the import set of issue 13, as uid 10000 on a
  read-only root filesystem (a tmpfs /tmp), timed inside the sandbox by a driver
  (Debian's python3.13) around each child, interleaved, median of ``--startup-runs``.

Figures are written as JSON; RESULTS.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import speed
from .harness import Figure, Outcome, Runner, machine, ratio, save_results
from .report import write_outputs
from .sandbox import bwrap_argv

IMPORTS = (
    "asyncio, json, ssl, email.message, http.client, logging, decimal, argparse, "
    "urllib.request, subprocess"
)
DEBIAN = "/usr/bin/python3.13"

DRIVER = """
import json, subprocess, sys, time
pythons = json.loads(sys.argv[1]); runs = int(sys.argv[2]); code = sys.argv[3]
times = {name: [] for name in pythons}
for i in range(runs + 2):
    order = list(pythons.items())
    order = order[i % len(order):] + order[:i % len(order)]
    for name, python in order:
        start = time.perf_counter()
        subprocess.run([python, "-c", code], check=True)
        if i >= 2:  # two warm-up rounds (page cache)
            times[name].append(time.perf_counter() - start)
print(json.dumps(times))
"""


def sh(argv: list[str], **kw: object) -> str:
    print("+", " ".join(argv), file=sys.stderr, flush=True)
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw).stdout  # type: ignore[call-overload, no-any-return]


#: (host directory, path inside) bound read-only over the root: build trees under test
BINDS: list[tuple[str, str]] = []


def bwrap(
    root: Path, *, user: bool, writable: bool, env: dict[str, str] | None = None
) -> list[str]:
    home = "/home/apps" if user else "/root"
    return bwrap_argv(root, writable=writable, user=user, home=home, env=env, binds=BINDS)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interpreters")
    parser.add_argument("--base", type=Path, required=True, help="the base rootfs tar")
    parser.add_argument(
        "--interp",
        action="append",
        default=[],
        help="NAME=RUNTIME.tar, or NAME=DIR::EXE for an interpreter in a build tree (DIR is "
        "bound at /opt/NAME, EXE relative to it)",
    )
    parser.add_argument(
        "--bind", action="append", default=[], help="HOST=INSIDE: a directory bound read-only"
    )
    parser.add_argument("--debian", action="store_true", help="add Debian's python3.13")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=40)
    parser.add_argument("--benchmarks", default=",".join(speed.BENCHMARKS))
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--pyperf", default="--fast", help="pyperf's run options (default --fast)")
    parser.add_argument(
        "--reference-is-relink",
        action="store_true",
        help="the 'reference' runtime is ours relinked with the core in libpython3.13.so and "
        "without bytecode (the reference's layout), not a build of bench/reference/Dockerfile",
    )
    parser.add_argument("--record", type=Path, help="merge the outcomes into this results file")
    parser.add_argument(
        "--ours-profile", default="release", help="the runtime profile of 'ours' (for the labels)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/bink-bench/interpreters"))
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    for item in args.bind:
        host, _, inside = item.partition("=")
        BINDS.append((host, inside))
    with interpreter_container(args.base, args.interp, debian=args.debian) as (ctr, pythons):
        wheels = speed.fetch_wheels(Runner(args.work / "logs"), args.work / "wheels")
        site = speed.unpack(wheels, Path(tempfile.mkdtemp(dir=args.work)) / "site")
        sh(["buildah", "copy", ctr, str(site), "/bench/site"])
        root = mount(ctr)
        result: dict[str, object] = {
            "pythons": pythons,
            "versions": versions(root, pythons),
            "load_start": list(_load()),
            "reference_is_relink": args.reference_is_relink,
            "ours_profile": args.ours_profile,
        }
        if not args.no_startup:
            result["startup"] = startup(root, pythons, args.startup_runs)
            print(json.dumps(result["startup"], indent=1), file=sys.stderr)
        if not args.no_speed:
            result["pyperf"] = args.pyperf
            result["speed"] = run_speed(
                root, pythons, args.benchmarks.split(","), args.runs, args.pyperf
            )
        result["load_end"] = list(_load())
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(summarise(result), indent=1))
        if args.record:
            command = "python -m bench.interpreters " + " ".join(sys.argv[1:])
            record(args.out, args.record, args.record.parent.parent / "RESULTS.md", [command])
    return 0


@contextmanager
def interpreter_container(
    base: Path, interps: Sequence[str], *, debian: bool, packages: Sequence[str] = ()
) -> Iterator[tuple[str, dict[str, str]]]:
    """A buildah container of the base rootfs ``base`` (a plain tar) with the interpreters:
    Debian's python3.13 installed with apt when ``debian`` (with ``packages``), the first of
    ``interps`` (``NAME=RUNTIME.tar``, or ``NAME=DIR::EXE`` for a build tree, added to
    :data:`BINDS`) unpacked at ``/``, every other one under ``/opt/NAME``. Yields the
    container and each interpreter's path inside; removes the container afterwards."""
    pythons: dict[str, str] = {}
    ctr = sh(["buildah", "from", "scratch"]).strip()
    try:
        sh(["buildah", "add", ctr, str(base), "/"])
        wanted = (*(("python3.13",) if debian else ()), *packages)
        if wanted:
            sh(speed.apt_install(ctr, wanted))
        if debian:
            pythons["debian"] = DEBIAN
        for i, spec in enumerate(interps):
            name, _, tar = spec.partition("=")
            dest = "/" if i == 0 else f"/opt/{name}"
            if "::" in tar:
                tree, _, exe = tar.partition("::")
                BINDS.append((tree, dest))
                pythons[name] = f"{dest}/{exe}"
                continue
            sh(["buildah", "add", ctr, tar, dest])
            pythons[name] = f"{'' if i == 0 else dest}/usr/local/bin/python3.13"
        yield ctr, pythons
    finally:  # buildah rm unmounts the container first, as bench.reference_runtime relies on
        subprocess.run(["buildah", "rm", ctr], check=False, capture_output=True)


def versions(root: Path, pythons: dict[str, str]) -> dict[str, str]:
    """Each interpreter's ``-VV`` (version, build date, compiler), run in ``root``."""
    return {
        n: sh([*bwrap(root, user=False, writable=False), p, "-VV"]).strip()
        for n, p in pythons.items()
    }


def mount(ctr: str) -> Path:
    """The root of the container ``ctr``, with a mount point for each of :data:`BINDS`."""
    root = Path(sh(["buildah", "mount", ctr]).strip())
    for _, inside in BINDS:
        (root / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def startup(root: Path, pythons: dict[str, str], runs: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per start, as uid 10000 on a read-only root, per code and interpreter."""
    out: dict[str, dict[str, list[float]]] = {}
    for label, code in (("pass", "pass"), ("imports", f"import {IMPORTS}")):
        text = sh(
            [
                *bwrap(root, user=True, writable=False),
                DEBIAN if "debian" in pythons else next(iter(pythons.values())),
                "-c",
                DRIVER,
                json.dumps(pythons),
                str(runs),
                code,
            ]
        )
        out[label] = json.loads(text.strip().splitlines()[-1])
    return out


def run_speed(
    root: Path, pythons: dict[str, str], names: list[str], runs: int, mode: str
) -> dict[str, dict[str, list[float]]]:
    per: dict[str, dict[str, list[float]]] = {n: {p: [] for p in pythons} for n in names}
    order = list(pythons)
    for run in range(runs):
        rotated = order[run % len(order) :] + order[: run % len(order)]
        for name in names:
            for who in rotated:
                cmd = speed.command(
                    pythons[who],
                    "/bench/site",
                    name,
                    "/tmp/bench-result.json",
                    smoke=False,
                    mode=mode,
                )
                started = time.monotonic()
                text = sh([*bwrap(root, user=False, writable=True), "sh", "-c", cmd])
                per[name][who].append(speed.mean_seconds(text))
                print(
                    f"{name} {who}: {per[name][who][-1] * 1e3:.2f} ms "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return per


def summarise(result: dict[str, object]) -> dict[str, object]:
    """Medians, and per-run geometric means of ratios against every other interpreter."""
    summary: dict[str, object] = {}
    startup_data = result.get("startup")
    if isinstance(startup_data, dict):
        summary["startup_median_ms"] = {
            label: {n: round(statistics.median(v) * 1e3, 1) for n, v in per.items()}
            for label, per in startup_data.items()
        }
    speed_data = result.get("speed")
    if isinstance(speed_data, dict):
        names = list(speed_data)
        who = list(next(iter(speed_data.values())))
        runs = len(speed_data[names[0]][who[0]])
        summary["speed_median_ms"] = {
            n: {w: round(statistics.median(speed_data[n][w]) * 1e3, 3) for w in who} for n in names
        }
        geo: dict[str, list[float]] = {}
        for a in who:
            for b in who:
                if a == b:
                    continue
                geo[f"{b}/{a} (time ratio: >1 means {a} faster)"] = [
                    round(
                        statistics.geometric_mean(
                            speed_data[n][b][i] / speed_data[n][a][i] for n in names
                        ),
                        3,
                    )
                    for i in range(runs)
                ]
        summary["geometric_means_per_run"] = geo
    return summary


# --------------------------------------------------------------------------- recording

#: Names of the interpreters in RESULTS.md.
LABELS = {
    "ours": "ours (release)",
    "debian": "Debian python3.13",
    "reference": "reference (docker-library flags)",
    "ours-prebolt": "ours without BOLT",
    "ours-shared": "ours with the core in libpython3.13.so",
    "ours-recipe3": "ours, recipe 3 (start-up modules in lib-dynload, PIE, no BOLT)",
    "ours-nofp": "ours without frame pointers",
    "ours-sp-strong": "ours with -fstack-protector-strong (recipe 6)",
    "ours-builtins": "ours with the start-up modules built into the core",
    "ours-nopie": "ours with a non-PIE python3.13",
    "ours-fortify": "ours with -D_FORTIFY_SOURCE=2 (recipe 8)",
    "ours-ltopart": "ours with GCC's default LTO partitioning (Debian's), not =none",
    "ours-3.13.5": "ours built from CPython 3.13.5 (Debian's version)",
    "ours-pgoext": "ours trained on the whole test suite (--pgo-extended), not --pgo's 43 tests",
    "ours-static": "ours built without --enable-shared (Debian's static build: no -fPIC core)",
    "ours-pde": "ours with a position-dependent python3.13 (core recompiled -fno-pie, -no-pie)",
    "ours-pdenofp": "ours with a position-dependent python3.13 and no frame pointers",
    "ours-gcse": "ours with GCSE in the eval loop's file (recipe 8)",
    "ours-nogcse": "ours with -fno-gcse on the eval loop's file (recipe 9)",
    "ours-clang": "ours built with clang 19 (full LTO), not GCC 14",
    "ours-clang-thin": "ours built with clang 19 (ThinLTO, CPython's default for clang)",
    "ours-candidate": "candidate recipe, not adopted (built-in start-up modules, "
    "-fstack-protector, -fprofile-partial-training)",
}


def outcomes(result: dict[str, Any], commands: Sequence[str]) -> list[Outcome]:
    """RESULTS.md entries: 7-speed (ours vs Debian and the reference), 9-startup, 10-changes,
    12-frame-pointers, 15-eval-loop-gcse and 16-compiler (when their interpreter of
    :data:`ONE_CHANGE` ran), 13-choices (when an interpreter of :data:`CHOICES` ran). A run
    of 12, 13, 15 or 16 without both Debian's python3.13 and the reference records only
    those."""
    speed_interps = set(next(iter(result.get("speed", {}).values()), {}))
    out: list[Outcome] = []
    out += [one_change(other, result, commands) for other in ONE_CHANGE if other in speed_interps]
    if speed_interps & set(CHOICES):
        out.append(choices(result, commands))
    if out and not {"debian", "reference"} <= speed_interps:
        # without both, comparisons 7 and 9 would lose figures they have
        return out
    profile = result.get("ours_profile", "release")
    labels = {**LABELS, "ours": f"ours ({profile})"}
    if result.get("reference_is_relink"):
        labels["reference"] = "reference layout (ours relinked: core in libpython3.13.so)"
    partial = profile != "release"
    why = (
        f"ours is the {profile} runtime (recipe 3: static core and bytecode, but no PGO, LTO "
        "or BOLT): no release build finished on the shared machine in this session"
        if partial
        else ""
    )
    notes = tuple(f"{labels.get(n, n)}: {v}" for n, v in result["versions"].items())

    def measured(
        key: str, figures: list[Figure], ratios: list[Figure], notes: tuple[str, ...]
    ) -> Outcome:
        return Outcome(
            key=key,
            title="",
            status="partial" if partial else "measured",
            reason=why,
            figures=tuple(figures),
            ratios=tuple(ratios),
            commands=tuple(commands),
            notes=notes,
        )

    speed_data: dict[str, dict[str, list[float]]] = result.get("speed", {})
    if speed_data:
        names = list(speed_data)
        figures = _speed_figures(speed_data, names, ("ours", "debian", "reference"), labels)
        ratios: list[Figure] = []
        for other in ("debian", "reference"):
            if other not in speed_data[names[0]]:
                continue
            ratios += _per_benchmark(
                speed_data, names, other, "ours", f"{other} / ours (>1: ours faster)"
            )
            ratios.append(_geo(f"geometric mean: {other} / ours", speed_data, names, other, "ours"))
        out.append(
            measured(
                # a run of the fast runtime measures the static core, not the release claim
                "10-changes" if partial else "7-speed",
                figures,
                ratios,
                (
                    *notes,
                    "all interpreters in one root filesystem (the Debian 13 base with Debian's "
                    "python3.13 from apt, ours at /usr/local, the others under /opt/<name>), run "
                    "with bubblewrap",
                    f"workloads: pyperformance's benchmark scripts ({', '.join(names)}), pyperf "
                    f"options `{result.get('pyperf')}`; each figure per run is pyperf's mean",
                    "runs interleave the interpreters per benchmark, the order rotating per run",
                    *(
                        (
                            "reference: NOT a build of bench/reference/Dockerfile (none finished "
                            f"on the shared machine in time): our {profile} build's own objects "
                            "relinked with the core in libpython3.13.so as --enable-shared links "
                            "it, without bytecode: the reference's layout, our flags",
                        )
                        if result.get("reference_is_relink")
                        else ()
                    ),
                    f"load average at the start {result['load_start']}, at the end "
                    f"{result['load_end']}",
                ),
            )
        )
        # the static core's cost: the shared-core relink of the same objects (ours-shared, or
        # the reference when it is that relink) against the static executable without BOLT
        # (ours-prebolt, or ours itself when ours has no BOLT: the fast profile)
        have = set(speed_data[names[0]])
        shared = "ours-shared" if "ours-shared" in have else None
        if shared is None and "reference" in have and result.get("reference_is_relink"):
            shared = "reference"
        static = "ours-prebolt" if "ours-prebolt" in have else ("ours" if partial else None)
        changes: list[Figure] = []
        if "ours-prebolt" in have:
            changes.append(
                _geo("BOLT: without / with (>1: BOLT faster)", speed_data, names, *BOLT_PAIR)
            )
        if "ours-recipe3" in have and "ours-prebolt" in have:
            changes.append(
                _geo(
                    "built-in start-up modules with BOLT's link flags (non-PIE, "
                    "--emit-relocs, -fno-reorder-blocks-and-partition): recipe 3 / recipe 4 "
                    "without BOLT (>1: recipe 4 faster)",
                    speed_data,
                    names,
                    "ours-recipe3",
                    "ours-prebolt",
                )
            )
        if shared and static:
            changes.append(
                _geo(
                    "static core: core in libpython3.13.so / core in the executable "
                    "(>1: static faster; same objects, no BOLT)",
                    speed_data,
                    names,
                    shared,
                    static,
                )
            )
        if changes and partial:
            first = out.pop()
            out.append(
                Outcome(
                    key="10-changes",
                    title="",
                    status="partial",
                    reason="frame pointers and BOLT not measured; " + why,
                    figures=first.figures,
                    ratios=(*changes, *first.ratios),
                    commands=first.commands,
                    notes=(
                        "reference here: the same build's objects relinked with the core in "
                        "libpython3.13.so (as --enable-shared links it), without bytecode",
                        *first.notes,
                    ),
                )
            )
        elif changes:
            out.append(
                Outcome(
                    key="10-changes",
                    title="",
                    status="partial",
                    reason="frame pointers are comparison 12" + (f"; {why}" if partial else ""),
                    ratios=tuple(changes),
                    commands=tuple(commands),
                    notes=(
                        "without BOLT: the release build's own `python.prebolt` (the executable "
                        "before llvm-bolt, same objects and profile)",
                        *(
                            (
                                "recipe 3: the previous release runtime (same source, flags "
                                "and PGO task; start-up modules in lib-dynload, a PIE "
                                "executable, no BOLT)",
                            )
                            if "ours-recipe3" in have
                            else ()
                        ),
                        *(
                            (
                                "core in libpython3.13.so: the same build's objects, python3.13 "
                                "relinked against libpython3.13.so as --enable-shared links it",
                            )
                            if shared
                            else ()
                        ),
                        *notes,
                    ),
                )
            )
    startup_data: dict[str, dict[str, list[float]]] = result.get("startup", {})
    if startup_data:
        figures = []
        ratios = []
        for label, per in startup_data.items():
            for who, samples in per.items():
                figures.append(
                    Figure(
                        f"`{label}`: {labels.get(who, who)}", "ms", tuple(v * 1e3 for v in samples)
                    )
                )
            for other in ("debian", "reference"):
                if other in per:
                    ratios.append(
                        ratio(
                            f"`{label}`: {other} / ours (>1: ours faster)", per[other], per["ours"]
                        )
                    )
        out.append(
            measured(
                "9-startup",
                figures,
                ratios,
                (
                    f"`pass`: python3.13 -c pass; `imports`: python3.13 -c 'import {IMPORTS}'",
                    "as uid 10000 on a read-only root filesystem (bubblewrap --ro-bind, "
                    "--uid 10000, a tmpfs /tmp), wall time of each child measured by a driver "
                    "inside the sandbox, interpreters interleaved, two warm-up rounds dropped",
                    "Debian's python3.13 has the bytecode its package compiles at install; the "
                    "reference ships none (its cleanup deletes it) and compiles on every start",
                    *notes,
                ),
            )
        )
    return out


BOLT_PAIR = ("ours-prebolt", "ours")


@dataclass(frozen=True)
class OneChange:
    """A comparison of its own: ours against the same recipe and source with one change
    (so a run of it does not replace comparisons 7 and 10). ``ratio`` is taken
    ``numerator / denominator`` of the two; ``note`` may name ``{profile}``."""

    key: str
    numerator: str
    denominator: str
    ratio: str  # "with / without"
    reading: str  # "(>1: frame pointers cost)"
    note: str


#: The one-change comparisons, by the interpreter measured beside ours.
ONE_CHANGE = {
    "ours-nofp": OneChange(
        "12-frame-pointers",
        "ours",
        "ours-nofp",
        "with / without",
        "(>1: frame pointers cost)",
        "both are the {profile} runtime of the same recipe and source; the only difference "
        "is -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer (3.12+)",
    ),
    "ours-gcse": OneChange(
        "15-eval-loop-gcse",
        "ours-gcse",
        "ours",
        "with / without GCSE in the eval loop's file",
        "(>1: without faster)",
        "both are the {profile} runtime of the same source and flags; the only difference is "
        "-fno-gcse on Python/ceval.c's compile lines (recipe 9; the other is recipe 8)",
    ),
    "ours-clang": OneChange(
        "16-compiler",
        "ours",
        "ours-clang",
        "GCC / clang",
        "(>1: clang faster)",
        "both are the {profile} runtime of the same source, configure arguments and "
        "dpkg-buildflags (frame pointers, -fstack-protector, _FORTIFY_SOURCE), PGO on the "
        "same task; the other is built by clang 19 (CC=/usr/lib/llvm-19/bin/clang, its "
        "llvm-profdata and llvm-ar; no -fno-gcse, a GCC option) in a build root with "
        "clang-19, llvm-19 and libclang-rt-19-dev added",
    ),
}


def one_change(other: str, result: dict[str, Any], commands: Sequence[str]) -> Outcome:
    """12, 15: ours and ``other`` (:data:`ONE_CHANGE`), per benchmark and as a geometric
    mean, and at start-up where it ran; where Debian's python3.13 ran beside them, each
    of the two against it (where the speed bar would stand with the change)."""
    change = ONE_CHANGE[other]
    data: dict[str, dict[str, list[float]]] = result["speed"]
    names = list(data)
    profile = result.get("ours_profile", "release")
    labels = {**LABELS, "ours": f"ours ({profile})"}
    debian = "debian" in data[names[0]]
    pair = (change.numerator, change.denominator)
    figures = _speed_figures(data, names, ("ours", other, *(("debian",) if debian else ())), labels)
    ratios = _per_benchmark(data, names, *pair, f"{change.ratio} {change.reading}")
    ratios.append(_geo(f"geometric mean: {change.ratio}", data, names, *pair))
    for label, per in result.get("startup", {}).items():
        if all(who in per for who in pair):
            ratios.append(
                ratio(
                    f"`{label}` as uid 10000: {change.ratio} {change.reading}",
                    per[change.numerator],
                    per[change.denominator],
                )
            )
    if debian:
        for who in ("ours", other):
            ratios.append(
                _geo(
                    f"geometric mean: debian / {who} (>1: {who} faster)",
                    data,
                    names,
                    "debian",
                    who,
                )
            )
    return _side_by_side(
        change.key,
        result,
        commands,
        figures,
        ratios,
        (change.note.format(profile=profile),),
        "the interpreters interleaved per benchmark",
    )


def _side_by_side(
    key: str,
    result: dict[str, Any],
    commands: Sequence[str],
    figures: Sequence[Figure],
    ratios: Sequence[Figure],
    notes: Sequence[str],
    interleaved: str,
) -> Outcome:
    """A measured outcome of interpreters run side by side: ``notes``, then the
    workloads (how they were ``interleaved``) and the load averages."""
    names = list(result["speed"])
    return Outcome(
        key=key,
        title="",
        status="measured",
        figures=tuple(figures),
        ratios=tuple(ratios),
        commands=tuple(commands),
        notes=(
            *notes,
            f"workloads: pyperformance's benchmark scripts ({', '.join(names)}), pyperf "
            f"options `{result.get('pyperf')}`, {interleaved}",
            f"load average at the start {result['load_start']}, at the end {result['load_end']}",
        ),
    )


#: 13: an interpreter measured beside ours that differs from it in one build choice, and
#: which way round its ratio is taken: (numerator, denominator, label). Every ratio reads >1
#: when the faster side is the one Debian's python3.13 has.
CHOICES = {
    "ours-sp-strong": (
        "ours-sp-strong",
        "ours",
        "-fstack-protector-strong / -fstack-protector (>1: -fstack-protector faster)",
    ),
    "ours-nopie": ("ours", "ours-nopie", "PIE / non-PIE python3.13 (>1: non-PIE faster)"),
    "ours-builtins": (
        "ours",
        "ours-builtins",
        "start-up modules shared / built in (>1: built in faster)",
    ),
    "ours-fortify": (
        "ours",
        "ours-fortify",
        "without / with -D_FORTIFY_SOURCE=2 (>1: with it faster)",
    ),
}


def choices(result: dict[str, Any], commands: Sequence[str]) -> Outcome:
    """13: ours against the same recipe with one build choice changed (the stack
    protector's level, start-up modules built into the core, a non-PIE executable,
    _FORTIFY_SOURCE): speed and, where it ran, start-up as uid 10000."""
    data: dict[str, dict[str, list[float]]] = result["speed"]
    names = list(data)
    have = [w for w in CHOICES if w in data[names[0]]]
    figures = _speed_figures(data, names, ("ours", *have), LABELS)
    ratios: list[Figure] = []
    startup_data: dict[str, dict[str, list[float]]] = result.get("startup", {})
    for other in have:
        num, den, what = CHOICES[other]
        ratios += _per_benchmark(data, names, num, den, what)
        ratios.append(_geo(f"geometric mean: {what}", data, names, num, den))
        for label, per in startup_data.items():
            if num in per and den in per:
                ratios.append(ratio(f"`{label}` as uid 10000: {what}", per[num], per[den]))
    return _side_by_side(
        "13-choices",
        result,
        commands,
        figures,
        ratios,
        (
            *(f"{LABELS.get(n, n)}: {v}" for n, v in result["versions"].items() if n != "debian"),
            "each candidate is ours (the same source, PGO task and flags) with the one named "
            "change; start-up figures are medians of comparison 9's samples",
        ),
        "the interpreters interleaved per benchmark, the order rotating per run",
    )


def _speed_figures(
    data: dict[str, dict[str, list[float]]],
    names: list[str],
    who: Sequence[str],
    labels: dict[str, str],
) -> list[Figure]:
    """Each benchmark's times (ms) for each interpreter of ``who`` that ran it."""
    return [
        Figure(f"{name}: {labels[w]}", "ms", tuple(v * 1e3 for v in data[name][w]))
        for name in names
        for w in who
        if w in data[name]
    ]


def _per_benchmark(
    data: dict[str, dict[str, list[float]]], names: list[str], num: str, den: str, what: str
) -> list[Figure]:
    """``num / den`` per run pair, one figure per benchmark, labelled ``<name>: <what>``."""
    return [ratio(f"{name}: {what}", data[name][num], data[name][den]) for name in names]


def _geo(
    label: str, data: dict[str, dict[str, list[float]]], names: list[str], num: str, den: str
) -> Figure:
    runs = len(data[names[0]][den])
    return Figure(
        label,
        "x",
        tuple(
            statistics.geometric_mean(data[n][num][i] / data[n][den][i] for n in names)
            for i in range(runs)
        ),
    )


def _runs(result: dict[str, Any]) -> int:
    """Runs of the speed comparison, else samples of the start-up one (or the result's own
    ``runs``)."""
    if "runs" in result:
        return int(result["runs"])
    for part in ("speed", "startup"):
        data = result.get(part) or {}
        for per in data.values():
            for values in per.values():
                return len(values)
    return 0


def record(
    result_json: Path,
    results: Path,
    markdown: Path,
    commands: Sequence[str],
    notes: dict[str, Sequence[str]] | None = None,
    make: Callable[[dict[str, Any], Sequence[str]], list[Outcome]] | None = None,
) -> None:
    """Merge the outcomes of ``result_json`` into ``results`` and render ``markdown``;
    ``notes`` adds lines to the outcome of each key (what was measured beside the run).
    ``make`` turns the result into outcomes (default :func:`outcomes`)."""

    make = make or outcomes
    result = json.loads(result_json.read_text())
    data = save_results(
        results,
        machine_info=machine(),
        settings={
            "runs": _runs(result),
            "profile": result.get("ours_profile", "release"),
            **(
                {
                    "load_average_at_start": [round(x, 2) for x in result["load_start"]],
                    "load_average_at_end": [round(x, 2) for x in result["load_end"]],
                }
                if "load_end" in result
                else {}
            ),
        },
        outcomes=[
            replace(o, notes=(*o.notes, *(notes or {}).get(o.key, ())))
            for o in make(result, commands)
        ],
    )
    write_outputs(results, markdown, data)


if __name__ == "__main__":
    shutil.which("bwrap") or sys.exit("needs bwrap")
    sys.exit(main())
