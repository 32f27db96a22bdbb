"""Python speed: our runtime against Debian's python3.13 in one container."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import speed
from ..harness import BenchError, Figure, Outcome, Runner, ratio
from .common import (
    BASE_IMAGE,
    VERSION,
    Context,
    import_image,
    maybe_base,
    rmi,
    runtime_argv,
    seed_cache,
)


def run_speed(ctx: Context) -> Outcome:
    runner = ctx.runner
    names = speed.BENCHMARKS[:2] if ctx.smoke else speed.BENCHMARKS
    wheels = speed.fetch_wheels(runner, ctx.work.parent / "pyperformance-wheels")
    site = speed.unpack(wheels, ctx.work / "speed-site")
    if ctx.smoke:
        # the measuring code on the host interpreter against itself (no images)
        shell = ["sh", "-c"]
        pythons = {"ours": sys.executable, "debian": sys.executable}
        site_in, output = str(site), str(ctx.work / "speed-result.json")
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
        notes: tuple[str, ...] = ("smoke: the host interpreter against itself",)
    else:
        shell, cleanup, notes = _speed_container(ctx, runner, site)
        pythons = speed.PYTHONS
        site_in, output = "/bench/site", "/tmp/bench-result.json"
    per: dict[str, dict[str, list[float]]] = {n: {"ours": [], "debian": []} for n in names}
    try:
        for run in range(ctx.runs):
            for name in names:
                order = ("ours", "debian") if run % 2 == 0 else ("debian", "ours")
                for who in order:  # interleaved, alternating which goes first
                    cmd = speed.command(pythons[who], site_in, name, output, smoke=ctx.smoke)
                    out = runner.run([*shell, cmd], f"speed-{who}").output
                    per[name][who].append(speed.mean_seconds(out))
    finally:
        cleanup()
    figures: list[Figure] = []
    ratios: list[Figure] = []
    for name in names:
        figures.append(Figure(f"{name}: ours ({ctx.speed_profile})", "ms", _ms(per[name]["ours"])))
        figures.append(Figure(f"{name}: Debian python3.13", "ms", _ms(per[name]["debian"])))
        ratios.append(
            ratio(
                f"{name}: Debian / ours (>1: ours faster)", per[name]["debian"], per[name]["ours"]
            )
        )
    geo = [
        statistics.geometric_mean(per[n]["debian"][i] / per[n]["ours"][i] for n in names)
        for i in range(ctx.runs)
    ]
    ratios.append(Figure("geometric mean over the benchmarks: Debian / ours", "x", tuple(geo)))
    pins = ", ".join(f"{w.name} {w.version}" for w in speed.WHEELS)
    return Outcome(
        key="7-speed",
        title="",
        status="smoke"
        if ctx.smoke
        else "measured"
        if ctx.speed_profile == "release"
        else "partial",
        reason=""
        if ctx.speed_profile == "release" or ctx.smoke
        else f"ours is the {ctx.speed_profile} runtime (no PGO, no LTO), not the release runtime "
        "the claim is about",
        figures=tuple(figures),
        ratios=tuple(ratios),
        commands=tuple(runner.commands),
        notes=(
            *notes,
            f"workloads: pyperformance's own benchmark scripts ({', '.join(names)}), run by "
            f"pyperf in --fast mode (10 worker processes x 2 values after calibration); each "
            f"figure per run is pyperf's mean; inputs: the PyPI wheels {pins}, sha256-pinned in "
            "bench/speed.py and unpacked into one directory both interpreters import",
            "runs interleave the interpreters per benchmark and alternate which goes first",
        ),
    )


def _ms(seconds: Sequence[float]) -> tuple[float, ...]:
    return tuple(s * 1e3 for s in seconds)


def _speed_container(
    ctx: Context, runner: Runner, site: Path
) -> tuple[list[str], Callable[[], None], tuple[str, ...]]:
    """A container of the Debian 13 base with Debian's python3.13, our runtime and ``site``
    (the unpacked pyperformance wheels) at /bench/site.

    Returns the argv prefix that runs a shell command in it, its cleanup and notes. The
    runtime (profile ``ctx.speed_profile``) comes from the speed cache, the warm cache or
    the test cache; a missing release runtime is built in the speed cache.
    """
    speed_cache = (
        ctx.work.parent / "speed-cache"
        if (ctx.work.parent / "speed-cache").exists()
        else ctx.work / "speed-cache"
    )
    release = [
        (store, r)
        for store in (speed_cache, ctx.warm_cache, ctx.test_cache)
        for r in (
            json.loads(p.read_text()) for p in sorted((store / "runtimes").glob("*/record.json"))
        )
        if r.get("profile") == ctx.speed_profile
        and r.get("arch") == "amd64"
        and r.get("version") == VERSION
        and (store / "runtimes" / r["key"] / "runtime.tar").exists()
    ]
    if not release:
        if ctx.speed_profile != "release":
            raise BenchError(f"no {ctx.speed_profile} amd64 runtime cached: run `cold` first")
        seed_cache(ctx, runner, speed_cache)
        runner.run(runtime_argv(ctx, speed_cache, "amd64", "release"), "speed-runtime")
        return _speed_container(ctx, runner, site)
    runtime_tar = release[0][0] / "runtimes" / release[0][1]["key"] / "runtime.tar"
    record = release[0][1]
    stores = (speed_cache, ctx.warm_cache, ctx.test_cache)
    rootfs = next((p for s in stores if s.exists() for p in maybe_base(s, "amd64")), None)
    if rootfs is None:
        raise BenchError("no Debian 13 amd64 base: run the cold comparison first")
    base = f"{BASE_IMAGE}:debian13-amd64-speed"
    rmi(runner, base)
    import_image(runner, rootfs, base, "amd64")
    ctr = runner.output(["buildah", "from", base]).strip()
    runner.run(speed.install_debian_python(ctr), "speed-prepare")
    runner.run(["buildah", "add", ctr, runtime_tar, "/"], "speed-prepare")
    runner.run(["buildah", "copy", ctr, site, "/bench/site"], "speed-prepare")
    prefix = ["buildah", "run", "--isolation", "chroot", ctr, "--"]
    versions = {
        who: runner.output([*prefix, python, "-VV"]).strip()
        for who, python in speed.PYTHONS.items()
    }

    def cleanup() -> None:
        runner.run(["buildah", "rm", ctr], "cleanup", record=False, check=False)

    notes = (
        f"ours: {versions['ours']} (runtime key {record['key']}, profile "
        f"{record.get('profile')}, PGO {record.get('pgo')}, LTO {record.get('lto')})",
        f"Debian: {versions['debian']}",
        "both in one container of the Debian 13 base (the same root filesystem, "
        "`buildah run --isolation chroot`)",
    )
    return [*prefix, "sh", "-c"], cleanup, notes
