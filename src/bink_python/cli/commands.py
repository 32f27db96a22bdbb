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
from ..image import sbom
from . import build, cache, ci, family, image, publish, verify
from .parser import Parser, Registrar, add_common_options, common_options, sentence

#: Every command group, in the order ``--help`` lists them.
REGISTRARS: tuple[Registrar, ...] = (
    family.register,
    cache.register,
    build.register,
    publish.register,
    verify.register,
    sbom.register,
    image.register_diff,
    doctor.register,
    ci.register,
    image.register_layers,
)


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog="bink-python",
        description="Build, verify and publish the Bink Python container base images.",
    )
    parser.add_argument("--version", "-V", action="version", version=f"bink-python {__version__}")
    add_common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in REGISTRARS:
        register(sub, common)
    describe(parser)
    return parser


def describe(parser: argparse.ArgumentParser) -> None:
    """Give every command without a description its one-line help, as a sentence (the
    groups in lower layers register their parsers with argparse directly)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = sentence(str(helps[name]))
                describe(sub)
