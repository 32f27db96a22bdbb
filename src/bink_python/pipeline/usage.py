"""``cache du`` and ``cache prune --max-size``: disk usage per kind, and sizes read and shown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..host.text import human, table_lines
from .housekeeping import KINDS, Item


@dataclass(frozen=True)
class Usage:
    kind: str
    entries: int
    size: int
    needed: int  # bytes the current family needs


def usage(items: list[Item]) -> list[Usage]:
    out = []
    for kind in KINDS:
        mine = [i for i in items if i.kind == kind]
        if mine:
            out.append(
                Usage(
                    kind,
                    len(mine),
                    sum(i.size for i in mine),
                    sum(i.size for i in mine if i.needed),
                )
            )
    return out


def usage_table(rows: list[Usage]) -> str:
    lines = [("KIND", "ENTRIES", "SIZE", "NEEDED")]
    for row in rows:
        lines.append((row.kind, str(row.entries), human(row.size), human(row.needed)))
    total = sum(r.size for r in rows)
    lines.append(("total", str(sum(r.entries for r in rows)), human(total), ""))
    return "\n".join(table_lines(lines, right=(1, 2, 3)))


def parse_size(text: str) -> int:
    """``500M``, ``20G``, ``1.5T``, ``1000`` (bytes) -> bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not found:
        raise ValueError(f"{text!r}: expected a size such as 500M, 20G or 1.5T")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(float(found.group(1)) * scale[found.group(2).upper()])
