"""Benchmark: CPython runtime builds, amd64 native vs arm64 cross-compiled.

Usage: python bench/bench_runtime.py SOURCE_TARBALL [--profile fast|release] [--cache DIR]

Builds CPython 3.13.15 (the source must have the pinned sha256) for amd64, then for
arm64 (cross-compiled, reusing the amd64 runtime as build Python), both with
``mode=BuildMode.REBUILD`` so the compile is measured and not a cache hit; the build
root comes from the cache when present. Prints, per arch, the wall time of the build, the
tarball size and whether it was cross-compiled, and the arm64/amd64 ratio (target:
at most 1.5). Then times a cache hit.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bink_python.host.distro import get_distro
from bink_python.host.progress import Progress
from bink_python.runtime.build import BuildMode, build_runtime
from bink_python.runtime.spec import RuntimeSpec
from bink_python.settings import Settings
from bink_python.store.store import Store

VERSION = "3.13.15"
SHA256 = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
EPOCH = 1_767_225_600


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("--profile", default="fast", choices=("fast", "release"))
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/bink-python-bench-cache"))
    args = parser.parse_args()
    store = Store(args.cache)
    report: dict[str, dict[str, object]] = {}
    for arch in ("amd64", "arm64"):
        spec = RuntimeSpec(VERSION, SHA256, get_distro("debian", "13"), arch, args.profile)
        start = time.monotonic()
        result = build_runtime(
            spec,
            args.source,
            store,
            epoch=EPOCH,
            progress=Progress(),
            mode=BuildMode.REBUILD,
            mirrors=Settings.resolve(environ=os.environ).mirrors,
        )
        report[arch] = {
            "seconds": round(time.monotonic() - start, 1),
            "tarball_bytes": result.record["size"],
            "cross_compiled": result.record["cross_compiled"],
        }
    amd64_s = float(str(report["amd64"]["seconds"]))
    arm64_s = float(str(report["arm64"]["seconds"]))
    start = time.monotonic()
    build_runtime(
        RuntimeSpec(VERSION, SHA256, get_distro("debian", "13"), "arm64", args.profile),
        args.source,
        store,
        epoch=EPOCH,
        mirrors=Settings.resolve(environ=os.environ).mirrors,
    )
    print(
        json.dumps(
            {
                "profile": args.profile,
                "builds": report,
                "arm64_over_amd64": round(arm64_s / amd64_s, 2),
                "cache_hit_seconds": round(time.monotonic() - start, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
