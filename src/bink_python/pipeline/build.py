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
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from ..base.base import BaseResult, build_base
from ..base.spec import BaseSpec
from ..errors import BinkError, BuildError, ToolError, UsageError
from ..family.config import Family, Tag
from ..host import proc
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
from ..image.description import ImageDescription, describe_image
from ..image.ldcache import ld_cache_layer
from ..inputs.cache import Cache
from ..inputs.fetch import fetch_artifact
from ..inputs.lockfile import Lock, component_name, cpython_name, require_pinned, source_date_epoch
from ..oci.layout import Layout
from ..oci.partial import mark_partial, partial_arches
from ..oci.types import Descriptor
from ..runtime.runtime import PROFILES, RuntimeResult, RuntimeSpec, build_runtime
from ..store.store import Store
from ..verify import VerifyReport, target_for, verify_targets

T = TypeVar("T")


@dataclass(frozen=True)
class BuildOptions:
    arches: tuple[str, ...] = ()  # empty: every arch of each tag
    profile: str = "release"
    output: Path | None = None  # None: dist/oci, or dist/oci-ARCH for a partial build
    jobs: int = 2
    offline: bool = False
    verify: bool = True  # False: promote images no check has run on (said in the summary)
    epoch: int | None = None  # SOURCE_DATE_EPOCH; None: from images.lock
    mirror: str | None = None
    revision: str | None = None  # VCS revision for the labels; None: git or $GITHUB_SHA
    #: (arch, build host) of each arch's runtimes; an arch not listed: this machine
    runtime_hosts: tuple[tuple[str, str], ...] = ()
    cached_runtimes: bool = False  # never compile a runtime: each must be in the cache
    #: packages added to every base (a security rebuild changes the base and nothing else)
    extra_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerRow:
    """One layer of an image in the summary."""

    what: str  # which stage made it: "base", "runtime", "component", ...
    digest: str
    compressed_size: int
    uncompressed_size: int  # bytes of the layer tar


@dataclass(frozen=True)
class ImageRow:
    """One line of the summary: an image of one tag, arch and layer compression."""

    tag: str
    arch: str
    digest: str
    compressed_size: int  # manifest + config + compressed layers: what a pull downloads
    built: tuple[str, ...]  # stages that did work for this image (empty: all from cache)
    compression: str = "gzip"
    uncompressed_size: int = 0  # config + layer tars: what a node unpacks
    layers: tuple[LayerRow, ...] = ()
    blobs: tuple[tuple[str, int], ...] = ()  # (digest, size) of manifest, config, layers


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class PullTotal:
    """Bytes one node downloads to pull every image of one arch and compression."""

    arch: str
    compression: str
    images: int
    bytes: int  # each blob once: layers shared between tags are pulled once
    bytes_separately: int  # the sum of the images' own sizes


@dataclass(frozen=True)
class BuildSummary:
    layout: Path
    rows: tuple[ImageRow, ...]
    indexes: dict[str, str] = field(hash=False)  # ref name -> index digest
    seconds: float = 0.0
    report: VerifyReport | None = None  # None: verification was skipped (verify=False)

    @property
    def verified(self) -> bool:
        return self.report is not None and self.report.ok

    def pull_totals(self) -> tuple[PullTotal, ...]:
        """Per (arch, compression): bytes to pull all the built images on one node."""
        groups: dict[tuple[str, str], list[ImageRow]] = {}
        for row in self.rows:
            groups.setdefault((row.arch, row.compression), []).append(row)
        totals = []
        for (arch, compression), rows in sorted(groups.items()):
            blobs = {digest: size for row in rows for digest, size in row.blobs}
            totals.append(
                PullTotal(
                    arch,
                    compression,
                    len(rows),
                    sum(blobs.values()),
                    sum(r.compressed_size for r in rows),
                )
            )
        return tuple(totals)

    def table(self) -> str:
        header = ("TAG", "ARCH", "COMPRESSION", "DIGEST", "SIZE", "UNPACKED", "SOURCE")
        lines: list[tuple[str, ...]] = [header]
        for row in self.rows:
            lines.append(
                (
                    row.tag,
                    row.arch,
                    row.compression,
                    row.digest[:19],
                    _mb(row.compressed_size),
                    _mb(row.uncompressed_size),
                    "built: " + ",".join(row.built) if row.built else "cache",
                )
            )
            for layer in row.layers:
                lines.append(
                    (
                        "",
                        "",
                        "",
                        f"  {layer.what}",
                        _mb(layer.compressed_size),
                        _mb(layer.uncompressed_size),
                        layer.digest[:19],
                    )
                )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )
        pulls = "".join(
            f"\npull all {t.images} {t.arch} {t.compression} images on one node: "
            f"{_mb(t.bytes)} (shared layers once; {_mb(t.bytes_separately)} pulled separately)"
            for t in self.pull_totals()
        )
        refs = ", ".join(f"{ref}={digest[:19]}" for ref, digest in sorted(self.indexes.items()))
        if self.report is None:
            verified = "NOT VERIFIED: verification was skipped (--no-verify)"
        else:
            results = [c.status for i in self.report.images for c in i.checks]
            verified = (
                f"{len(self.report.images)} image(s), {results.count('pass')} checks passed, "
                f"{results.count('skip')} not applicable"
            )
        return (
            f"{text}{pulls}\nindexes: {refs}\nverified: {verified}\n"
            f"layout: {self.layout} ({self.seconds:.1f}s)\n"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "layout": str(self.layout),
            "seconds": round(self.seconds, 1),
            "images": [
                {
                    "tag": r.tag,
                    "arch": r.arch,
                    "compression": r.compression,
                    "digest": r.digest,
                    "compressed_size": r.compressed_size,
                    "uncompressed_size": r.uncompressed_size,
                    "layers": [
                        {
                            "what": x.what,
                            "digest": x.digest,
                            "compressed_size": x.compressed_size,
                            "uncompressed_size": x.uncompressed_size,
                        }
                        for x in r.layers
                    ],
                    "built": list(r.built),
                }
                for r in self.rows
            ],
            "pull_totals": [
                {
                    "arch": t.arch,
                    "compression": t.compression,
                    "images": t.images,
                    "bytes": t.bytes,
                    "bytes_separately": t.bytes_separately,
                }
                for t in self.pull_totals()
            ],
            "indexes": dict(sorted(self.indexes.items())),
            "verified": self.verified,
            "verify": None if self.report is None else json.loads(self.report.to_json()),
        }


def image_row(tag: str, arch: str, image: BuiltImage, built: tuple[str, ...]) -> ImageRow:
    """The summary line of one assembled image, with its layers' sizes."""
    layers = tuple(
        LayerRow(
            x.created_by.split()[1] if x.created_by.startswith("bink-python ") else "layer",
            x.digest,
            x.size,
            x.tar_size,
        )
        for x in image.layers
    )
    blobs = (
        (image.descriptor.digest, image.descriptor.size),
        (image.config.digest, image.config.size),
        *((x.digest, x.size) for x in image.layers),
    )
    return ImageRow(
        tag,
        arch,
        image.descriptor.digest,
        image.compressed_size,
        built,
        image.compression,
        image.uncompressed_size,
        layers,
        blobs,
    )


def revision_of(path: Path) -> str:
    """The VCS revision the family is built from: $GITHUB_SHA, git HEAD, else 'unknown'."""
    env = os.environ.get("GITHUB_SHA")
    if env:
        return env
    try:
        out = proc.spawn(["git", "-C", str(path), "rev-parse", "HEAD"], kind="git")
    except (OSError, ToolError):
        return "unknown"
    return out.stdout.strip() if out.ok and out.stdout.strip() else "unknown"


def runtime_spec(tag: Tag, arch: str, lock: Lock, profile: str) -> RuntimeSpec:
    artifact = lock.entry(cpython_name(tag.version))
    return RuntimeSpec(
        version=tag.version,
        source_sha256=require_pinned(artifact),
        distro=tag.distro,
        arch=arch,
        profile=profile,
    )


def _base_spec(image: ImageDescription, options: BuildOptions) -> BaseSpec:
    """The base of ``image``, with the build's extra packages."""
    return replace(image.base_spec, extra_packages=options.extra_packages)


def partial_plan(tags: Sequence[Tag], options: BuildOptions) -> tuple[str, ...]:
    """The arches of a single-arch build that leaves some tag short of an arch.

    Empty when every selected tag gets every arch images.toml lists for it (a
    complete build, whose indexes may move tags in a publishable layout).
    """
    if not options.arches:
        return ()
    short = [t for t in tags if set(t.arches) - set(options.arches)]
    return tuple(sorted(options.arches)) if short else ()


def check_output(output: Path, partial: tuple[str, ...]) -> None:
    """Refuse to mix partial and complete indexes in one layout (issue 14, defect 2).

    A tag may only point at an index holding every arch images.toml lists for it:
    a single-arch build goes to its own layout, marked partial, which verify and
    sbom read and push and export refuse. A layout holding complete tags never
    receives a partial index, and a partial layout never a complete build.
    """
    marked = partial_arches(output)
    has_refs = (output / "index.json").exists() and bool(Layout(output).refs())
    if partial:
        if has_refs and marked != partial:
            what = f"a partial {'+'.join(marked)} layout" if marked else "complete tags"
            raise BuildError(
                f"a {'+'.join(partial)}-only build would leave tags without the other "
                f"arches images.toml lists, and {output} holds {what}: write it to its own "
                f"layout (--output {output}-{'-'.join(partial)}), which push and export refuse"
            )
    elif marked:
        raise BuildError(
            f"{output} is a partial layout ({'+'.join(marked)} only, from `build --arch`): "
            "build every arch into another --output (e.g. dist/oci)"
        )


def _run_parallel(jobs: int, tasks: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent stage tasks; the first failure (or Ctrl-C/SIGTERM) stops the rest.

    Stopping means: tasks not started are cancelled, every running external command
    (of every task) has its process group stopped (:func:`proc.cancel`), later commands
    refuse to start, and this waits until each running task has unwound through its
    own cleanups (temporary cache entries, mounts) before the first error is raised.
    """
    results: dict[str, T] = {}
    if jobs <= 1 or len(tasks) <= 1:
        for name, task in tasks.items():
            results[name] = task()
        return results
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(task): name for name, task in tasks.items()}
    try:
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        proc.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
        proc.reset_cancel()
    return results


def _remove_stale_staging(output: Path) -> None:
    """Remove staging layouts left by builds that were killed (their process is gone)."""
    pattern = re.compile(rf"\.{re.escape(output.name)}-staging-(\d+)-")
    try:
        candidates = list(output.parent.iterdir())
    except FileNotFoundError:
        return
    for path in candidates:
        found = pattern.match(path.name)
        if found is None or not path.is_dir():
            continue
        pid = int(found.group(1))
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


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

    # 1-2. plan and pins: refuse before any work when an input is not pinned
    plan: list[tuple[Tag, str]] = []
    images: dict[tuple[str, str], ImageDescription] = {}
    for tag in tags:
        for arch in tag.arches:
            if not options.arches or arch in options.arches:
                plan.append((tag, arch))
                images[(tag.name, arch)] = describe_image(
                    family, tag, arch, error=BuildError, mirror=options.mirror
                )
    if not plan:
        raise UsageError("nothing to build: no selected tag has the requested architecture")
    partial = partial_plan(tags, options)
    # the layout: as given, else dist/oci, or dist/oci-ARCH for a partial build
    out = options.output or Path(f"dist/oci-{'-'.join(partial)}" if partial else "dist/oci")
    check_output(out, partial)
    if partial:
        progress.info(
            f"{out}: partial layout ({'+'.join(partial)} only): verify and sbom "
            "read it; push and export refuse it"
        )
    runtimes: dict[RuntimeSpec, str] = {}
    bases: dict[BaseSpec, str] = {}
    components: dict[tuple[str, str], str] = {}  # (component, arch) -> lock artifact name
    for tag, arch in plan:
        rspec = runtime_spec(tag, arch, lock, options.profile)
        runtimes.setdefault(rspec, cpython_name(tag.version))
        bspec = _base_spec(images[(tag.name, arch)], options)
        bases.setdefault(bspec, f"{tag.distro.ident}-{arch}-{tag.variant}")
        for comp in tag.components:
            name = component_name(comp, family.component(comp).version, arch)
            require_pinned(lock.entry(name))
            components[(comp, arch)] = name

    # 3. fetch
    cache = Cache(store.root)
    sources: dict[str, Path] = {}
    with progress.step("fetch", f"{len(set(runtimes.values())) + len(components)} inputs"):
        for name in sorted(set(runtimes.values()) | set(components.values())):
            sources[name] = fetch_artifact(
                lock.entry(name), cache, offline=options.offline, progress=progress
            )

    # 4-5. bases and runtimes, concurrently
    def base_task(spec: BaseSpec) -> Callable[[], BaseResult]:
        def run() -> BaseResult:  # build_base announces its own progress step
            return build_base(spec, store, epoch=epoch, mirror=options.mirror, progress=progress)

        return run

    def runtime_task(spec: RuntimeSpec, source: Path) -> Callable[[], RuntimeResult]:
        def run() -> RuntimeResult:
            subject = f"CPython {spec.version} {spec.distro.ident} {spec.arch} {spec.profile}"
            with progress.step("runtime", subject):
                return build_runtime(
                    spec,
                    source,
                    store,
                    epoch=epoch,
                    mirror=options.mirror,
                    progress=progress,
                    build_host=dict(options.runtime_hosts).get(spec.arch),
                    cached_only=options.cached_runtimes,
                )

        return run

    # amd64 runtimes first: an arm64 cross build reuses the build Python of its version
    ordered = sorted(runtimes, key=lambda s: (s.arch != "amd64", s.version))
    tasks: dict[str, Callable[[], object]] = {}
    for bspec in bases:
        tasks[f"base:{bases[bspec]}"] = base_task(bspec)
    for rspec in ordered:
        key = f"runtime:{rspec.version}:{rspec.distro.ident}:{rspec.arch}:{rspec.profile}"
        tasks[key] = runtime_task(rspec, sources[runtimes[rspec]])
    done = _run_parallel(max(1, options.jobs), tasks)
    base_results = {spec: done[f"base:{label}"] for spec, label in bases.items()}
    runtime_results = {
        spec: done[f"runtime:{spec.version}:{spec.distro.ident}:{spec.arch}:{spec.profile}"]
        for spec in runtimes
    }

    # 6. assemble into a staging layout beside the output (same filesystem: hard links)
    output = Layout(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging_dir = Path(
        tempfile.mkdtemp(prefix=f".{out.name}-staging-{os.getpid()}-", dir=out.parent)
    )
    try:
        staging = Layout(staging_dir).init()
        rows: list[ImageRow] = []
        refs: dict[str, Descriptor] = {}
        sboms: dict[tuple[str, str], bytes] = {}
        for tag in tags:
            manifests: list[Descriptor] = []
            for arch in tag.arches:
                if options.arches and arch not in options.arches:
                    continue
                description = images[(tag.name, arch)]
                base = base_results[_base_spec(description, options)]
                assert isinstance(base, BaseResult)
                runtime = runtime_results[runtime_spec(tag, arch, lock, options.profile)]
                assert isinstance(runtime, RuntimeResult)
                layers = [
                    LayerSource(
                        base.rootfs,
                        "sha256:" + str(base.record["sha256"]),
                        f"bink-python base {base.spec.label} (mmdebstrap, key {base.key})",
                    ),
                    LayerSource(
                        runtime.tarball,
                        "sha256:" + str(runtime.record["sha256"]),
                        f"bink-python runtime CPython {tag.version} {arch} "
                        f"{options.profile} (key {runtime.key})",
                    ),
                ]
                if not description.distroless:  # ldconfig -p lists libpython3.X.so
                    layers.append(ld_cache_layer(layers[0], layers[1], arch, store, epoch=epoch))
                for comp in tag.components:
                    component = family.component(comp)
                    binary = sources[components[(comp, arch)]]
                    layers.append(
                        files_layer(
                            [LayerFile(component.path.lstrip("/"), source=binary, mode=0o755)],
                            store,
                            epoch=epoch,
                            created_by=f"bink-python component {comp} {component.version} {arch}",
                        )
                    )
                spec = ImageSpec(
                    arch=arch,
                    layers=tuple(layers),
                    env=description.env,
                    cmd=description.cmd,
                    user=description.default_user,
                    labels=description.labels(epoch=epoch, revision=revision),
                    created=rfc3339(epoch),
                )
                instances: list[BuiltImage] = []
                for compression in family.compression:
                    subject = f"{tag.name} {arch}" + (
                        f" ({compression})" if len(family.compression) > 1 else ""
                    )
                    with progress.step("assemble", subject):
                        instances.append(build_image(spec, staging, store, compression))
                manifests.extend(image.descriptor for image in instances)
                # one SBOM per tag and arch, about the first instance (the same image:
                # every instance has the same config and uncompressed layers)
                sbom_desc, sbom_data = _image_sbom(
                    family, tag, arch, lock, staging, instances[0].descriptor, base, epoch
                )
                refs[sbom.sbom_ref(tag.name, arch)] = sbom_desc
                sboms[(tag.name, arch)] = sbom_data
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
                    rows.append(image_row(tag.name, arch, image, built))
            # the labels do not depend on the arch
            labels = describe_image(family, tag, tag.arches[0], error=BuildError).labels(
                epoch=epoch, revision=revision
            )
            index = build_index(manifests, labels, staging)
            for ref in tag.refs:
                refs[ref] = index
        staging.set_refs(refs)

        # 7. verify before anything becomes visible
        report: VerifyReport | None = None
        if options.verify:
            targets = [
                target_for(staging, tag.name, images[(tag.name, arch)]) for tag, arch in plan
            ]
            report = verify_targets(staging.path, targets, progress=progress)
            report.raise_for_failures()
        else:
            progress.warn("verification skipped: the images are promoted unchecked")

        # 8. promote: blobs first, index.json last (by rename); a partial layout is
        #    marked before any of its refs exists
        if partial:
            mark_partial(out, partial)
        with progress.step("publish", f"{len(refs)} refs into {out}"):
            output.copy_refs(staging, refs)
        sbom_dir = out.parent / "sbom"
        for (tag_name, arch), data in sorted(sboms.items()):
            sbom.write_sbom_file(sbom_dir, tag_name, arch, data)
    except BinkError:
        raise
    except OSError as exc:
        raise BuildError(f"writing the OCI layout failed: {exc}") from exc
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return BuildSummary(
        layout=out,
        rows=tuple(rows),
        indexes={ref: d.digest for ref, d in refs.items()},
        seconds=time.monotonic() - start,
        report=report,
    )
