"""``bink-python matrix``, ``readme``, ``lock`` and ``update``: the family's own files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PolicyError
from ..family import matrix
from ..family.config import STATUSES, Family
from ..family.policy import check_buildable, select_tags
from ..host.arch import ARCHES
from ..inputs.fetch import FetchSettings
from ..inputs.lockfile import Lock, parse_pin, sync_lock
from ..inputs.update import run_lock, run_update
from ..publish import readme
from ..settings import Settings, settings_of
from .args import cache_for, family_from, progress_for
from .parser import (
    Parser,
    Subparsers,
    add_command,
    add_dry_run,
    add_json,
    add_mirror,
    add_offline,
    add_tags,
)


def _cmd_matrix(args: argparse.Namespace) -> int:
    family = family_from(args)
    today = settings_of(args).clock()
    tags = select_tags(family, args.tags, statuses=args.status or (), arch=args.arch)
    if args.github:
        result = check_buildable(tags, today=today, allow_eol=args.allow_eol, explicit=False)
        print(matrix.as_github(result.tags, (args.arch,) if args.arch else ()))
    elif args.json:
        sys.stdout.write(matrix.as_json(tags, family, today))
    else:
        sys.stdout.write(matrix.as_table(tags, family, today))
    return 0


def _cmd_readme(args: argparse.Namespace) -> int:
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


def _fetch_settings(args: argparse.Namespace) -> FetchSettings:
    return FetchSettings.of(settings_of(args))


def _cmd_lock(args: argparse.Namespace) -> int:
    family = family_from(args)
    if args.check:
        return _check_pins(family, settings_of(args))
    result = run_lock(
        family,
        cache_for(args),
        offline=args.offline,
        pins=dict(parse_pin(p) for p in args.pin or ()),
        progress=progress_for(args),
        settings=_fetch_settings(args),
        only_unpinned=args.unpinned,
        epoch=settings_of(args).source_date_epoch,
    )
    state = "updated" if result.changed else "unchanged"
    print(f"{family.lock_path} {state}: {len(result.lock.artifacts)} artifacts")
    for name in result.pinned:
        how = (
            "trusted on first use: upstream publishes no checksum for it"
            if name in result.trusted
            else "checked against the checksum upstream publishes"
        )
        print(f"  pinned   {name} ({how})")
    for name in result.fetched:
        if name not in result.pinned:
            print(f"  fetched  {name}")
    for name in result.unpinned:
        print(f"  unpinned {name}: run `bink-python lock` where upstream is reachable")
    return 0


def _check_pins(family: Family, settings: Settings) -> int:
    """``lock --check``: one line and exit 4 when images.toml needs an input the lock does
    not pin; nothing fetched or written."""
    lock = sync_lock(
        family,
        Lock.load_or_empty(family.lock_path),
        None,
        upstream=settings.upstream,
        epoch=settings.source_date_epoch,
    )
    unpinned = [a.name for a in lock.artifacts.values() if a.sha256 is None]
    if unpinned:
        raise PolicyError(
            f"{family.lock_path}: {len(unpinned)} input(s) not pinned ({', '.join(unpinned)}): "
            "run `bink-python lock --unpinned` where upstream is reachable, and commit it"
        )
    print(f"{family.lock_path}: every input is pinned")
    return 0


def _write_readme(family: Family) -> bool:
    """Rewrite the README beside ``family``'s images.toml; whether it changed."""
    return readme.write_readme(family, readme.readme_path(family))


def _cmd_update(args: argparse.Namespace) -> int:
    result = run_update(
        family_from(args),
        dry_run=args.dry_run,
        progress=progress_for(args),
        settings=_fetch_settings(args),
        write_readme=_write_readme,
        epoch=settings_of(args).source_date_epoch,
    )
    print(result.summary())
    return 0


def _register_matrix(sub: Subparsers, common: Parser) -> None:
    p = add_command(
        sub, "matrix", "show the image family (table, --json, --github)", _cmd_matrix, common
    )
    add_tags(p, "tag names or patterns (3.1*, *-distroless)")
    p.add_argument("--status", action="append", choices=STATUSES, help="only tags with this status")
    p.add_argument("--arch", choices=tuple(ARCHES), help="only this architecture")
    fmt = p.add_mutually_exclusive_group()
    add_json(fmt)
    fmt.add_argument(
        "--github",
        action="store_true",
        help="GitHub Actions strategy.matrix JSON: one entry per buildable tag x arch",
    )
    p.add_argument("--allow-eol", action="store_true", help="with --github: include tags past EOL")


def register(sub: Subparsers, common: Parser) -> None:
    """``matrix``, ``readme``, ``lock`` and ``update``."""
    _register_matrix(sub, common)

    p = add_command(
        sub, "readme", "regenerate the README's generated sections", _cmd_readme, common
    )
    p.add_argument("--check", action="store_true", help="exit non-zero when the README is stale")
    p.add_argument(
        "--readme", metavar="PATH", help="README to update (default: beside images.toml)"
    )

    p = add_command(sub, "lock", "pin every input images.toml names", _cmd_lock, common)
    add_offline(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--unpinned",
        action="store_true",
        help="pin only what images.lock leaves unpinned; fetch nothing else",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 4 naming every unpinned input; fetch and write nothing",
    )
    p.add_argument(
        "--pin",
        action="append",
        metavar="NAME=SHA256",
        help="pin an artifact to a known sha256 (repeatable), e.g. cpython:3.13.16=<hex>",
    )
    add_mirror(p)

    p = add_command(
        sub, "update", "move tags to the newest releases (toml, lock, README)", _cmd_update, common
    )
    add_dry_run(p, "show what would change")
    add_mirror(p)
