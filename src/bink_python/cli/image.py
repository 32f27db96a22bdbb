"""``bink-python diff`` and ``layers``: what changed between two images, what one weighs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..host.arch import ARCHES
from ..image.diff import DiffReport, diff_images
from ..image.sizes import ImageSizes, image_sizes
from ..oci import compression
from ..oci.layout import Layout, add_layout_option
from .parser import Parser, Subparsers, add_command, add_json


def _write(report: DiffReport | ImageSizes, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(report.text())


def _cmd_diff(args: argparse.Namespace) -> int:
    report = diff_images(args.old, args.new, arch=args.arch, tls_verify=not args.insecure)
    _write(report, args.json)
    return 1 if report.changed else 0


def _cmd_layers(args: argparse.Namespace) -> int:
    layout = Layout(Path(args.layout))
    layout.check_marker()
    _write(image_sizes(layout, args.tag, args.arch, args.compression, args.top), args.json)
    return 0


def register_diff(sub: Subparsers, common: Parser) -> None:
    """``bink-python diff OLD NEW``."""
    text = "what changed between two images (exit 0: no change, 1: changes)"
    p = add_command(sub, "diff", text, _cmd_diff, common)
    p.add_argument("old", metavar="OLD", help="oci:DIR:TAG, docker://HOST/REPO:TAG, ...")
    p.add_argument("new", metavar="NEW", help="the image to compare OLD with")
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    add_json(p, "the report as JSON")
    p.add_argument("--insecure", action="store_true", help="registries over plain HTTP / no TLS")


def register_layers(sub: Subparsers, common: Parser) -> None:
    """``bink-python layers TAG --arch ARCH``."""
    text = "sizes of one image's layers and their biggest files and directories"
    p = add_command(sub, "layers", text, _cmd_layers, common)
    p.add_argument("tag", metavar="TAG", help="image tag (a ref of the layout), e.g. 3.13")
    p.add_argument("--arch", required=True, choices=tuple(ARCHES), help="architecture")
    p.add_argument(
        "--compression",
        choices=compression.ALGORITHMS,
        help="which instance when the index has both (default: the first listed)",
    )
    p.add_argument("--top", type=int, default=10, metavar="N", help="paths listed per layer (10)")
    add_json(p, "print JSON")
    add_layout_option(p)
