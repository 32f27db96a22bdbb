"""Running the checks: images out of a layout into buildah, checks in order, the report."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import VerifyError, reported_as
from ..family.config import Family, Tag
from ..host.binfmt import ensure_binfmt
from ..host.parallel import run_parallel
from ..host.proc import Cancelled
from ..host.progress import SILENT, Progress
from ..image.description import ImageDescription, describe_image
from ..oci.layout import Layout
from ..oci.rootfs import make_dir_in_root
from ..oci.types import MEDIA_INDEX, MEDIA_MANIFEST, Descriptor, Platform
from ..settings import Mirrors
from . import inimage, static
from .imagerun import Buildah, buildah_session, image_container
from .pycache import host_pycache, save_pycache, seed_pycache
from .registry import PYCACHE, REGISTRY, Check, CheckFailed, NotApplicable, Probe
from .report import FAIL, PASS, SKIP, CheckResult, ImageReport, VerifyReport

del inimage, static  # imported for their checks

#: Every check, name -> documentation (the README lists these).
CHECKS: dict[str, str] = {name: check.doc for name, check in REGISTRY.items()}


def _ordered(names: Sequence[str] | None) -> list[Check]:
    if names is None:
        chosen = list(REGISTRY.values())
    else:
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise VerifyError(
                f"unknown check {unknown[0]!r}: expected one of {', '.join(REGISTRY)}"
            )
        chosen = [c for c in REGISTRY.values() if c.name in names]
    # static checks first: running python as root may write bytecode into the tree
    return [c for c in chosen if c.static] + [c for c in chosen if not c.static]


def _run_check(check: Check, probe: Probe) -> CheckResult:
    start = time.monotonic()
    try:
        detail = check.func(probe)
        status, output = PASS, ""
    except NotApplicable as why:
        status, detail, output = SKIP, f"not applicable: {why}", ""
    except CheckFailed as failed:
        status, detail, output = FAIL, failed.detail, failed.output
    except OSError as exc:
        status, detail, output = FAIL, f"could not read the image: {exc}", ""
    except Cancelled:
        raise
    except Exception as exc:  # a check's bug on an input nobody foresaw: fail this check only
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        status, output = FAIL, ""
        detail = f"the check failed unexpectedly: {type(exc).__name__}: {first}"
    return CheckResult(check.name, status, detail, output, time.monotonic() - start)


def _run_checks(
    buildah: Buildah,
    layout: Layout,
    target: Target,
    checks: Sequence[str] | None,
    cache_dir: Path | None,
) -> ImageReport:
    manifest, expect = target.manifest, target.expect
    data = layout.read_json(manifest.digest)
    config = layout.read_json(data["config"]["digest"])
    with image_container(
        buildah, layout.path, manifest, what=f"{expect.tag} {expect.arch}"
    ) as container:
        probe = Probe(expect, container, config, data, layout=layout, instances=target.instances)
        results: list[CheckResult] = []
        host_cache = host_pycache(data, cache_dir)
        cache: Path | None = None  # made before the first check that runs anything
        for check in _ordered(checks):
            if not check.static and cache is None:
                cache = make_dir_in_root(container.rootfs, PYCACHE, mode=0o1777, fresh=True)
                seed_pycache(host_cache, cache, owner=(expect.user.uid, expect.user.gid))
            results.append(_run_check(check, probe))
        if cache is not None:
            save_pycache(container.rootfs, PYCACHE, host_cache)
    order = {name: i for i, name in enumerate(REGISTRY)}
    ordered = tuple(sorted(results, key=lambda r: order[r.name]))
    return ImageReport(expect.tag, expect.arch, manifest.digest, ordered)


@reported_as(VerifyError)
def manifest_for(layout: Layout, ref_or_digest: str, arch: str) -> Descriptor:
    """The image manifest of ``arch`` named by a ref or digest (of an index or manifest):
    the platform's first instance when the index holds several (gzip, then zstd)."""
    return instances_for(layout, ref_or_digest, arch)[0]


@reported_as(VerifyError)
def instances_for(layout: Layout, ref_or_digest: str, arch: str) -> tuple[Descriptor, ...]:
    """Every image manifest of ``arch`` named by a ref or digest, in index order: one per
    layer compression the index publishes (at least one)."""
    if ref_or_digest.startswith("sha256:"):
        path = layout.blob_path(ref_or_digest)
        if not path.is_file():
            raise VerifyError(f"{ref_or_digest} is not in the OCI layout {layout.path}")
        media = json.loads(layout.read_blob(ref_or_digest)).get("mediaType", "")
        desc = Descriptor(str(media), ref_or_digest, path.stat().st_size)
    else:
        desc = layout.resolve(ref_or_digest)
    want = Platform.for_arch(arch)
    if desc.media_type == MEDIA_MANIFEST:
        config = layout.read_json(layout.read_json(desc.digest)["config"]["digest"])
        got = Platform(
            str(config.get("architecture")), str(config.get("os")), config.get("variant", "")
        )
        if got.architecture != want.architecture:
            raise VerifyError(f"{ref_or_digest} is a {got} image, not {want}")
        return (replace(desc, platform=got, annotations={}),)
    if desc.media_type != MEDIA_INDEX:
        raise VerifyError(f"{ref_or_digest} is neither an image index nor a manifest")
    found = tuple(layout.platform_manifests(desc, arch))
    if not found:
        raise VerifyError(f"{ref_or_digest} has no {want} image in {layout.path}")
    return found


def target_for(layout: Layout, ref: str, expect: ImageDescription) -> Target:
    """The target of ``expect``'s image under ``ref``: its first instance checked, the
    others proven to be the same image (``compression-instances``)."""
    first, *others = instances_for(layout, ref, expect.arch)
    return Target(first, expect, instances=tuple(others))


@dataclass(frozen=True)
class Target:
    """One image to verify: where it is and what it must be."""

    manifest: Descriptor
    expect: ImageDescription
    checks: tuple[str, ...] | None = None  # a subset of CHECKS for this image; None: all
    instances: tuple[Descriptor, ...] = ()  # the platform's other compression instances


@reported_as(VerifyError)
def verify_targets(
    layout: Path,
    targets: Sequence[Target],
    *,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
    progress: Progress = SILENT,
    session: Buildah | None = None,
    cache_dir: Path | None = None,
    jobs: int = 2,
) -> VerifyReport:
    """Verify each target, up to ``jobs`` images at once (one buildah storage for all of
    them, removed afterwards); the report lists them in the order given.

    ``session`` reuses a caller's buildah storage (left in place for the caller);
    ``cache_dir`` keeps the probes' bytecode between runs (None: kept nowhere).
    """
    lay = Layout(Path(layout))
    lay.check_marker()
    _ordered(checks)  # reject unknown names before any work
    for target in targets:
        _ordered(target.checks)
    for arch in dict.fromkeys(t.expect.arch for t in targets):
        ensure_binfmt(arch)  # once, before the images run side by side: two would race

    def verify_one(buildah: Buildah, target: Target) -> ImageReport:
        with progress.step("verify", f"{target.expect.tag} {target.expect.arch}"):
            chosen = target.checks if target.checks is not None else checks
            report = _run_checks(buildah, lay, target, chosen, cache_dir)
        for failed in report.failed:
            progress.info(f"    FAIL {failed.name}: {failed.detail}")
        return report

    with contextlib.ExitStack() as stack:
        buildah = session or stack.enter_context(buildah_session(workdir))
        tasks: dict[int, Callable[[], ImageReport]] = {
            i: functools.partial(verify_one, buildah, t) for i, t in enumerate(targets)
        }
        reports = run_parallel(jobs, tasks)
    return VerifyReport(tuple(reports[i] for i in range(len(targets))))


@reported_as(VerifyError)
def verify_layout(
    layout: Path,
    family: Family,
    tags: Sequence[Tag],
    *,
    arches: Sequence[str] | None = None,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
    progress: Progress = SILENT,
    mirrors: Mirrors,
    cache_dir: Path | None = None,
    jobs: int = 2,
) -> VerifyReport:
    """Verify every arch image of every tag named in ``layout`` (by the tag's name ref),
    built with the archive ``mirrors``, up to ``jobs`` images at once; ``cache_dir`` as
    for :func:`verify_targets`.

    Returns the report; call ``report.raise_for_failures()`` after showing it.
    """
    lay = Layout(Path(layout))
    lay.check_marker()
    targets: list[Target] = []
    for tag in tags:
        if not tag.buildable:
            raise VerifyError(f"tag {tag.name} is {tag.status}: it has no images to verify")
        for arch in arches or tag.arches or family.arches:
            if arch not in tag.arches and tag.arches:
                continue
            expect = describe_image(family, tag, arch, error=VerifyError, mirrors=mirrors)
            targets.append(target_for(lay, tag.name, expect))
    if not targets:
        raise VerifyError("nothing to verify: no tag/arch selected")
    return verify_targets(
        lay.path,
        targets,
        checks=checks,
        workdir=workdir,
        progress=progress,
        cache_dir=cache_dir,
        jobs=jobs,
    )
