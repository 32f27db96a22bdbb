"""``bink-python build``: from images.toml to a verified multi-arch OCI layout.

The orchestrator only wires the stages together; each stage lives in its own
module and caches its own output:

1. plan     - the selected tags x arches (policy.py applied by the caller), each
               described once (image.py: the description feeds base, assemble, verify)
2. pins     - every input the plan needs must be pinned in images.lock (lockfile.py)
3. fetch    - CPython sources and component binaries, verified (fetch.py)
4. base     - one root filesystem per (OS, arch, variant, user) (base.py)
5. runtime  - one CPython build per (version, OS, arch, profile) (runtime.py)
6. assemble - images and one index per tag, into a *staging* layout (assemble.py)
7. verify   - every image of the staging layout (verify/); skipped only when
               ``BuildOptions.verify`` is False, which the summary shows
8. promote  - blobs hard-linked into the output layout, then index.json by rename

Bases and runtimes are independent: they run concurrently up to ``jobs``. The
output layout only changes in step 8, so a failed build or a failed check leaves
the previous layout (and every tag in it) as it was.

Here the pipeline's own modules split the work: steps 1-2 in plan.py, 3-5 in run.py,
6-8 in this module, and the result (rows, table, JSON) in summary.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..base.base import BaseResult
from ..errors import BinkError, BuildError, UsageError
from ..family.config import Family, Tag
from ..host.progress import SILENT, Progress
from ..image import sbom
from ..image.assemble import (
    BuiltImage,
    ImageSpec,
    LayerFile,
    LayerSource,
    build_image,
    build_index,
    files_layer,
    rfc3339,
)
from ..image.description import describe_image
from ..image.ldcache import ld_cache_layer
from ..inputs.lockfile import Lock, component_name, cpython_name, require_pinned, source_date_epoch
from ..oci.layout import Layout
from ..oci.partial import mark_partial
from ..oci.types import Descriptor
from ..runtime.spec import PROFILES, RuntimeResult
from ..store.store import Store
from ..verify import VerifyReport, target_for, verify_targets
from .plan import BuildOptions, Plan, PlanEntry, make_plan, revision_of
from .run import Stages, build_stages, fetch_inputs, remove_stale_staging
from .summary import BuildSummary, ImageRow, image_row

#: build_family and what it takes and returns: the pipeline's entry point.
__all__ = ["BuildOptions", "BuildSummary", "build_family"]


@dataclass(frozen=True)
class _Build:
    """One build's settled inputs, shared by the assembly steps."""

    family: Family
    lock: Lock
    store: Store
    options: BuildOptions
    epoch: int
    revision: str
    progress: Progress
    sources: dict[str, Path] = field(hash=False)
    stages: Stages


@dataclass(frozen=True)
class _Assembled:
    """What the staging layout holds so far: summary rows, refs, and SBOMs by (tag, arch)."""

    rows: list[ImageRow] = field(default_factory=list)
    refs: dict[str, Descriptor] = field(default_factory=dict)
    sboms: dict[tuple[str, str], bytes] = field(default_factory=dict)


def _image_sbom(
    family: Family,
    tag: Tag,
    arch: str,
    lock: Lock,
    layout: Layout,
    manifest: Descriptor,
    base: BaseResult,
    epoch: int,
) -> tuple[Descriptor, bytes]:
    """The SPDX SBOM of one image, stored in ``layout`` as its referrer artifact."""
    source = lock.entry(cpython_name(tag.version))
    components = []
    for comp in tag.components:
        artifact = lock.entry(component_name(comp, family.component(comp).version, arch))
        components.append(
            sbom.component_for(
                comp, family.component(comp).version, artifact.urls[0], require_pinned(artifact)
            )
        )
    return sbom.image_sbom(
        layout,
        tag=tag.name,
        arch=arch,
        manifest=manifest,
        base_rootfs=base.rootfs,
        distro=tag.distro,
        cpython=sbom.cpython_component(tag.version, source.urls[0], require_pinned(source)),
        components=components,
        epoch=epoch,
        repository=family.registry,
    )


def _layers(
    build: _Build, entry: PlanEntry, base: BaseResult, runtime: RuntimeResult
) -> list[LayerSource]:
    """The layers of one image: base, runtime, the ld cache (not distroless), components."""
    arch, store, epoch = entry.arch, build.store, build.epoch
    layers = [
        LayerSource(
            base.rootfs,
            "sha256:" + str(base.record["sha256"]),
            f"bink-python base {base.spec.label} (mmdebstrap, key {base.key})",
        ),
        LayerSource(
            runtime.tarball,
            "sha256:" + str(runtime.record["sha256"]),
            f"bink-python runtime CPython {entry.tag.version} {arch} "
            f"{build.options.profile} (key {runtime.key})",
        ),
    ]
    if not entry.image.distroless:  # ldconfig -p lists libpython3.X.so
        layers.append(ld_cache_layer(layers[0], layers[1], arch, store, epoch=epoch))
    for comp, artifact in zip(entry.tag.components, entry.components, strict=True):
        component = build.family.component(comp)
        binary = build.sources[artifact]
        layers.append(
            files_layer(
                [LayerFile(component.path.lstrip("/"), source=binary, mode=0o755)],
                store,
                epoch=epoch,
                created_by=f"bink-python component {comp} {component.version} {arch}",
            )
        )
    return layers


def _assemble_image(
    build: _Build, entry: PlanEntry, staging: Layout, into: _Assembled
) -> list[Descriptor]:
    """Step 6 for one tag and arch: an image per compression, its SBOM; the manifests."""
    tag, arch, description, epoch = entry.tag, entry.arch, entry.image, build.epoch
    base = build.stages.bases[entry.base]
    runtime = build.stages.runtimes[entry.runtime]
    spec = ImageSpec(
        arch=arch,
        layers=tuple(_layers(build, entry, base, runtime)),
        env=description.env,
        cmd=description.cmd,
        user=description.default_user,
        labels=description.labels(epoch=epoch, revision=build.revision),
        created=rfc3339(epoch),
    )
    compressions = build.family.compression
    instances: list[BuiltImage] = []
    for compression in compressions:
        subject = f"{tag.name} {arch}" + (f" ({compression})" if len(compressions) > 1 else "")
        with build.progress.step("assemble", subject):
            instances.append(build_image(spec, staging, build.store, compression))
    # one SBOM per tag and arch, about the first instance (the same image:
    # every instance has the same config and uncompressed layers)
    sbom_desc, sbom_data = _image_sbom(
        build.family, tag, arch, build.lock, staging, instances[0].descriptor, base, epoch
    )
    into.refs[sbom.sbom_ref(tag.name, arch)] = sbom_desc
    into.sboms[(tag.name, arch)] = sbom_data
    for image in instances:
        built = tuple(
            stage
            for stage, cached in (
                ("base", base.cached),
                ("runtime", runtime.cached),
                ("layers", image.reused),
            )
            if not cached
        )
        into.rows.append(image_row(tag.name, arch, image, built))
    return [image.descriptor for image in instances]


def _assemble(build: _Build, plan: Plan, tags: Sequence[Tag], staging: Layout) -> _Assembled:
    """Step 6: every image and one index per tag, into the staging layout."""
    into = _Assembled()
    for tag in tags:
        manifests: list[Descriptor] = []
        for entry in plan.entries_of(tag):
            manifests.extend(_assemble_image(build, entry, staging, into))
        # the labels do not depend on the arch
        first = describe_image(
            build.family, tag, tag.arches[0], error=BuildError, mirrors=build.options.mirrors
        )
        labels = first.labels(epoch=build.epoch, revision=build.revision)
        index = build_index(manifests, labels, staging)
        for ref in tag.refs:
            into.refs[ref] = index
    staging.set_refs(into.refs)
    return into


def _verify(build: _Build, plan: Plan, staging: Layout) -> VerifyReport | None:
    """Step 7: verify before anything becomes visible (None: skipped)."""
    if not build.options.verify:
        build.progress.warn("verification skipped: the images are promoted unchecked")
        return None
    targets = [target_for(staging, e.tag.name, e.image) for e in plan.entries]
    report = verify_targets(
        staging.path,
        targets,
        progress=build.progress,
        cache_dir=build.store.root,
        jobs=max(1, build.options.jobs),
    )
    report.raise_for_failures()
    return report


def _promote(plan: Plan, staging: Layout, assembled: _Assembled, progress: Progress) -> None:
    """Step 8: blobs first, index.json last (by rename); a partial layout is
    marked before any of its refs exists."""
    out, refs = plan.output, assembled.refs
    if plan.partial:
        mark_partial(out, plan.partial)
    with progress.step("publish", f"{len(refs)} refs into {out}"):
        Layout(out).copy_refs(staging, refs)
    sbom_dir = out.parent / "sbom"
    for (tag_name, arch), data in sorted(assembled.sboms.items()):
        sbom.write_sbom_file(sbom_dir, tag_name, arch, data)


def build_family(
    family: Family,
    tags: Sequence[Tag],
    lock: Lock,
    store: Store,
    options: BuildOptions,
    *,
    progress: Progress = SILENT,
) -> BuildSummary:
    """Build ``tags`` (already selected and policy-checked) into ``options.output``
    (default ``dist/oci``, or ``dist/oci-ARCH`` for a partial single-arch build).

    Every image is verified in the staging layout before any ref moves; with
    ``options.verify=False`` nothing is checked and the summary says so. A failed check
    raises :class:`~bink_python.verify.report.ChecksFailed` (its ``report`` holds the table)
    and leaves the output layout as it was.
    """
    start = time.monotonic()
    if options.profile not in PROFILES:
        raise UsageError(
            f"unknown runtime profile {options.profile!r}: expected one of {', '.join(PROFILES)}"
        )
    epoch = source_date_epoch(options.epoch, fallback=lambda: lock.source_date_epoch)
    revision = options.revision or revision_of(family.path.resolve().parent)
    plan = make_plan(family, tags, lock, options, progress)
    sources = fetch_inputs(plan, lock, store, options, progress)
    stages = build_stages(plan, sources, store, options, epoch=epoch, progress=progress)
    build = _Build(family, lock, store, options, epoch, revision, progress, sources, stages)
    # the staging layout goes beside the output (same filesystem: hard links)
    out = plan.output
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging_dir = Path(
        tempfile.mkdtemp(prefix=f".{out.name}-staging-{os.getpid()}-", dir=out.parent)
    )
    try:
        staging = Layout(staging_dir).init()
        assembled = _assemble(build, plan, tags, staging)
        report = _verify(build, plan, staging)
        _promote(plan, staging, assembled, progress)
    except BinkError:
        raise
    except OSError as exc:
        raise BuildError(f"writing the OCI layout failed: {exc}") from exc
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return BuildSummary(
        layout=out,
        rows=tuple(assembled.rows),
        indexes={ref: d.digest for ref, d in assembled.refs.items()},
        seconds=time.monotonic() - start,
        report=report,
    )
