"""Image size and unpack time: ours (regular, distroless) against the reference."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bink_python.image.assemble import ImageSpec, LayerSource, build_image, rfc3339
from bink_python.image.sizes import image_sizes
from bink_python.oci import compression
from bink_python.oci.layout import Layout
from bink_python.store.store import Store, sha256_file

from ..harness import BenchError, Figure, Outcome, Runner, ratio
from . import assembly
from .common import (
    DISTROLESS_TAG,
    EPOCH,
    REF_IMAGE,
    TAG,
    Context,
    build_argv,
    ensure_warm,
    has_image,
    link_missing_entries,
    smoke_reference,
    stage_breakdown,
    warm_from_test_cache,
)

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


#: What the sizes comparison states beside its figures (its method and the anchors).
METHOD_NOTES = (
    *ANCHORS,
    "sizes are deterministic: one measurement; unpack times: each image's layers "
    "decompressed with the `gzip`/`zstd` commands and untarred (GNU tar) into a fresh "
    f"directory under {UNPACK_ROOT} (tmpfs), blobs in the page cache (the network half "
    "of a pull is not in it)",
    "the reference image is copied from buildah storage with skopeo: gzip as built, and "
    "recompressed by skopeo with zstd level 19 for the zstd figures",
)


def run_sizes(ctx: Context) -> Outcome:
    runner = ctx.runner
    notes: list[str] = []
    arm64_figures: list[Figure] = []
    arm64_ratios: list[Figure] = []
    arm64_notes: list[str] = []
    if ctx.smoke:
        images, ref_name, ref_label = _smoke_images(ctx, runner)
    else:
        images, config = _our_images(ctx, runner, notes)
        arm64_figures, arm64_ratios, arm64_notes = _arm64_sizes(ctx, runner, config, images)
        ref_name = REF_IMAGE + ":amd64"
        ref_label = "reference (amd64)"
        if ctx.profile == "release" and has_image(runner, REF_IMAGE + ":amd64-release"):
            ref_name, ref_label = REF_IMAGE + ":amd64-release", "reference (amd64, release)"
    for algorithm, layout in _reference_layouts(ctx, runner, ref_name).items():
        images.append(measure_image(layout, "ref", f"{ref_label}, {algorithm}"))
    figures, unpack = _size_figures(runner, images, notes, max(ctx.runs, 3))
    figures += arm64_figures
    ratios = [*arm64_ratios, *_size_ratios(images, unpack, ref_label)]
    if not ctx.smoke:
        notes += _family_notes({m.label: m for m in images})
        notes += arm64_notes
    notes += [
        *METHOD_NOTES,
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


def _smoke_images(ctx: Context, runner: Runner) -> tuple[list[Measured], str, str]:
    """Smoke: the tiny assembled image (gzip, zstd) and the tiny reference's name and label."""
    tiny = ctx.work / "assembly-0" / "oci"
    if not (tiny / "index.json").exists():
        assembly.run_assembly(ctx)
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
    images = [
        measure_image(tiny, "smoke", "smoke: tiny assembled image, gzip"),
        measure_image(tiny, "smoke-zstd", "smoke: tiny assembled image, zstd"),
    ]
    ref_name = "localhost/bink-bench-smoke-ref:latest"
    if not has_image(runner, ref_name):
        smoke_reference(ctx, runner)
    return images, ref_name, "smoke: tiny reference image"


def _our_images(ctx: Context, runner: Runner, notes: list[str]) -> tuple[list[Measured], Path]:
    """Build both tags in gzip and zstd from the warm cache and measure the four images."""
    warm_from_test_cache(ctx, runner)
    ensure_warm(ctx)
    config = zstd_config(ctx)
    out = ctx.warm_cache / "oci-sizes"
    shutil.rmtree(out, ignore_errors=True)
    argv = build_argv(ctx, ctx.warm_cache, TAG, DISTROLESS_TAG, output=out)
    argv[argv.index("--config") + 1] = config
    done = runner.run(argv, "sizes-ours")
    notes.append("ours, stages: " + stage_breakdown(done.output))
    images = [
        measure_image(out, tag, f"ours: {tag} {kind} (amd64), {algorithm}", algorithm)
        for tag, kind in ((TAG, "regular"), (DISTROLESS_TAG, "distroless"))
        for algorithm in ("gzip", "zstd")
    ]
    return images, config


def _size_figures(
    runner: Runner, images: list[Measured], notes: list[str], runs: int
) -> tuple[list[Figure], dict[str, tuple[float, ...]]]:
    """Every image's sizes (and its layers' in ``notes``), then every image's unpack time."""
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
        unpack[m.label] = time_unpack(runner, m, runs)
        figures.append(
            Figure(f"{m.label}: unpack (decompress + untar to tmpfs)", "s", unpack[m.label])
        )
    return figures, unpack


def _size_ratios(
    images: list[Measured], unpack: Mapping[str, tuple[float, ...]], ref_label: str
) -> list[Figure]:
    """zstd against gzip per image, and the reference (gzip) against each of ours."""
    by_label = {m.label: m for m in images}
    ratios: list[Figure] = []
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
    return ratios


def _family_notes(by_label: Mapping[str, Measured]) -> list[str]:
    """The layers both tags share, measured, and the whole family's size, estimated."""
    regular = by_label[f"ours: {TAG} regular (amd64), gzip"]
    distroless = by_label[f"ours: {DISTROLESS_TAG} distroless (amd64), gzip"]
    both = regular.compressed + distroless.compressed
    pulled = {x[1] for x in regular.layers} | {x[1] for x in distroless.layers}
    sizes_by_blob = {x[1]: x[2] for m in (regular, distroless) for x in m.layers}
    notes = [
        f"layer sharing, measured: pulling {TAG} and {DISTROLESS_TAG} (gzip) on one node "
        f"downloads {sum(sizes_by_blob[b] for b in pulled) / 1e6:.1f} MB of layers, "
        f"not {both / 1e6:.1f} MB: the runtime and linkerd-await layers are the same "
        "blobs in both"
    ]
    for algorithm in ("gzip", "zstd"):
        r = by_label[f"ours: {TAG} regular (amd64), {algorithm}"]
        d = by_label[f"ours: {DISTROLESS_TAG} distroless (amd64), {algorithm}"]
        notes.append(
            f"whole supported family on one amd64 node, {algorithm}, estimated from the "
            f"3.13 layers (other versions' runtimes taken as the size of 3.13's): "
            + _family_estimate(r, d, 4)
        )
    return notes


def _arm64_sizes(
    ctx: Context, runner: Runner, config: Path, amd64: list[Measured]
) -> tuple[list[Figure], list[Figure], list[str]]:
    """The same two tags built for arm64 (cross-compiled runtime of the profile, base
    under qemu), compressed sizes against amd64's: the "within 5%" of the size issue.
    Entries the test cache has and the warm cache lacks (a release runtime built there
    later) are hard-linked in first, as :func:`warm_from_test_cache` does."""
    link_missing_entries(ctx, runner)
    out = ctx.warm_cache / "oci-sizes-arm64"
    shutil.rmtree(out, ignore_errors=True)
    argv = build_argv(ctx, ctx.warm_cache, TAG, DISTROLESS_TAG, output=out, arch="arm64")
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
