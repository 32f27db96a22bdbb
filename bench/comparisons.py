"""The eight comparisons: ours (bink-python) against the reference approach.

Each ``run_*`` function takes a :class:`Context` and returns an
:class:`~bench.harness.Outcome`. State shared between comparisons (the warm cache
of the cold build, imported base images, the reference image) lives under
``Context.work`` with fixed names; each comparison prepares what it needs when it
is missing (untimed) so any subset can run with ``--only``.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bink_python.host.distro import get_distro
from bink_python.image.assemble import ImageSpec, LayerSource, build_image, rfc3339
from bink_python.image.sizes import image_sizes
from bink_python.oci import compression, tarball
from bink_python.oci.layout import Layout
from bink_python.store.store import Store, sha256_file

from . import speed
from .harness import BenchError, Figure, Outcome, Runner, ratio

VERSION = "3.13.15"
SHA256 = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
TAG = "3.13"
DISTROLESS_TAG = "3.13-distroless"
EPOCH = 1_767_225_600
EXTRA_PACKAGE = "less"  # the package the "security rebuild" adds to the base
BASE_IMAGE = "localhost/bink-bench-base"
REF_IMAGE = "localhost/bink-bench-ref"

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
EXAMPLE = REPO / "examples" / "offline"


@dataclass(frozen=True)
class Context:
    work: Path  # scratch space for caches, layouts, logs
    smoke: bool
    runs: int
    cap: float  # seconds: the time cap of emulated builds
    profile: str  # runtime profile of comparisons 2-4 and 6 ("fast" or "release")
    test_cache: Path  # a warm store (bases, fast runtimes) reused where the brief allows
    bink: str  # the bink-python command
    speed_profile: str = "release"  # the runtime profile comparison 7 measures

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


def _bink(ctx: Context, *args: str | Path, cache: Path) -> list[str | Path]:
    return [ctx.bink, *args, "--config", ctx.config, "--cache-dir", cache]


def _build_argv(
    ctx: Context, cache: Path, *tags: str, output: Path, arch: str = "amd64"
) -> list[str | Path]:
    return _bink(
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


def _runtime_argv(
    ctx: Context, cache: Path, arch: str, profile: str, *extra: str
) -> list[str | Path]:
    """``bink-python runtime build VERSION --arch ARCH --profile PROFILE [EXTRA...]``."""
    return _bink(
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
            _bink(
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


# --------------------------------------------------------------------------- 8 assembly


def run_assembly(ctx: Context) -> Outcome:
    """Assembling one image (compress + blobs + manifest) vs ``tar c | gzip -6``."""
    runner = ctx.runner
    src = BENCH_DIR.parent / "src" if ctx.smoke else Path("/usr/lib/gcc")
    ours: list[float] = []
    shell: list[float] = []
    warm: list[float] = []
    sizes: dict[str, float] = {}
    for i in range(ctx.runs):
        tmp = ctx.work / f"assembly-{i}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        start = time.monotonic()
        sha, size = tarball.write_tree_tar_file(src, tmp / "layer.tar", epoch=EPOCH)
        layer = LayerSource(tmp / "layer.tar", "sha256:" + sha, "bench")
        spec = ImageSpec("amd64", (layer,), ("LANG=C.UTF-8",), ("python3",), "", {}, rfc3339(EPOCH))
        store = Store(tmp / "store")
        image = build_image(spec, Layout(tmp / "oci"), store)
        ours.append(time.monotonic() - start)
        Layout(tmp / "oci").set_refs({"smoke": image.descriptor})
        start = time.monotonic()
        build_image(spec, Layout(tmp / "oci-warm"), store)
        warm.append(time.monotonic() - start)
        shell.append(
            runner.run(
                ["sh", "-c", f"tar c -C {src} . | gzip -6 > {tmp}/shell.tgz"], "assembly"
            ).seconds
        )
        sizes = {
            "tar": size / 1e6,
            "ours": image.layers[0].size / 1e6,
            "shell": (tmp / "shell.tgz").stat().st_size / 1e6,
        }
        if not ctx.smoke:
            shutil.rmtree(tmp)
    return Outcome(
        key="8-assembly",
        title="",
        status="smoke" if ctx.smoke else "measured",
        figures=(
            Figure(
                "ours: deterministic tar + assemble (gzip by libdeflate -12, blobs, config, "
                "manifest)",
                "s",
                tuple(ours),
            ),
            Figure("ours: assemble again, compressed layer from the store", "s", tuple(warm)),
            Figure("floor: `tar c DIR | gzip -6`", "s", tuple(shell)),
            Figure("uncompressed tar", "MB", (sizes["tar"],)),
            Figure("ours: gzip layer", "MB", (sizes["ours"],)),
            Figure("floor: tar.gz", "MB", (sizes["shell"],)),
        ),
        ratios=(ratio("overhead: ours / floor", ours, shell),),
        commands=(f"python -m bench --only assembly --runs {ctx.runs}", *runner.commands),
        notes=(
            f"file set: {src} (the same directory for both)",
            "ours compresses with libdeflate at level 12 (compression.GZIP_LEVEL): smaller "
            "layers than gzip -6, bought with compression time paid once per layer (the "
            "store keeps the blob; 'assemble again' is that case)",
        ),
    )


# --------------------------------------------------------------------------- 2 cold build


def run_cold(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "2-cold",
            "",
            "not measured",
            reason="smoke mode: a cold build compiles CPython (minutes); "
            "the buildah path is exercised by the no-op comparison",
        )
    runner = ctx.runner
    ours: list[float] = []
    ref: list[float] = []
    stages: list[str] = []
    for i in range(ctx.runs):
        cache = ctx.work / f"cold-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        seed_cache(ctx, runner, cache)
        done = runner.run(_build_argv(ctx, cache, TAG, output=cache / "oci"), "cold-ours")
        ours.append(done.seconds)
        stages.append(
            f"ours, run {i + 1}, stages (base and runtime run concurrently): "
            + stage_breakdown(done.output)
        )
        # the reference starts FROM the same base, imported as if pulled (not timed)
        base = f"{BASE_IMAGE}:debian13-amd64"
        rmi(runner, REF_IMAGE + ":amd64", base)
        import_image(runner, find_base(cache, "amd64"), base, "amd64")
        ctxdir = context_dir(ctx, cache)
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64", ctx.profile, no_cache=True),
                "cold-reference",
            ).seconds
        )
        if i < ctx.runs - 1:
            shutil.rmtree(cache)
        else:
            shutil.rmtree(ctx.warm_cache, ignore_errors=True)
            cache.rename(ctx.warm_cache)
    return Outcome(
        key="2-cold",
        title="",
        status="measured",
        figures=(
            Figure(f"reference: `buildah bud --no-cache` ({ctx.profile})", "s", tuple(ref)),
            Figure(
                f"ours: `bink-python build {TAG} --arch amd64` ({ctx.profile}), empty cache",
                "s",
                tuple(ours),
            ),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
        notes=(
            "ours includes fetching CPython through the Debian mirror, building the base "
            "with mmdebstrap, the build root, the compile and assembly (not verification: "
            "`--no-verify`, the reference verifies nothing either)",
            "the reference starts FROM the same Debian 13 base already in buildah storage "
            "(importing it stands in for a pull and is not timed)",
            *stages,
        ),
    )


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
_SEEDED_KINDS = ("bases", "runtimes", "buildroots", "ld-caches")


def _warm_from_test_cache(ctx: Context, runner: Runner) -> None:
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
    for kind in ("sha256", *_SEEDED_KINDS):
        if (store / kind).is_dir():
            runner.run(["cp", "-al", store / kind, tmp / kind], "prepare", record=False)
    seed_cache(ctx, runner, tmp)
    runner.run(_build_argv(ctx, tmp, TAG, output=tmp / "oci"), "prepare", record=False)
    shutil.rmtree(ctx.warm_cache, ignore_errors=True)
    tmp.rename(ctx.warm_cache)


def _ensure_warm(ctx: Context) -> None:
    if not (ctx.warm_cache / "oci" / "index.json").exists():
        raise BenchError("no warm cache: run the cold comparison first (--only cold)")


# --------------------------------------------------------------------------- 4 no-op


def run_noop(ctx: Context) -> Outcome:
    runner = ctx.runner
    if ctx.smoke:
        return _smoke_reference(ctx, runner)
    _ensure_warm(ctx)
    ctxdir = context_dir(ctx, ctx.warm_cache)
    base = f"{BASE_IMAGE}:debian13-amd64"
    ours: list[float] = []
    ref: list[float] = []
    for _ in range(ctx.runs):
        ours.append(
            runner.run(
                _build_argv(ctx, ctx.warm_cache, TAG, output=ctx.warm_cache / "oci"), "noop-ours"
            ).seconds
        )
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64", ctx.profile), "noop-reference"
            ).seconds
        )
    return Outcome(
        key="4-noop",
        title="",
        status="measured",
        figures=(
            Figure("reference: `buildah bud --layers` again", "s", tuple(ref)),
            Figure(f"ours: `bink-python build {TAG}` again", "s", tuple(ours)),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
    )


def _smoke_reference(ctx: Context, runner: Runner) -> Outcome:
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


# --------------------------------------------------------------------------- 3 security


def security_argv(ctx: Context, cache: Path) -> list[str | Path]:
    """``bink-python build`` of the tag with the extra package in every base."""
    return [*_build_argv(ctx, cache, TAG, output=cache / "oci"), "--extra-package", EXTRA_PACKAGE]


def run_security(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "3-security",
            "",
            "not measured",
            reason="smoke mode: the changed base is an mmdebstrap build (minutes)",
        )
    runner = ctx.runner
    _warm_from_test_cache(ctx, runner)
    _ensure_warm(ctx)
    ctxdir = context_dir(ctx, ctx.warm_cache)
    ours: list[float] = []
    ref: list[float] = []
    stages: list[str] = []
    for i in range(ctx.runs):
        cache = ctx.work / f"security-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        runner.run(["cp", "-a", ctx.warm_cache, cache], "prepare", record=False)
        drop_bases_with(cache, EXTRA_PACKAGE)
        done = runner.run(security_argv(ctx, cache), "security-ours", cwd=REPO)
        ours.append(done.seconds)
        stages.append(f"ours, run {i + 1}, stages: " + stage_breakdown(done.output))
        base = f"{BASE_IMAGE}:debian13-amd64-security"
        rmi(runner, base)
        import_image(runner, find_base(cache, "amd64", extra=(EXTRA_PACKAGE,)), base, "amd64")
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64-security", ctx.profile),
                "security-reference",
            ).seconds
        )
        shutil.rmtree(cache)
    return Outcome(
        key="3-security",
        title="",
        status="measured",
        figures=(
            Figure(
                "reference: `buildah bud --layers`, new base (cache invalidated)", "s", tuple(ref)
            ),
            Figure(f"ours: `bink-python build {TAG}`, new base, runtime reused", "s", tuple(ours)),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
        notes=(
            f"the base changed by one added package ({EXTRA_PACKAGE}): `bink-python build "
            "--extra-package` adds it to every base",
            "ours includes rebuilding the base with mmdebstrap; the reference gets the new "
            "base for free (imported, untimed), as a pulled upstream image would be",
            *stages,
        ),
    )


# --------------------------------------------------------------------------- 5 arm64


def run_arm64(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "5-arm64", "", "not measured", reason="smoke mode: both sides compile CPython for arm64"
        )
    _ensure_warm(ctx)
    runner = ctx.runner
    cache = ctx.work / "arm64-cache"
    shutil.rmtree(cache, ignore_errors=True)
    runner.run(["cp", "-a", ctx.warm_cache, cache], "prepare", record=False)
    if ctx.profile != "fast":  # the cross build's build Python: amd64 of the same profile
        runner.run(_runtime_argv(ctx, cache, "amd64", "fast"), "prepare", record=False)
    ours = runner.run(_runtime_argv(ctx, cache, "arm64", "fast", "--force"), "arm64-ours")
    base = f"{BASE_IMAGE}:debian13-arm64"
    rmi(runner, base, REF_IMAGE + ":arm64")
    stores = (cache, ctx.test_cache)
    rootfs = next((p for s in stores for p in _maybe_base(s, "arm64")), None)
    if rootfs is None:
        runner.run(
            _bink(ctx, "base", "build", "--arch", "arm64", cache=cache), "prepare", record=False
        )
        rootfs = find_base(cache, "arm64")
    import_image(runner, rootfs, base, "arm64")
    ref = runner.run(
        bud_argv(
            context_dir(ctx, cache), base, REF_IMAGE + ":arm64", "fast", arch="arm64", no_cache=True
        ),
        "arm64-reference",
        cap=ctx.cap,
    )
    shutil.rmtree(cache)
    return Outcome(
        key="5-arm64",
        title="",
        status="measured",
        figures=(
            Figure(
                "reference: `buildah bud --platform linux/arm64` under qemu (fast)",
                "s",
                (ref.seconds,),
                ref.capped,
            ),
            Figure(
                "ours: `bink-python runtime build --arch arm64` cross-compiled (fast)",
                "s",
                (ours.seconds,),
            ),
        ),
        ratios=(ratio("reference / ours", [ref.seconds], [ours.seconds], lower_bound=ref.capped),),
        commands=tuple(runner.commands),
        reason=f"the reference hit the {ctx.cap:.0f} s cap and was stopped" if ref.capped else "",
        notes=(
            "one run (capped emulated build); ours is the runtime stage with `--force` "
            "(the arm64 cross build root included when not cached; assembly of an arm64 "
            "image adds seconds)",
        ),
    )


def _maybe_base(store: Path, arch: str) -> list[Path]:
    try:
        return [find_base(store, arch)]
    except BenchError:
        return []


# --------------------------------------------------------------------------- 6 sizes


#: Published registry figures (compressed, amd64), quoted in RESULTS.md, not measured here.
ANCHORS = (
    "published, not measured here (registry figures, compressed, amd64, no bytecode): "
    "the official `python:3.13-slim-trixie` 43.0 MB (Debian layer 29.8 MB, runtime "
    "packages 1.3 MB, Python 11.9 MB; about 118 MB unpacked); Google's distroless "
    "`python3-debian13` about 21 MB (Debian's 3.13.5); Chainguard's python about 24 MB",
)

#: Where layers are unpacked for the timing: a tmpfs (no disk in the measurement).
UNPACK_ROOT = Path("/dev/shm")


@dataclass(frozen=True)
class Measured:
    """One image of comparison 6: its sizes and what its layers are."""

    label: str
    compressed: int
    unpacked: int
    layers: tuple[tuple[str, str, int], ...]  # (media type, blob path, compressed size)


def measure_image(
    layout: Path, ref: str, label: str, algorithm: str | None = None, arch: str = "amd64"
) -> Measured:
    """Sizes of the ``arch`` image ``ref`` (the ``algorithm`` instance) of an OCI layout."""
    lay = Layout(layout)
    found = image_sizes(lay, ref, arch, algorithm, top=0)
    return Measured(
        label,
        found.compressed_size,
        found.unpacked_size,
        tuple(
            (x.media_type, str(lay.blob_path(x.digest)), x.compressed_size) for x in found.layers
        ),
    )


def unpack_argv(image: Measured, dest: Path) -> list[str]:
    """One shell command: decompress and untar every layer in order into ``dest``."""
    steps = []
    for media_type, blob, _ in image.layers:
        tool = {"gzip": "gzip -dc", "zstd": "zstd -dcq", "none": "cat"}[
            compression.algorithm_of(media_type)
        ]
        steps.append(f"{tool} {blob} | tar -x -C {dest}")
    return ["sh", "-c", "set -e; " + "; ".join(steps)]


def time_unpack(runner: Runner, image: Measured, runs: int) -> tuple[float, ...]:
    """Seconds to unpack ``image``'s layers into a fresh directory on a tmpfs, per run."""
    if shutil.which("zstd") is None:
        raise BenchError("the zstd command is missing: apt-get install zstd")
    seconds = []
    for run in range(runs):
        dest = Path(tempfile.mkdtemp(prefix="bink-unpack-", dir=UNPACK_ROOT))
        try:
            done = runner.run(unpack_argv(image, dest), "sizes-unpack", record=run == 0)
            seconds.append(done.seconds)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
    return tuple(seconds)


def zstd_config(ctx: Context) -> Path:
    """The bench images.toml with ``compression = ["gzip", "zstd"]`` (and its lock)."""
    cfg = ctx.work / "config-zstd"
    cfg.mkdir(parents=True, exist_ok=True)
    text = ctx.config.read_text()
    if "compression" not in text:
        text = text.replace("[family]\n", '[family]\ncompression = ["gzip", "zstd"]\n', 1)
    (cfg / "images.toml").write_text(text)
    shutil.copy2(ctx.config.parent / "images.lock", cfg / "images.lock")
    return cfg / "images.toml"


def _reference_layouts(ctx: Context, runner: Runner, name: str) -> dict[str, Path]:
    """The reference image copied from buildah storage: gzip (as built) and zstd -19."""
    out = {}
    for algorithm in ("gzip", "zstd"):
        layout = ctx.work / f"reference-oci-{algorithm}"
        shutil.rmtree(layout, ignore_errors=True)
        argv = ["skopeo", "copy"]
        if algorithm == "zstd":
            argv += ["--dest-compress-format", "zstd", "--dest-compress-level", "19"]
        runner.run([*argv, f"containers-storage:{name}", f"oci:{layout}:ref"], "sizes-reference")
        out[algorithm] = layout
    return out


def _family_estimate(regular: Measured, distroless: Measured, versions: int) -> str:
    """Bytes to pull every supported tag on one node of the images' arch, from the 3.13
    layers measured."""
    base_r, *per_version, extra = (x[2] for x in regular.layers)  # extra: linkerd-await
    base_d = distroless.layers[0][2]
    # per version: the runtime (shared by its regular and distroless tags) and the
    # regular image's loader cache; the bases and linkerd-await are shared by every tag
    total = base_r + base_d + versions * sum(per_version) + extra
    separately = versions * (regular.compressed + distroless.compressed)
    return (
        f"{total / 1e6:.1f} MB for the {2 * versions} supported tags ({versions} regular, "
        f"{versions} distroless) against {separately / 1e6:.1f} MB pulled one by one"
    )


def run_sizes(ctx: Context) -> Outcome:
    runner = ctx.runner
    images: list[Measured] = []
    notes: list[str] = []
    arm64_figures: list[Figure] = []
    arm64_ratios: list[Figure] = []
    arm64_notes: list[str] = []
    if ctx.smoke:
        tiny = ctx.work / "assembly-0" / "oci"
        if not (tiny / "index.json").exists():
            run_assembly(ctx)
        lay = Layout(tiny)
        src = ctx.work / "assembly-0" / "layer.tar"
        diff_id = "sha256:" + sha256_file(src)
        spec = ImageSpec(
            "amd64",
            (LayerSource(src, diff_id, "bench"),),
            ("LANG=C.UTF-8",),
            ("python3",),
            "",
            {},
            rfc3339(EPOCH),
        )
        zst = build_image(spec, lay, Store(ctx.work / "assembly-0" / "store"), "zstd")
        lay.set_refs({"smoke-zstd": zst.descriptor})
        images.append(measure_image(tiny, "smoke", "smoke: tiny assembled image, gzip"))
        images.append(measure_image(tiny, "smoke-zstd", "smoke: tiny assembled image, zstd"))
        ref_name = "localhost/bink-bench-smoke-ref:latest"
        ref_label = "smoke: tiny reference image"
        if not _has_image(runner, ref_name):
            _smoke_reference(ctx, runner)
    else:
        _warm_from_test_cache(ctx, runner)
        _ensure_warm(ctx)
        config = zstd_config(ctx)
        out = ctx.warm_cache / "oci-sizes"
        shutil.rmtree(out, ignore_errors=True)
        argv = _build_argv(ctx, ctx.warm_cache, TAG, DISTROLESS_TAG, output=out)
        argv[argv.index("--config") + 1] = config
        done = runner.run(argv, "sizes-ours")
        notes.append("ours, stages: " + stage_breakdown(done.output))
        for tag, kind in ((TAG, "regular"), (DISTROLESS_TAG, "distroless")):
            for algorithm in ("gzip", "zstd"):
                images.append(
                    measure_image(out, tag, f"ours: {tag} {kind} (amd64), {algorithm}", algorithm)
                )
        arm64_figures, arm64_ratios, arm64_notes = _arm64_sizes(ctx, runner, config, images)
        ref_name = REF_IMAGE + ":amd64"
        ref_label = "reference (amd64)"
        if ctx.profile == "release" and _has_image(runner, REF_IMAGE + ":amd64-release"):
            ref_name, ref_label = REF_IMAGE + ":amd64-release", "reference (amd64, release)"
    for algorithm, layout in _reference_layouts(ctx, runner, ref_name).items():
        images.append(measure_image(layout, "ref", f"{ref_label}, {algorithm}"))
    by_label = {m.label: m for m in images}
    figures: list[Figure] = []
    for m in images:
        figures.append(
            Figure(
                f"{m.label}: compressed (layers + config + manifest)", "MB", (m.compressed / 1e6,)
            )
        )
        figures.append(
            Figure(f"{m.label}: unpacked (layer tars + config)", "MB", (m.unpacked / 1e6,))
        )
        notes.append(
            f"{m.label}: compressed layers (MB): "
            + ", ".join(f"{x[2] / 1e6:.2f}" for x in m.layers)
        )
    unpack: dict[str, tuple[float, ...]] = {}
    for m in images:
        unpack[m.label] = time_unpack(runner, m, max(ctx.runs, 3))
        figures.append(
            Figure(f"{m.label}: unpack (decompress + untar to tmpfs)", "s", unpack[m.label])
        )
    figures += arm64_figures
    ratios: list[Figure] = list(arm64_ratios)
    ref_gzip = by_label[f"{ref_label}, gzip"]
    for m in images:
        if m.label.endswith(", zstd"):
            gz = by_label[m.label.removesuffix(", zstd") + ", gzip"]
            ratios.append(ratio(f"{m.label} / gzip: compressed", [m.compressed], [gz.compressed]))
            ratios.append(
                ratio(f"{m.label} / gzip: unpack time", unpack[m.label], unpack[gz.label])
            )
        if not m.label.startswith(ref_label):
            ratios.append(
                ratio(
                    f"{ref_gzip.label} / {m.label}: compressed",
                    [ref_gzip.compressed],
                    [m.compressed],
                )
            )
    if not ctx.smoke:
        regular = by_label[f"ours: {TAG} regular (amd64), gzip"]
        distroless = by_label[f"ours: {DISTROLESS_TAG} distroless (amd64), gzip"]
        both = regular.compressed + distroless.compressed
        pulled = {x[1] for x in regular.layers} | {x[1] for x in distroless.layers}
        sizes_by_blob = {x[1]: x[2] for m in (regular, distroless) for x in m.layers}
        notes.append(
            f"layer sharing, measured: pulling {TAG} and {DISTROLESS_TAG} (gzip) on one node "
            f"downloads {sum(sizes_by_blob[b] for b in pulled) / 1e6:.1f} MB of layers, "
            f"not {both / 1e6:.1f} MB: the runtime and linkerd-await layers are the same "
            "blobs in both"
        )
        for algorithm in ("gzip", "zstd"):
            r = by_label[f"ours: {TAG} regular (amd64), {algorithm}"]
            d = by_label[f"ours: {DISTROLESS_TAG} distroless (amd64), {algorithm}"]
            notes.append(
                f"whole supported family on one amd64 node, {algorithm}, estimated from the "
                f"3.13 layers (other versions' runtimes taken as the size of 3.13's): "
                + _family_estimate(r, d, 4)
            )
        notes += arm64_notes
    notes += [
        *ANCHORS,
        "sizes are deterministic: one measurement; unpack times: each image's layers "
        "decompressed with the `gzip`/`zstd` commands and untarred (GNU tar) into a fresh "
        f"directory under {UNPACK_ROOT} (tmpfs), blobs in the page cache (the network half "
        "of a pull is not in it)",
        "the reference image is copied from buildah storage with skopeo: gzip as built, and "
        "recompressed by skopeo with zstd level 19 for the zstd figures",
        f"runtime profile {ctx.profile}; ours ship the standard library's bytecode "
        "(compiled at runtime-build time), the reference none (its Dockerfile deletes "
        "`*.pyc`); regular images carry a loader-cache layer (`/etc/ld.so.cache`)",
    ]
    return Outcome(
        key="6-sizes",
        title="",
        status="smoke" if ctx.smoke else "measured",
        figures=tuple(figures),
        ratios=tuple(ratios),
        commands=tuple(runner.commands),
        notes=tuple(notes),
    )


def _arm64_sizes(
    ctx: Context, runner: Runner, config: Path, amd64: list[Measured]
) -> tuple[list[Figure], list[Figure], list[str]]:
    """The same two tags built for arm64 (cross-compiled runtime of the profile, base
    under qemu), compressed sizes against amd64's: the "within 5%" of the size issue.
    Entries the test cache has and the warm cache lacks (a release runtime built there
    later) are hard-linked in first, as :func:`_warm_from_test_cache` does."""
    _link_missing_entries(ctx, runner)
    out = ctx.warm_cache / "oci-sizes-arm64"
    shutil.rmtree(out, ignore_errors=True)
    argv = _build_argv(ctx, ctx.warm_cache, TAG, DISTROLESS_TAG, output=out, arch="arm64")
    argv[argv.index("--config") + 1] = config
    runner.run(argv, "sizes-ours-arm64")
    figures: list[Figure] = []
    ratios: list[Figure] = []
    measured: dict[tuple[str, str], Measured] = {}
    by_label = {m.label: m for m in amd64}
    for tag, kind in ((TAG, "regular"), (DISTROLESS_TAG, "distroless")):
        for algorithm in ("gzip", "zstd"):
            label = f"ours: {tag} {kind} (arm64), {algorithm}"
            arm = measure_image(out, tag, label, algorithm, arch="arm64")
            measured[(kind, algorithm)] = arm
            amd = by_label[f"ours: {tag} {kind} (amd64), {algorithm}"]
            figures.append(
                Figure(
                    f"{label}: compressed (layers + config + manifest)",
                    "MB",
                    (arm.compressed / 1e6,),
                )
            )
            ratios.append(ratio(f"{label} / amd64: compressed", [arm.compressed], [amd.compressed]))
    notes = [
        f"whole supported family on one arm64 node, {algorithm}, estimated from the 3.13 "
        "layers (other versions' runtimes taken as the size of 3.13's): "
        + _family_estimate(measured[("regular", algorithm)], measured[("distroless", algorithm)], 4)
        for algorithm in ("gzip", "zstd")
    ]
    return figures, ratios, notes


def _link_missing_entries(ctx: Context, runner: Runner) -> None:
    for kind in _SEEDED_KINDS:
        src = ctx.test_cache / kind
        if not src.is_dir():
            continue
        for entry in sorted(src.iterdir()):
            dest = ctx.warm_cache / kind / entry.name
            if entry.name.startswith(".") or not entry.is_dir() or dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            runner.run(["cp", "-al", entry, dest], "prepare", record=False)


def _has_image(runner: Runner, name: str) -> bool:
    try:
        runner.output(["buildah", "inspect", "--type", "image", name])
    except BenchError:
        return False
    return True


# --------------------------------------------------------------------------- 7 speed


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
        runner.run(_runtime_argv(ctx, speed_cache, "amd64", "release"), "speed-runtime")
        return _speed_container(ctx, runner, site)
    runtime_tar = release[0][0] / "runtimes" / release[0][1]["key"] / "runtime.tar"
    record = release[0][1]
    stores = (speed_cache, ctx.warm_cache, ctx.test_cache)
    rootfs = next((p for s in stores if s.exists() for p in _maybe_base(s, "amd64")), None)
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


def _by_interpreters(ctx: Context) -> Outcome:
    raise BenchError(
        "measured by `python -m bench.interpreters` (several interpreters in one root "
        "filesystem): see its docstring and the commands in RESULTS.md"
    )


def _by_instructions(ctx: Context) -> Outcome:
    raise BenchError(
        "measured by `python -m bench.instructions` (callgrind in one root filesystem): see "
        "its docstring and the command in RESULTS.md"
    )


def _by_release_builds(ctx: Context) -> Outcome:
    raise BenchError(
        "read from two finished release builds by `python -m bench.release_builds` "
        "(about an hour each here): see its docstring and the command in RESULTS.md"
    )


COMPARISONS: dict[str, tuple[str, Callable[[Context], Outcome]]] = {
    "assembly": ("8. Assembly overhead: one image vs `tar c | gzip -6`", run_assembly),
    "sizes": (
        "6. Image size and unpack time: ours (regular, distroless; gzip, zstd) vs the reference",
        run_sizes,
    ),
    "noop": ("4. No-op rebuild", run_noop),
    "cold": ("2. Cold build of one tag (amd64), empty caches", run_cold),
    "security": ("3. Security rebuild: base changed, Python not", run_security),
    "arm64": ("5. arm64: cross-compiled vs emulated (qemu), fast profile", run_arm64),
    "speed": (
        "7. Python speed: our release runtime vs Debian's python3.13 and the reference",
        run_speed,
    ),
    # measured by bench/interpreters.py, never by the harness's run (not in __main__.ORDER)
    "startup": (
        "9. Start-up as uid 10000 on a read-only root filesystem: ours vs Debian's "
        "python3.13 vs the reference",
        _by_interpreters,
    ),
    "changes": (
        "10. The cost of each interpreter change on its own (static core, BOLT, frame pointers)",
        _by_interpreters,
    ),
    "frame-pointers": (
        "12. The cost of frame pointers: one build with and without them",
        _by_interpreters,
    ),
    "choices": (
        "13. Build choices where ours differed from Debian's python3.13, each on its own: the "
        "stack protector's level, built-in start-up modules, a PIE executable, "
        "_FORTIFY_SOURCE",
        _by_interpreters,
    ),
    "eval-loop-gcse": (
        "15. The eval loop's file without GCSE (GCC's advice for computed-goto dispatch): "
        "recipe 9 against recipe 8",
        _by_interpreters,
    ),
    "compiler": (
        "16. The compiler: clang 19 against GCC 14, the same recipe otherwise",
        _by_interpreters,
    ),
    "instructions": (
        "14. Instructions executed (callgrind): ours vs Debian's python3.13 and build "
        "candidates, where the work differs",
        _by_instructions,
    ),
    # read from two finished release builds by bench/release_builds.py
    "release-builds": (
        "11. Release runtime build time: amd64 native vs arm64 cross-compiled, its PGO "
        "profile run under qemu-user",
        _by_release_builds,
    ),
}

#: The order of RESULTS.md (the issue's numbering).
KEYS = {
    "2-cold": "cold",
    "3-security": "security",
    "4-noop": "noop",
    "5-arm64": "arm64",
    "6-sizes": "sizes",
    "7-speed": "speed",
    "8-assembly": "assembly",
    "9-startup": "startup",
    "10-changes": "changes",
    "11-release-builds": "release-builds",
    "12-frame-pointers": "frame-pointers",
    "13-choices": "choices",
    "14-instructions": "instructions",
    "15-eval-loop-gcse": "eval-loop-gcse",
    "16-compiler": "compiler",
}
