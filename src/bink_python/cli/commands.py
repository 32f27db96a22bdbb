"""The command line: a thin layer that parses options and calls the stage modules.

``build_parser()`` is the single definition of every command line; tests parse
the workflows' invocations with it. Each command group registers itself (its module's
``register``); handlers return an exit code; errors are raised as ``BinkError`` and
mapped to exit codes in ``__main__``.
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..host import doctor
from ..image import diff, sbom, sizes
from . import build, cache, ci, family, publish, verify
from .parser import Parser, Registrar, common_options

#: Every command group, in the order ``--help`` lists them.
REGISTRARS: tuple[Registrar, ...] = (
    family.register,
    cache.register,
    build.register,
    publish.register,
    verify.register,
    sbom.register,
    diff.register,
    doctor.register,
    ci.register,
    sizes.register,
)


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog="bink-python",
        description="Build, verify and publish the Bink Python container base images.",
    )
    parser.add_argument("--version", action="version", version=f"bink-python {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in REGISTRARS:
        register(sub, common)
    return parser
