"""``bink-python verify``, and the report output that build and push share."""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError, VerifyError, reported_as
from ..family.config import Family, Tag
from ..family.policy import select_tags
from ..host.arch import ARCHES
from ..host.progress import Progress
from ..oci.layout import Layout
from ..oci.partial import partial_arches
from ..settings import Settings, settings_of
from ..verify import VerifyReport, verify_layout
from .args import family_from, progress_for
from .parser import Parser, Subparsers, add_command, add_json, add_layout, add_mirror, add_tags


class ReportOutput(enum.Enum):
    """Where a verify report goes."""

    PROGRESS = "progress"  # with the progress output; on stderr when checks failed
    STDOUT = "stdout"  # the table on stdout
    JSON = "json"  # the JSON report on stdout


def show_report(
    report: VerifyReport, progress: Progress, output: ReportOutput = ReportOutput.PROGRESS
) -> None:
    """The table (or JSON): on stdout when asked, on stderr when checks failed, else progress."""
    if output is ReportOutput.JSON:
        sys.stdout.write(report.to_json())
        return
    table = report.table().rstrip("\n")
    if output is ReportOutput.STDOUT:
        print(table)
    elif report.failures():
        print(table, file=sys.stderr)
    else:
        progress.info(table)


def check_layout(
    layout: Path,
    family: Family,
    tags: Sequence[Tag],
    arches: Sequence[str],
    progress: Progress,
    *,
    output: ReportOutput = ReportOutput.PROGRESS,
    settings: Settings,
    jobs: int = 2,
) -> None:
    """Run every check on every image; print the table (or JSON); raise on failures."""
    report = verify_layout(
        layout,
        family,
        tags,
        arches=tuple(arches) or None,
        progress=progress,
        mirrors=settings.mirrors,
        cache_dir=settings.cache_dir,
        jobs=jobs,
    )
    show_report(report, progress, output)
    report.raise_for_failures()


def _cmd_verify(args: argparse.Namespace) -> int:
    family = family_from(args)
    layout = Path(args.layout)
    # the command line's own mistake (a pattern matching no tag) is named before the layout
    tags = [t for t in select_tags(family, args.tags) if t.buildable] if args.tags else []
    oci = Layout(layout)
    oci.check_marker()
    if not args.tags:
        with reported_as(VerifyError):
            present = oci.refs()
        tags = [t for t in family.tags if t.buildable and t.name in present]
        if not tags:
            raise UsageError(
                f"{layout} holds none of the tags of {family.path}: run `bink-python build`"
            )
    # a partial layout (build --arch) holds only its arches: verify those by default
    arches = (args.arch,) if args.arch else partial_arches(layout)
    progress = progress_for(args)
    check_layout(
        layout,
        family,
        tags,
        arches,
        progress,
        output=ReportOutput.JSON if args.json else ReportOutput.STDOUT,
        settings=settings_of(args),
        jobs=max(1, args.jobs),
    )
    return 0


def register(sub: Subparsers, common: Parser) -> None:
    """``verify [TAG...]``."""
    p = add_command(
        sub, "verify", "run every check inside every image of a layout", _cmd_verify, common
    )
    add_tags(p, "tags or patterns (default: all in the layout)")
    add_layout(p)
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    add_mirror(p, "the archive mirror the images were built from (build's)")
    add_json(p, "results as JSON")
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="images verified at once (2)")
