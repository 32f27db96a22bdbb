"""What the handlers make of the parsed options: settings, family, store, cache, progress,
epoch."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

from ..family.config import Family, load_family
from ..host.progress import Progress
from ..inputs.cache import Cache
from ..inputs.lockfile import Lock, source_date_epoch
from ..settings import settings_of
from ..store.store import Store


def family_from(args: argparse.Namespace) -> Family:
    return load_family(settings_of(args).config)


def progress_for(args: argparse.Namespace) -> Progress:
    return Progress(quiet=bool(getattr(args, "quiet", False) or getattr(args, "json", False)))


def store_for(args: argparse.Namespace) -> Store:
    return Store(settings_of(args).cache_dir)


def cache_for(args: argparse.Namespace) -> Cache:
    """The fetch cache under the same root as the store (--cache-dir)."""

    return Cache(settings_of(args).cache_dir)


def print_built(
    args: argparse.Namespace, out: Mapping[str, object], path: Path, cached: bool
) -> None:
    """A stage's result: ``out`` as JSON with --json, else ``PATH (cached|built)``."""
    print(json.dumps(out) if args.json else f"{path} ({'cached' if cached else 'built'})")


def epoch_for(args: argparse.Namespace, family: Family | None = None) -> int:
    """SOURCE_DATE_EPOCH: --source-date-epoch, $SOURCE_DATE_EPOCH, else images.lock."""

    def from_lock() -> int:
        return Lock.load((family or family_from(args)).lock_path).source_date_epoch

    return source_date_epoch(settings_of(args).source_date_epoch(), fallback=from_lock)
