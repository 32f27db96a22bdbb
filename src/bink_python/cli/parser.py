"""The command line's shared parts: the parser, options declared once, the registration helper."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable
from typing import TypeAlias

from ..errors import UsageError
from ..host.arch import ARCHES
from ..runtime.spec import PROFILES

#: A command's handler: parsed options in, exit code out.
Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}{_hint(message)}")


def _hint(message: str) -> str:
    """What to try instead: the nearest choice to a mistyped one, or how to pass a value
    that starts with ``-``."""
    choice = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if choice:
        choices = re.findall(r"'([^']*)'", choice.group(3))
        near = difflib.get_close_matches(choice.group(2), choices, n=1)
        return f"; did you mean '{near[0]}'?" if near else ""
    option = re.match(r"argument (--[\w-]+): expected one argument$", message)
    if option:
        return f" (a value that starts with '-' is given as {option.group(1)}=VALUE)"
    return ""


#: The subcommands of the program or of a command group (argparse has no public name).
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"

#: What options are added to: a parser or a group of mutually exclusive options.
Options: TypeAlias = argparse._ActionsContainer

#: Registers a group of subcommands: function(subparsers, common options).
Registrar: TypeAlias = Callable[[Subparsers, Parser], None]


def add_common_options(p: Options, *, defaults: bool) -> None:
    """The options every command takes (--config, --cache-dir, --quiet, --debug): on the
    program with their defaults, and again on each command without them, so they may
    stand before or after the command and the one given wins."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    p.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="images.toml to use (default ./images.toml or $BINK_PYTHON_CONFIG); "
        "images.lock is read beside it",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=default(None),
        help="cache directory (default $BINK_PYTHON_CACHE or ~/.cache/bink-python)",
    )
    p.add_argument(
        "--quiet", "-q", action="store_true", default=default(False), help="no progress output"
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the traceback of an error (also BINK_PYTHON_DEBUG=1)",
    )


def common_options() -> Parser:
    """The common options as a parent parser of every command."""
    common = Parser(add_help=False)
    add_common_options(common, defaults=False)
    return common


def add_command(
    sub: Subparsers, name: str, text: str, func: Handler, common: Parser | None
) -> Parser:
    """Register command ``name`` (with the common options unless None) dispatching to ``func``."""
    p = sub.add_parser(
        name, parents=[common] if common else [], help=text, description=sentence(text)
    )
    p.set_defaults(func=func)
    return p


def sentence(text: str) -> str:
    """A command's one-line help as its description."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def add_group(sub: Subparsers, name: str, text: str) -> Subparsers:
    """Register command group ``name``: its actions are required (``name ACTION``)."""
    p = sub.add_parser(name, help=text, description=sentence(text))
    actions = p.add_subparsers(dest=f"{name}_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    return actions


def add_tags(p: Options, text: str) -> None:
    p.add_argument("tags", nargs="*", default=[], metavar="TAG", help=text)


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
    p.add_argument(
        "--os", default="debian", choices=("debian", "ubuntu"), help="distribution (debian)"
    )
    p.add_argument("--release", default="13", help="its release: 13, 12 or 22.04 (13)")
    p.add_argument("--arch", required=True, choices=tuple(ARCHES), help="target architecture")
    add_mirror(p, "archive mirror (default: apt's config)")
    add_source_date_epoch(p)


def add_profile(p: Options) -> None:
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="release",
        help="release (PGO+LTO, the images') or fast (no PGO/LTO: development, tests)",
    )
