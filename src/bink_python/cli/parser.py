"""The command line's shared parts: the parser, options declared once, the registration helper."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from ..errors import UsageError
from ..host.arch import ARCHES

#: A command's handler: parsed options in, exit code out.
Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


#: The subcommands of the program or of a command group (argparse has no public name).
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"

#: What options are added to: a parser or a group of mutually exclusive options.
Options: TypeAlias = argparse._ActionsContainer

#: Registers a group of subcommands: function(subparsers, common options).
Registrar: TypeAlias = Callable[[Subparsers, Parser], None]


def common_options() -> Parser:
    """The options every command takes (--config, --cache-dir, --quiet, --debug)."""
    common = Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="images.toml to use (default ./images.toml or $BINK_PYTHON_CONFIG); "
        "images.lock is read beside it",
    )
    common.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache directory (default $BINK_PYTHON_CACHE or ~/.cache/bink-python)",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error (also BINK_PYTHON_DEBUG=1)",
    )
    return common


def add_command(
    sub: Subparsers, name: str, text: str, func: Handler, common: Parser | None
) -> Parser:
    """Register command ``name`` (with the common options unless None) dispatching to ``func``."""
    p = sub.add_parser(name, parents=[common] if common else [], help=text)
    p.set_defaults(func=func)
    return p


def add_group(sub: Subparsers, name: str, text: str) -> Subparsers:
    """Register command group ``name``: its actions are required (``name ACTION``)."""
    p = sub.add_parser(name, help=text)
    actions = p.add_subparsers(dest=f"{name}_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    return actions


def add_tags(p: Options, text: str) -> None:
    p.add_argument("tags", nargs="*", metavar="TAG", help=text)


def add_json(p: Options, text: str = "machine-readable JSON") -> None:
    p.add_argument("--json", action="store_true", help=text)


def add_offline(p: Options) -> None:
    p.add_argument("--offline", action="store_true", help="never use the network")


def add_force(p: Options) -> None:
    p.add_argument("--force", action="store_true", help="rebuild even when cached")


def add_dry_run(p: Options, text: str) -> None:
    p.add_argument("--dry-run", action="store_true", help=text)


def add_mirror(p: Options, text: str = "Debian archive mirror (default: apt's)") -> None:
    p.add_argument("--mirror", metavar="URL", help=text)


def add_source_date_epoch(p: Options) -> None:
    p.add_argument("--source-date-epoch", type=int, metavar="N", help="default: images.lock")


def add_layout(p: Options) -> None:
    p.add_argument("--layout", default="dist/oci", metavar="DIR", help="OCI layout (dist/oci)")


def add_insecure(p: Options) -> None:
    p.add_argument("--insecure", action="store_true", help="plain HTTP / no TLS verification")


def add_extra_package(p: Options, text: str) -> None:
    p.add_argument("--extra-package", action="append", metavar="PKG", help=text)


def add_os_options(p: Options) -> None:
    """The distribution and arch of one base or runtime (``base build``, ``runtime``)."""
    p.add_argument("--os", default="debian", choices=("debian", "ubuntu"))
    p.add_argument("--release", default="13", help="13, 12 or 22.04")
    p.add_argument("--arch", required=True, choices=tuple(ARCHES))
    add_mirror(p, "archive mirror (default: apt's config)")
    add_source_date_epoch(p)
