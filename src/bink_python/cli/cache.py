"""``bink-python cache add|ls|verify|du|prune``: the fetch cache and the build entries."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from ..errors import FetchError, UsageError
from ..host.text import human
from ..inputs.cache import cache_add, cache_ls
from ..inputs.lockfile import Lock
from ..pipeline.housekeeping import Item, inventory, needs, remove, select, verify_entries
from ..pipeline.usage import parse_size, usage, usage_table
from ..settings import settings_of
from ..store.kinds import ENTRY_KINDS
from .args import cache_for, family_from, store_for
from .parser import Parser, Subparsers, add_command, add_dry_run, add_group, add_json


def _cmd_cache_add(args: argparse.Namespace) -> int:
    family = family_from(args)
    added = cache_add(
        [Path(f) for f in args.files],
        cache_for(args),
        lock_path=family.lock_path,
        for_=args.for_,
    )
    for item in added:
        names = ", ".join(item.artifacts) or "no lock artifact"
        pinned = " (pinned)" if item.pinned else ""
        print(f"{item.entry.sha256}  {item.entry.size:>10}  {item.source}  -> {names}{pinned}")
    return 0


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    family = family_from(args)
    for item in cache_ls(cache_for(args), Lock.load_or_empty(family.lock_path)):
        names = ", ".join(item.artifacts) or "-"
        print(f"{item.entry.sha256}  {item.entry.size:>10}  {names}")
    store = store_for(args)
    for kind in ENTRY_KINDS:  # then the build entries, kind by kind
        for entry in store.entries(kind.name):
            print(f"{kind.name}/{entry.name}")
    return 0


def _cmd_cache_verify(args: argparse.Namespace) -> int:
    root = settings_of(args).cache_dir
    bad = verify_entries(root)
    if bad:
        raise FetchError(
            f"{len(bad)} cache entr{'y' if len(bad) == 1 else 'ies'} no longer match their "
            f"record (tampered or corrupted; remove them or run `cache prune`): " + "; ".join(bad)
        )
    print(f"{root}: every entry matches its record")
    return 0


def _cache_items(args: argparse.Namespace) -> list[Item]:
    family = family_from(args)
    lock = Lock.load(family.lock_path)
    return inventory(settings_of(args).cache_dir, needs(family, lock))


def _cmd_cache_du(args: argparse.Namespace) -> int:
    rows = usage(_cache_items(args))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(usage_table(rows))
    return 0


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    try:
        budget = parse_size(args.max_size) if args.max_size is not None else None
    except ValueError as exc:
        raise UsageError(f"--max-size {exc}") from None
    if args.older_than is not None and not (
        math.isfinite(args.older_than) and args.older_than >= 0
    ):
        raise UsageError(f"--older-than {args.older_than}: expected a number of days >= 0")
    older = args.older_than * 86400 if args.older_than is not None else None
    root = settings_of(args).cache_dir
    items = _cache_items(args)
    doomed = select(items, older_than=older, max_bytes=budget, now=time.time())
    verb = "would remove" if args.dry_run else "removed"
    freed = 0
    count = 0
    for item in doomed:
        if args.dry_run or remove(item, root):
            print(f"{verb} {item.path} ({item.kind}, {human(item.size)})")
            freed += item.size
            count += 1
    print(f"{verb} {count} entries, {human(freed)}")
    return 0


def register(sub: Subparsers, common: Parser) -> None:
    """``cache ACTION``."""
    actions = add_group(sub, "cache", "the content-addressed fetch cache")
    p = add_command(actions, "add", "seed the cache from local files", _cmd_cache_add, common)
    p.add_argument("files", nargs="+", metavar="FILE", help="the files to add")
    p.add_argument(
        "--for",
        dest="for_",
        metavar="ARTIFACT",
        help="the lock artifact the file is (e.g. linkerd-await:0.3.3:arm64): pins it "
        "when unpinned, verifies it otherwise",
    )
    add_command(
        actions,
        "ls",
        "list cache entries (inputs, then each kind of build entry)",
        _cmd_cache_ls,
        common,
    )
    add_command(
        actions,
        "verify",
        "check every entry (inputs, then each kind of build entry)",
        _cmd_cache_verify,
        common,
    )
    p = add_command(
        actions,
        "du",
        "disk usage per kind (inputs, bases, runtimes, logs...)",
        _cmd_cache_du,
        common,
    )
    add_json(p)
    p = add_command(
        actions,
        "prune",
        "remove what images.toml and images.lock do not need (by age / size budget)",
        _cmd_cache_prune,
        common,
    )
    add_dry_run(p, "show what would be removed")
    p.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="only entries unused for DAYS (default: any age)",
    )
    p.add_argument(
        "--max-size",
        metavar="SIZE",
        help="then remove the oldest unneeded entries until the cache fits SIZE (e.g. 50G)",
    )
