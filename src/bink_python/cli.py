"""The command line: a thin layer that parses options and calls the stage modules.

``build_parser()`` is the single definition of every command line; tests parse
the workflows' invocations with it. Handlers return an exit code; errors are
raised as ``BinkError`` and mapped to exit codes in ``__main__``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .config import STATUSES, Family, config_path, load_family
from .distro import ARCHES
from .errors import UsageError
from .policy import system_clock

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def family_from(args: argparse.Namespace) -> Family:
    return load_family(config_path(args.config))


def _common() -> _Parser:
    common = _Parser(add_help=False)
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
    return common


# -- matrix -----------------------------------------------------------------


def _cmd_matrix(args: argparse.Namespace) -> int:
    from . import matrix
    from .policy import check_buildable, select_tags

    family = family_from(args)
    today = system_clock()
    tags = select_tags(family, args.tags, statuses=args.status or (), arch=args.arch)
    if args.github:
        result = check_buildable(tags, today=today, allow_eol=args.allow_eol, explicit=False)
        print(matrix.as_github(result.tags, (args.arch,) if args.arch else ()))
    elif args.json:
        sys.stdout.write(matrix.as_json(tags, family, today))
    else:
        sys.stdout.write(matrix.as_table(tags, family, today))
    return 0


# -- readme -----------------------------------------------------------------


def _cmd_readme(args: argparse.Namespace) -> int:
    from . import readme

    family = family_from(args)
    path = Path(args.readme) if args.readme else readme.readme_path(family)
    if args.check:
        if readme.is_stale(family, path):
            print(
                f"{path} is stale: run `bink-python readme` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is up to date")
        return 0
    changed = readme.write_readme(family, path)
    print(f"{path} {'updated' if changed else 'already up to date'}")
    return 0


# -- parser -----------------------------------------------------------------

#: Extra subcommands registered by stage modules: name -> function(subparsers, common).
Registrar = Callable[["argparse._SubParsersAction[_Parser]", "_Parser"], None]
_REGISTRARS: list[Registrar] = []


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="bink-python",
        description="Build, verify and publish the Bink Python container base images.",
    )
    parser.add_argument("--version", action="version", version=f"bink-python {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "matrix", parents=[common], help="show the image family (table, --json, --github)"
    )
    p.add_argument(
        "tags", nargs="*", metavar="TAG", help="tag names or patterns (3.1*, *-distroless)"
    )
    p.add_argument("--status", action="append", choices=STATUSES, help="only tags with this status")
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON")
    fmt.add_argument(
        "--github",
        action="store_true",
        help="GitHub Actions strategy.matrix JSON: one entry per buildable tag x arch",
    )
    p.add_argument("--allow-eol", action="store_true", help="with --github: include tags past EOL")
    p.set_defaults(func=_cmd_matrix)

    p = sub.add_parser(
        "readme", parents=[common], help="regenerate the README's generated sections"
    )
    p.add_argument("--check", action="store_true", help="exit non-zero when the README is stale")
    p.add_argument(
        "--readme", metavar="PATH", help="README to update (default: beside images.toml)"
    )
    p.set_defaults(func=_cmd_readme)

    for register in _REGISTRARS:
        register(sub, common)
    return parser
