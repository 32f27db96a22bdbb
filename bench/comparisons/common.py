"""What the comparisons share: the context, the pinned inputs, preparation, the reference's build.

State shared between comparisons (the warm cache of the cold build, imported base images,
the reference image) lives under ``Context.work`` with fixed names; each comparison
prepares what it needs when it is missing (untimed) so any subset can run with ``--only``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bink_python.host.distro import get_distro
from bink_python.oci import tarball
from bink_python.store.store import sha256_file

from ..harness import BenchError, Figure, Outcome, Runner

VERSION = "3.13.15"
SHA256 = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
TAG = "3.13"
DISTROLESS_TAG = "3.13-distroless"
EPOCH = 1_767_225_600
EXTRA_PACKAGE = "less"  # the package the "security rebuild" adds to the base
BASE_IMAGE = "localhost/bink-bench-base"
REF_IMAGE = "localhost/bink-bench-ref"

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parent
EXAMPLE = REPO / "examples" / "offline"


@dataclass(frozen=True)
class Context:
    work: Path  # scratch space for caches, layouts, logs
    smoke: bool
    runs: int
    cap: float  # seconds: the time cap of emulated builds
    profile: str  # runtime profile of the build comparisons ("fast" or "release")
    test_cache: Path  # a warm store (bases, fast runtimes) reused where the brief allows
    bink: str  # the bink-python command
    speed_profile: str = "release"  # the runtime profile the speed comparison measures

    @property
    def runner(self) -> Runner:
        return Runner(self.work / "logs")

    @property
    def warm_cache(self) -> Path:
        """The cache left by the last cold run of ours (bases, runtime, layers)."""
        return self.work / "warm-cache"

    @property
    def config(self) -> Path:
        return self.work / "config" / "images.toml"


def bink_argv(ctx: Context, *args: str | Path, cache: Path) -> list[str | Path]:
    return [ctx.bink, *args, "--config", ctx.config, "--cache-dir", cache]


def build_argv(
    ctx: Context, cache: Path, *tags: str, output: Path, arch: str = "amd64"
) -> list[str | Path]:
    return bink_argv(
        ctx,
        "build",
        *tags,
        "--arch",
        arch,
        "--profile",
        ctx.profile,
        "--no-verify",
        "--output",
        output,
        cache=cache,
    )


def runtime_argv(
    ctx: Context, cache: Path, arch: str, profile: str, *extra: str
) -> list[str | Path]:
    """``bink-python runtime build VERSION --arch ARCH --profile PROFILE [EXTRA...]``."""
    return bink_argv(
        ctx, "runtime", "build", VERSION, "--arch", arch, "--profile", profile, *extra, cache=cache
    )


# --------------------------------------------------------------------------- preparation


def prepare_config(ctx: Context, runner: Runner) -> None:
    """The offline example's images.toml/lock and stand-in linkerd-await binaries."""
    cfg = ctx.config.parent
    if (cfg / "ready").exists():
        return
    cfg.mkdir(parents=True, exist_ok=True)
    for name in ("images.toml", "images.lock"):
        shutil.copy2(EXAMPLE / name, cfg / name)
    for arch, cc in (("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc")):
        runner.run(
            [
                cc,
                "-static",
                "-O2",
                "-o",
                cfg / f"linkerd-await-{arch}",
                EXAMPLE / "linkerd-await-standin.c",
            ],
            "prepare",
            record=False,
        )
    (cfg / "ready").write_text("")


def seed_cache(ctx: Context, runner: Runner, cache: Path) -> None:
    """Pin and seed the stand-in linkerd-await binaries into ``cache`` (as build.sh does)."""
    prepare_config(ctx, runner)
    for arch in ("amd64", "arm64"):
        runner.run(
            bink_argv(
                ctx,
                "cache",
                "add",
                "--for",
                f"linkerd-await:0.3.3:{arch}",
                ctx.config.parent / f"linkerd-await-{arch}",
                cache=cache,
            ),
            "prepare",
            record=False,
        )


def find_base(store: Path, arch: str, variant: str = "regular", extra: Sequence[str] = ()) -> Path:
    """rootfs.tar of the base of (Debian 13, arch, variant, extra packages) in ``store``."""
    candidates = []
    for record in sorted((store / "bases").glob("*/record.json")):
        data = json.loads(record.read_text())
        if (data.get("os"), data.get("release"), data.get("arch"), data.get("variant")) != (
            "debian",
            "13",
            arch,
            variant,
        ):
            continue
        wanted = sorted({*get_distro("debian", "13").runtime_packages, *extra})
        if sorted(data.get("key_parts", {}).get("packages", ())) != wanted:
            continue
        if (record.parent / "rootfs.tar").exists():
            candidates.append(record.parent / "rootfs.tar")
    if not candidates:
        raise BenchError(f"no Debian 13 {arch} {variant} base (extra {list(extra)}) in {store}")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def drop_bases_with(store: Path, package: str) -> list[str]:
    """Remove every cached base whose package set has ``package``; returns their keys.

    The security rebuild must rebuild its changed base: a copy of a warm cache that
    already holds one (from an earlier run, or seeded from the test cache) would turn
    the mmdebstrap run it claims to time into a cache hit.
    """
    dropped = []
    for record in sorted((store / "bases").glob("*/record.json")):
        packages = json.loads(record.read_text()).get("key_parts", {}).get("packages", ())
        if package in packages:
            shutil.rmtree(record.parent)
            dropped.append(record.parent.name)
    return dropped


def import_image(runner: Runner, rootfs: Path, name: str, arch: str) -> None:
    """A one-layer image ``name`` in buildah storage from a rootfs tar (stand-in for a pull)."""
    ctr = runner.output(["buildah", "from", "--arch", arch, "scratch"]).strip()
    try:
        runner.run(["buildah", "add", ctr, rootfs, "/"], "import", record=False)
        runner.run(
            ["buildah", "config", "--arch", arch, "--os", "linux", ctr], "import", record=False
        )
        runner.run(["buildah", "commit", "--rm", ctr, name], "import", record=False)
    except BenchError:
        runner.run(["buildah", "rm", ctr], "import", record=False, check=False)
        raise


def context_dir(ctx: Context, store: Path) -> Path:
    """The reference build context: the Dockerfile and the verified CPython tarball."""
    ctxdir = ctx.work / "reference-context"
    tar = ctxdir / f"Python-{VERSION}.tar.xz"
    if not tar.exists():
        ctxdir.mkdir(parents=True, exist_ok=True)
        for cand in (store / "sha256" / SHA256, ctx.test_cache / "sha256" / SHA256):
            if cand.exists() and sha256_file(cand) == SHA256:
                shutil.copyfile(cand, tar)
                break
        else:
            raise BenchError(
                f"CPython {VERSION} source not in {store} or {ctx.test_cache}: "
                f"run `bink-python fetch` first"
            )
    shutil.copy2(BENCH_DIR / "reference" / "Dockerfile", ctxdir / "Dockerfile")
    return ctxdir


def bud_argv(
    ctxdir: Path,
    base: str,
    image: str,
    profile: str,
    *,
    arch: str = "amd64",
    no_cache: bool = False,
) -> list[str | Path]:
    argv: list[str | Path] = [
        "buildah",
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--layers",
    ]
    if no_cache:
        argv.append("--no-cache")
    return [
        *argv,
        "--platform",
        f"linux/{arch}",
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        f"PROFILE={profile}",
        "-t",
        image,
        "-f",
        ctxdir / "Dockerfile",
        ctxdir,
    ]


def rmi(runner: Runner, *names: str) -> None:
    for name in names:
        runner.run(["buildah", "rmi", "-f", name], "cleanup", record=False, check=False)


#: ``[HH:MM:SS ]<== stage subject done in N.Ns`` (the timestamp of non-terminal output)
_STAGE_DONE = re.compile(r"^(?:\d\d:\d\d:\d\d )?<== (\w+)\s+(.*?) done in ([\d.]+)s$")


def stage_breakdown(output: str) -> str:
    """``stage subject: seconds`` of bink-python's progress lines (stages may overlap)."""
    seen: dict[str, str] = {}
    for line in output.splitlines():
        match = _STAGE_DONE.match(line.strip())
        if match:
            seen.setdefault(f"{match[1]} {match[2]}", match[3])
    return "; ".join(f"{k}: {v} s" for k, v in seen.items())


#: The store kinds a warm cache takes from the test cache (entries built there, same keys).
SEEDED_KINDS = ("bases", "runtimes", "buildroots", "ld-caches")


def warm_from_test_cache(ctx: Context, runner: Runner) -> None:
    """When no cold run left a warm cache, make one from the test cache's store (hard
    links: entries are never written in place, so the test cache is not modified): the
    bases and runtimes built there are the example family's (the same inputs, the same
    keys), and whatever is missing (a release runtime never built there) is built."""
    store = ctx.test_cache
    if (ctx.warm_cache / "oci" / "index.json").exists() or not (store / "runtimes").is_dir():
        return
    tmp = ctx.work / "warm-cache.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for kind in ("sha256", *SEEDED_KINDS):
        if (store / kind).is_dir():
            runner.run(["cp", "-al", store / kind, tmp / kind], "prepare", record=False)
    seed_cache(ctx, runner, tmp)
    runner.run(build_argv(ctx, tmp, TAG, output=tmp / "oci"), "prepare", record=False)
    shutil.rmtree(ctx.warm_cache, ignore_errors=True)
    tmp.rename(ctx.warm_cache)


def ensure_warm(ctx: Context) -> None:
    if not (ctx.warm_cache / "oci" / "index.json").exists():
        raise BenchError("no warm cache: run the cold comparison first (--only cold)")


def smoke_reference(ctx: Context, runner: Runner) -> Outcome:
    """Smoke: the buildah path (import, cold bud, cached bud) on a tiny image."""
    ctxdir = ctx.work / "smoke-context"
    ctxdir.mkdir(parents=True, exist_ok=True)
    (ctxdir / "smoke.txt").write_text("bink-python bench smoke\n")
    shutil.copy2(BENCH_DIR / "reference" / "smoke.Dockerfile", ctxdir / "Dockerfile")
    rootfs = ctxdir / "rootfs.tar"
    files = ctxdir / "rootfs"
    files.mkdir(exist_ok=True)
    (files / "etc").mkdir(exist_ok=True)
    (files / "etc" / "os-release").write_text("ID=bench-smoke\n")
    tarball.write_tree_tar_file(files, rootfs, epoch=EPOCH)
    base = "localhost/bink-bench-smoke-base:latest"
    image = "localhost/bink-bench-smoke-ref:latest"
    rmi(runner, image, base)
    import_image(runner, rootfs, base, "amd64")
    argv = bud_argv(ctxdir, base, image, "fast")
    cold = runner.run([*argv[:7], "--no-cache", *argv[7:]], "smoke-reference").seconds
    again = runner.run(argv, "smoke-reference").seconds
    return Outcome(
        key="4-noop",
        title="",
        status="smoke",
        figures=(
            Figure("smoke: tiny reference image, cold", "s", (cold,)),
            Figure("smoke: tiny reference image, cached", "s", (again,)),
        ),
        commands=tuple(runner.commands),
        reason="smoke mode: ours needs a warm cache of a real build",
    )


def maybe_base(store: Path, arch: str) -> list[Path]:
    try:
        return [find_base(store, arch)]
    except BenchError:
        return []


def link_missing_entries(ctx: Context, runner: Runner) -> None:
    for kind in SEEDED_KINDS:
        src = ctx.test_cache / kind
        if not src.is_dir():
            continue
        for entry in sorted(src.iterdir()):
            dest = ctx.warm_cache / kind / entry.name
            if entry.name.startswith(".") or not entry.is_dir() or dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            runner.run(["cp", "-al", entry, dest], "prepare", record=False)


def has_image(runner: Runner, name: str) -> bool:
    try:
        runner.output(["buildah", "inspect", "--type", "image", name])
    except BenchError:
        return False
    return True
