"""The one parser of exact CPython versions, shared by images.toml and the runtime stage.

An exact version is ``X.Y.Z`` and nothing else: the family publishes final releases
only, so pre-releases (``3.14.0rc1``) are refused where images.toml is read, not
later where the runtime is built. The whole string must match (``re.fullmatch``:
``re.match`` with ``$`` would let a trailing newline through).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_EXACT = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class CPythonVersion(NamedTuple):
    major: int
    minor: int
    patch: int

    @property
    def minor_name(self) -> str:
        """``3.13`` for 3.13.15."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_cpython_version(text: str) -> CPythonVersion | None:
    """``3.13.15`` -> (3, 13, 15); None for anything else (pre-releases included)."""
    found = _EXACT.fullmatch(text)
    if found is None:
        return None
    return CPythonVersion(int(found[1]), int(found[2]), int(found[3]))


def version_tuple(version: str) -> tuple[int, ...]:
    """A sort key of an ``X.Y.Z`` version; ``(0,)`` (first) for anything else."""
    parsed = parse_cpython_version(version)
    return tuple(parsed) if parsed is not None else (0,)
