"""Partial layouts: the marker a single-arch build leaves, naming the arches it holds."""

from __future__ import annotations

from pathlib import Path

from ..errors import BuildError
from ..store.store import atomic_write_bytes

#: File in a layout written by a single-arch build: the arches its indexes hold.
PARTIAL_MARKER = "bink-partial-arches"


def partial_arches(path: Path) -> tuple[str, ...]:
    """The arches of a partial layout (``build --arch``); empty for a complete one.

    A partial layout's tag refs name indexes holding only these arches: it can be
    verified and read, never pushed or exported (publish.py refuses it).
    """
    try:
        text = (path / PARTIAL_MARKER).read_text()
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise BuildError(f"{path / PARTIAL_MARKER} is unreadable: {exc}") from exc
    return tuple(sorted(line.strip() for line in text.splitlines() if line.strip()))


def mark_partial(path: Path, arches: tuple[str, ...]) -> None:
    """Record that ``path`` holds single-arch indexes (before any of its refs move)."""
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / PARTIAL_MARKER, "".join(f"{a}\n" for a in sorted(arches)).encode())
