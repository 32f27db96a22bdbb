"""The kinds of keyed store entries, registered once.

Each kind names its directory under the cache root, the JSON record every complete
entry carries, how its integrity is checked (``cache verify``) and what keeps it in
``cache prune`` (:class:`Keep`). The stages write entries only of these kinds, and
``cache du``, ``verify`` and ``prune`` walk :data:`ENTRY_KINDS`, so a kind added
here is checked and pruned everywhere.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import read_json, sha256_file


class Keep(enum.Enum):
    """What keeps an entry of a kind alive in ``cache prune`` (the family's needs)."""

    #: the newest entry of each (OS, release, arch, variant) the family builds on
    NEWEST_BASE = "the newest base of each (os, release, arch, variant) the family uses"
    #: the newest entry of each (OS, release, host arch) the family compiles in
    NEWEST_BUILDROOT = "the newest build root of each (os, release) the family compiles in"
    #: an entry whose key is the runtime key of a buildable (tag, arch, profile)
    RUNTIME_KEY = "the runtime of every buildable (tag, arch) in both profiles"
    #: an entry whose ``meta.json`` names the diff_id of a kept base or runtime
    KEPT_LAYER = "the compressed layers of kept bases and runtimes"
    #: an entry whose ``meta.json`` names a kept base and a kept runtime
    KEPT_BASE_AND_RUNTIME = "the loader cache of a kept base and runtime"
    #: an entry whose every file is a pinned input
    PINNED_FILES = "a files layer made only of pinned inputs"


@dataclass(frozen=True)
class Payload:
    """A payload file checked against the hash (and size) its entry's record names."""

    name: str  # the payload file
    hash_field: str  # the record's field holding the hex sha256 (``sha256:`` prefix allowed)
    size_field: str | None  # the record's field holding the payload's size, if any


@dataclass(frozen=True)
class EntryKind:
    """One kind of keyed store entry: its directory, how to check it, what keeps it."""

    name: str  # the directory under the cache root
    keep: Keep
    record: str  # the JSON record every complete entry carries
    payload: Payload | None = None  # checked against its recorded sha256
    must_exist: tuple[str, ...] = ()  # further paths a complete entry has
    magic: tuple[str, bytes] | None = None  # (file, the bytes it starts with)

    def problems(self, entry: Path) -> list[str]:
        """What is wrong with the complete entry ``entry`` (empty when it is sound)."""
        try:
            record = read_json(entry / self.record)
            if not isinstance(record, dict):
                raise ValueError(record)
        except (OSError, ValueError):
            return [f"{entry}: {self.record} missing or unreadable"]
        out = [
            f"{entry}: {name} missing" for name in self.must_exist if not (entry / name).exists()
        ]
        if self.magic is not None:
            name, magic = self.magic
            try:
                with open(entry / name, "rb") as handle:
                    head = handle.read(len(magic))
            except OSError:
                out.append(f"{entry}: {name} missing")
            else:
                if head != magic:
                    out.append(f"{entry}: {name} is not what it should be (bad header)")
        if self.payload is not None:
            out.extend(self._payload_problems(entry, record, self.payload))
        return out

    def _payload_problems(self, entry: Path, record: dict[str, Any], payload: Payload) -> list[str]:
        try:
            expected = str(record[payload.hash_field]).removeprefix("sha256:")
        except KeyError:
            return [f"{entry}: {self.record} names no {payload.hash_field}"]
        size = record.get(payload.size_field) if payload.size_field else None
        target = entry / payload.name
        try:
            actual_size = target.stat().st_size
        except FileNotFoundError:
            return [f"{entry}: {payload.name} missing"]
        if isinstance(size, int) and size != actual_size:
            return [f"{entry}: {payload.name} is {actual_size} bytes, recorded {size}"]
        if sha256_file(target) != expected:
            return [f"{entry}: {payload.name} does not match its recorded sha256"]
        return []


BASES = EntryKind("bases", Keep.NEWEST_BASE, "record.json", Payload("rootfs.tar", "sha256", "size"))
RUNTIMES = EntryKind(
    "runtimes", Keep.RUNTIME_KEY, "record.json", Payload("runtime.tar", "sha256", "size")
)
BUILDROOTS = EntryKind(
    "buildroots", Keep.NEWEST_BUILDROOT, "buildroot.json", must_exist=("root/usr/bin",)
)
GZIP_LAYERS = EntryKind(
    "gzip-layers", Keep.KEPT_LAYER, "meta.json", Payload("layer.tar.gz", "digest", "size")
)
ZSTD_LAYERS = EntryKind(
    "zstd-layers", Keep.KEPT_LAYER, "meta.json", Payload("layer.tar.zst", "digest", "size")
)
FILES_LAYERS = EntryKind(
    "files-layers", Keep.PINNED_FILES, "meta.json", Payload("layer.tar", "diff_id", None)
)
#: glibc's loader cache records no hash of itself: its header is what can be checked.
LD_CACHES = EntryKind(
    "ld-caches",
    Keep.KEPT_BASE_AND_RUNTIME,
    "meta.json",
    magic=("ld.so.cache", b"glibc-ld.so.cache1.1"),
)

#: Every kind of keyed entry, in report order: ``cache du``, ``verify`` and ``prune`` walk this.
ENTRY_KINDS = (BASES, RUNTIMES, BUILDROOTS, GZIP_LAYERS, ZSTD_LAYERS, FILES_LAYERS, LD_CACHES)
