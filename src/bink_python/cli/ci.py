"""``bink-python ci``: the release workflow's glue, as commands tested here.

Each step of ``.github/workflows/release.yml`` runs one ``bink-python`` command; the
parts that were shell and jq live here:

* ``ci plan`` - the plan job's outputs: ``runtimes`` (one entry per CPython version,
  OS release and arch, with the native runner of that arch) and ``tags`` (one entry
  per buildable tag), as ``name=<compact JSON>`` lines for ``$GITHUB_OUTPUT``;
* ``ci affected [--base REF]`` - the pull request's build matrix: the (tag, arch) pairs
  a change can alter (:mod:`bink_python.cli.affected`);
* ``ci published REGISTRY TAG`` - the publish job's "what would change": the digest
  the layout's tag names and whether the registry's tag already names it, as
  ``index=`` and ``changed=`` lines (``changed=false``: nothing to push, sign or attest).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..family.config import Tag, load_family
from ..family.policy import check_buildable, select_tags
from ..host.arch import ARCHES
from ..oci.layout import Layout
from ..publish.publish import parse_destination, remote_digest
from ..settings import settings_of
from .affected import cmd_affected
from .parser import Parser, Subparsers, add_command, add_group, add_insecure, add_layout, add_tags


def plan_outputs(tags: Sequence[Tag]) -> dict[str, str]:
    """The plan job's outputs for ``tags`` (already policy-checked), compact JSON."""
    runtimes: list[dict[str, str]] = []
    entries: list[dict[str, str]] = []
    for tag in tags:
        os_name, release = str(tag.os), str(tag.release)
        entry = {"tag": tag.name, "python": tag.version, "os": os_name, "release": release}
        if entry not in entries:
            entries.append(entry)
        for arch in tag.arches:
            runtime = {
                "python": tag.version,
                "os": os_name,
                "release": release,
                "arch": arch,
                "runner": ARCHES[arch].runner,
            }
            if runtime not in runtimes:
                runtimes.append(runtime)

    def compact(include: list[dict[str, str]]) -> str:
        key = lambda e: tuple(sorted(e.items()))  # noqa: E731
        return json.dumps({"include": sorted(include, key=key)}, separators=(",", ":"))

    return {"runtimes": compact(runtimes), "tags": compact(entries)}


def published_outputs(
    layout_path: Path, registry: str, tag: str, *, tls_verify: bool = True
) -> dict[str, str]:
    """``index`` (the layout's digest for ``tag``) and ``changed`` (registry differs)."""
    repo = parse_destination(registry)
    layout = Layout(layout_path)
    layout.check_marker()
    index = layout.resolve(tag).digest
    remote = remote_digest(repo, tag, tls_verify=tls_verify)
    return {"index": index, "changed": "false" if remote == index else "true"}


def _print(outputs: dict[str, str]) -> None:
    for name, value in outputs.items():
        print(f"{name}={value}")


def _cmd_plan(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    family = load_family(settings.config)
    tags = select_tags(family, args.tags)
    result = check_buildable(tags, today=settings.clock(), allow_eol=args.allow_eol, explicit=False)
    _print(plan_outputs(result.tags))
    return 0


def _cmd_published(args: argparse.Namespace) -> int:
    _print(
        published_outputs(Path(args.layout), args.registry, args.tag, tls_verify=not args.insecure)
    )
    return 0


def register(sub: Subparsers, common: Parser) -> None:
    """Registrar for :mod:`bink_python.cli.commands`: ``bink-python ci plan|published``."""
    actions = add_group(sub, "ci", "the workflows' steps (plan, published, affected)")
    p = add_command(
        actions, "plan", "runtimes and tags to build, as GitHub outputs", _cmd_plan, common
    )
    add_tags(p, "tag names or patterns (default: all)")
    p.add_argument("--allow-eol", action="store_true", help="include tags past EOL")
    p = add_command(
        actions,
        "published",
        "the layout's digest of a tag and whether the registry already has it",
        _cmd_published,
        common,
    )
    p.add_argument("registry", metavar="REGISTRY", help="HOST[:PORT]/REPO")
    p.add_argument("tag", metavar="TAG", help="the tag whose digest is compared")
    add_layout(p)
    add_insecure(p)
    p = add_command(
        actions,
        "affected",
        "the images a change can alter (tag x arch, native runner), as GitHub outputs",
        cmd_affected,
        common,
    )
    p.add_argument(
        "--base",
        metavar="REF",
        help="what the change is compared with (its merge base); default: every image",
    )
