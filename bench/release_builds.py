"""Comparison 11: what a release runtime costs to build, amd64 native against arm64
cross-compiled with its PGO profile task run under qemu-user.

    python -m bench.release_builds AMD64_ENTRY ARM64_ENTRY [--record RESULTS_JSON]

Each ENTRY is a runtime cache entry (``<cache>/runtimes/<key>``) of the same CPython
version, recipe and profile (release), one per arch. The figures are the builds' own
wall times (``build_seconds`` of each ``record.json``, written by the build that made the
entry), so this reads two finished builds rather than timing new ones: a release build is
about an hour of this machine, the arm64 one mostly the emulated profile run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .harness import BenchError, Figure, Outcome, machine, ratio, save_results
from .report import write_outputs


def read_entry(entry: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((entry / "record.json").read_text())
    if record.get("profile") != "release":
        raise BenchError(f"{entry}: a {record.get('profile')} runtime, not a release one")
    if "build_seconds" not in record:
        raise BenchError(f"{entry}: its record has no build_seconds")
    return record


def outcome(amd64: dict[str, Any], arm64: dict[str, Any], command: str) -> Outcome:
    """The comparison from the two records (same version and recipe, PGO on both)."""
    if (amd64["arch"], arm64["arch"]) != ("amd64", "arm64"):
        raise BenchError(
            f"expected an amd64 and an arm64 runtime: {amd64['arch']}, {arm64['arch']}"
        )
    for field in ("version", "recipe", "pgo", "lto"):
        if amd64[field] != arm64[field]:
            raise BenchError(f"the two runtimes differ in {field}: {amd64[field]} {arm64[field]}")
    if not arm64["pgo"]:
        raise BenchError("the arm64 runtime was built without PGO")
    how = (
        "cross-compiled on amd64, PGO profile task under qemu-user"
        if arm64["cross_compiled"]
        else "native"
    )
    first = Figure(
        f"amd64 release runtime (native, PGO+LTO{', BOLT' if amd64.get('bolt') else ''})",
        "s",
        (float(amd64["build_seconds"]),),
    )
    second = Figure(
        f"arm64 release runtime ({how}, PGO+LTO)", "s", (float(arm64["build_seconds"]),)
    )
    return Outcome(
        key="11-release-builds",
        title="",
        status="measured",
        figures=(first, second),
        ratios=(ratio("arm64 / amd64", second.values, first.values),),
        commands=(command,),
        notes=(
            f"CPython {amd64['version']}, runtime recipe {amd64['recipe']}, Debian "
            f"{amd64['release']}; keys {amd64['key']} (amd64) and {arm64['key']} (arm64)",
            f"each figure is the build's own wall time (record.json build_seconds), built at "
            f"{amd64.get('built_at')} and {arm64.get('built_at')}: one build each, not side by "
            "side, on the shared 2-core machine",
            "a native arm64 runner (the release workflow's runtime job) runs the profile task "
            "at native speed instead of under qemu",
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release_builds")
    parser.add_argument("amd64", type=Path)
    parser.add_argument("arm64", type=Path)
    parser.add_argument("--record", type=Path, help="merge the outcome into this results file")
    parser.add_argument("--note", action="append", default=[], help="a line added to the notes")
    args = parser.parse_args()
    command = "python -m bench.release_builds " + " ".join(
        shlex.quote(str(p)) for p in (args.amd64, args.arm64)
    )
    result = outcome(read_entry(args.amd64), read_entry(args.arm64), command)
    result = replace(result, notes=(*result.notes, *args.note))
    for figure in (*result.figures, *result.ratios):
        print(f"{figure.label}: {figure.median:.2f} {figure.unit}")
    if args.record:
        data = save_results(
            args.record,
            machine_info=machine(),
            settings={"runs": 1, "profile": "release"},
            outcomes=[result],
        )
        write_outputs(args.record, args.record.parent.parent / "RESULTS.md", data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
