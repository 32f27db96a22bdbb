"""``bink-python push`` and ``export``: tags out of the layout, verified before they move."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import NoSuchTag, PublishError, UsageError
from ..family.config import Family, Tag
from ..family.policy import select_tags
from ..host.arch import ARCHES
from ..host.progress import Progress
from ..oci.layout import Layout
from ..oci.types import Descriptor
from ..publish.publish import export, push
from ..settings import Settings, settings_of
from .args import family_from, progress_for
from .parser import Parser, Subparsers, add_command, add_dry_run, add_insecure, add_layout, add_tags
from .verify import check_layout


def _refs_for(args: argparse.Namespace, family: Family) -> tuple[list[str], list[Tag]]:
    """Layout refs (minor and full version) of the selected tags present in the layout.

    A tag is present when its name ref is (that is the ref verify checks); its other
    refs go with it and must name the same index (checked on the one resolution).
    """

    tags = [t for t in select_tags(family, args.tags) if t.buildable]
    layout = Layout(Path(args.layout))
    layout.check_marker()
    layout_refs = layout.refs()
    if args.tags:
        missing = [t.name for t in tags if t.name not in layout_refs]
        if missing:
            raise NoSuchTag(
                f"{args.layout} has no image for {', '.join(missing)}: "
                "run `bink-python build` first"
            )
    tags = [t for t in tags if t.name in layout_refs]
    refs = [ref for tag in tags for ref in tag.refs if ref in layout_refs]
    if not refs:
        raise UsageError(f"{args.layout} holds none of the selected tags: run `bink-python build`")
    return refs, tags


def _push_verifier(
    family: Family, tags: Sequence[Tag], progress: Progress, settings: Settings
) -> Callable[[Path, Mapping[str, Descriptor]], None]:
    """Verify the push snapshot: each tag's refs on one index, then every check on it."""

    def run(snapshot: Path, resolved: Mapping[str, Descriptor]) -> None:
        for tag in tags:
            digests = {ref: resolved[ref].digest for ref in tag.refs if ref in resolved}
            if len(set(digests.values())) > 1:
                detail = ", ".join(f"{r}={d[:19]}" for r, d in sorted(digests.items()))
                raise PublishError(
                    f"the refs of tag {tag.name} name different indexes ({detail}): "
                    f"rebuild the tag (`bink-python build {tag.name}`) before pushing"
                )
        check_layout(snapshot, family, tags, (), progress, settings=settings)

    return run


def _cmd_push(args: argparse.Namespace) -> int:
    family = family_from(args)
    progress = progress_for(args)
    refs, tags = _refs_for(args, family)
    moves = push(
        Path(args.layout),
        refs,
        args.registry,
        dry_run=args.dry_run,
        tls_verify=not args.insecure,
        progress=progress,
        verifier=None
        if args.no_verify
        else _push_verifier(family, tags, progress, settings_of(args)),
        require_arches={ref: tag.arches for tag in tags for ref in tag.refs},
    )
    for move in moves:
        print(f"{'would move' if args.dry_run else 'moved'} {move}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    family = family_from(args)
    tag = next((t for t in family.tags if t.buildable and args.tag in t.refs), None)
    if tag is None:
        published = ", ".join(r for t in family.tags if t.buildable for r in t.refs)
        raise UsageError(f"{args.tag} is not a tag of {family.path} (tags: {published})")
    export(
        Path(args.layout),
        args.tag,
        args.format,
        Path(args.file),
        arch=args.arch,
        require_arches=tag.arches,
    )
    print(f"{args.file}: {args.format} of {args.tag}")
    return 0


def register(sub: Subparsers, common: Parser) -> None:
    """``push REGISTRY [TAG...]`` and ``export TAG FILE``."""
    p = add_command(
        sub, "push", "push tags to a registry (content by digest, tags last)", _cmd_push, common
    )
    p.add_argument(
        "registry", metavar="REGISTRY", help="HOST[:PORT]/REPO, e.g. ghcr.io/binkhq/python"
    )
    add_tags(p, "tags or patterns (default: all in the layout)")
    add_layout(p)
    add_dry_run(p, "show which tags would move")
    add_insecure(p)
    p.add_argument("--no-verify", action="store_true", help="push without verifying first")

    p = add_command(sub, "export", "write a tag as a docker or OCI archive", _cmd_export, common)
    p.add_argument("tag", metavar="TAG", help="the tag to export")
    p.add_argument(
        "--format",
        required=True,
        choices=("docker-archive", "oci-archive"),
        help="docker-archive (one arch, for docker load) or oci-archive (every arch)",
    )
    p.add_argument("file", metavar="FILE", help="the archive to write")
    add_layout(p)
    p.add_argument("--arch", choices=tuple(ARCHES), help="docker-archive: which architecture")
