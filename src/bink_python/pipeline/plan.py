"""Steps 1-2 of ``bink-python build``: which images to make, their stages, and the layout.

The plan refuses before any work: an unpinned input, an arch no selected tag has, or
an output layout a partial build must not mix with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..base.spec import BaseSpec
from ..errors import BuildError, ToolError, UsageError
from ..family.config import Family, Tag
from ..host import proc
from ..host.progress import Progress
from ..image.description import ImageDescription, describe_image
from ..inputs.fetch import FetchSettings
from ..inputs.lockfile import Lock, component_name, cpython_name, require_pinned
from ..oci.layout import Layout
from ..oci.partial import partial_arches
from ..runtime.spec import RuntimeSpec
from ..settings import Mirrors


@dataclass(frozen=True)
class BuildOptions:
    arches: tuple[str, ...] = ()  # empty: every arch of each tag
    profile: str = "release"
    output: Path | None = None  # None: dist/oci, or dist/oci-ARCH for a partial build
    jobs: int = 2
    offline: bool = False
    verify: bool = True  # False: promote images no check has run on (said in the summary)
    epoch: int | None = None  # SOURCE_DATE_EPOCH; None: from images.lock
    #: where the archives are, what images name; how the inputs are fetched
    mirrors: Mirrors = field(default_factory=Mirrors)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    revision: str | None = None  # VCS revision for the labels ($GITHUB_SHA); None: git
    #: (arch, build host) of each arch's runtimes; an arch not listed: this machine
    runtime_hosts: tuple[tuple[str, str], ...] = ()
    cached_runtimes: bool = False  # never compile a runtime: each must be in the cache
    #: packages added to every base (a security rebuild changes the base and nothing else)
    extra_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanEntry:
    """One image to make: a tag on one arch, its description, and the stages it needs."""

    tag: Tag
    arch: str
    image: ImageDescription
    base: BaseSpec
    runtime: RuntimeSpec
    components: tuple[str, ...]  # the lock artifact of each of the tag's components


@dataclass(frozen=True)
class Plan:
    """Every image of a build, the stages they share, and where they go."""

    entries: tuple[PlanEntry, ...]  # by tag, then by arch
    output: Path
    partial: tuple[str, ...]  # the arches of a partial layout; empty: a complete build
    #: each runtime to build and the lock artifact of its source, in plan order
    runtimes: Mapping[RuntimeSpec, str] = field(hash=False)
    bases: tuple[BaseSpec, ...]  # each base to build, in plan order
    inputs: tuple[str, ...]  # the lock artifacts to fetch, sorted

    def entries_of(self, tag: Tag) -> list[PlanEntry]:
        return [e for e in self.entries if e.tag is tag]


def revision_of(path: Path) -> str:
    """The VCS revision the family is built from: git HEAD, else 'unknown'."""
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


def base_spec(image: ImageDescription, options: BuildOptions) -> BaseSpec:
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
    """Refuse to mix partial and complete indexes in one layout.

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


def _describe(
    family: Family, tags: Sequence[Tag], options: BuildOptions
) -> list[tuple[Tag, str, ImageDescription]]:
    """The selected tags x arches, each described once."""
    return [
        (tag, arch, describe_image(family, tag, arch, error=BuildError, mirrors=options.mirrors))
        for tag in tags
        for arch in tag.arches
        if not options.arches or arch in options.arches
    ]


def make_plan(
    family: Family, tags: Sequence[Tag], lock: Lock, options: BuildOptions, progress: Progress
) -> Plan:
    """Plan and pins: refuse before any work when an input is not pinned."""
    described = _describe(family, tags, options)
    if not described:
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
    entries: list[PlanEntry] = []
    runtimes: dict[RuntimeSpec, str] = {}
    bases: dict[BaseSpec, None] = {}
    for tag, arch, image in described:
        rspec = runtime_spec(tag, arch, lock, options.profile)
        runtimes.setdefault(rspec, cpython_name(tag.version))
        bspec = base_spec(image, options)
        bases.setdefault(bspec)
        components = []
        for comp in tag.components:
            name = component_name(comp, family.component(comp).version, arch)
            require_pinned(lock.entry(name))
            components.append(name)
        entries.append(PlanEntry(tag, arch, image, bspec, rspec, tuple(components)))
    inputs = set(runtimes.values()) | {c for e in entries for c in e.components}
    return Plan(tuple(entries), out, partial, runtimes, tuple(bases), tuple(sorted(inputs)))
