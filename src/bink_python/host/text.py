"""Text output: byte sizes for people, and tables (aligned columns or Markdown)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

_BINARY = ("B", "KiB", "MiB", "GiB")
_DECIMAL = ("B", "KB", "MB", "GB")


def human(size: float, *, decimal: bool = False, unit: str = "") -> str:
    """``size`` bytes in the largest unit below 1024 (KiB...), or 1000 (KB...) with ``decimal``.

    With ``unit`` (one of the units of the chosen system) the size is always shown in it.
    """
    base = 1000 if decimal else 1024
    units = _DECIMAL if decimal else _BINARY
    if unit == "B":
        return f"{int(size)} B"
    if unit:
        return f"{size / base ** units.index(unit):.1f} {unit}"
    for name in units[:-1]:
        if size < base:
            return f"{int(size)} B" if name == "B" else f"{size:.1f} {name}"
        size /= base
    return f"{size:.1f} {units[-1]}"


def table_lines(
    rows: Sequence[Sequence[str]], *, right: Collection[int] = (), markdown: bool = False
) -> list[str]:
    """``rows`` as lines of columns two spaces apart, padded to the widest cell of each.

    Columns are left-aligned except those whose index is in ``right``; trailing spaces are
    dropped. With ``markdown`` the first row is the header of a Markdown table instead.
    """
    if markdown:
        rule = ["---"] * len(rows[0])
        return ["| " + " | ".join(row) + " |" for row in (rows[0], rule, *rows[1:])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
