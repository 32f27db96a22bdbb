"""The family as a matrix: a table for people, JSON for machines, a GitHub matrix for CI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from ..host.arch import ARCHES
from ..host.text import table_lines
from .config import Family, Tag
from .policy import eol_state

#: GitHub-hosted runners that build each architecture natively.


def tag_record(tag: Tag, family: Family, today: dt.date) -> dict[str, Any]:
    state = eol_state(tag, today)
    return {
        "tag": tag.name,
        "status": tag.status,
        "python": tag.python,
        "os": tag.os,
        "release": tag.release,
        "base": tag.distro.name if tag.os else None,
        "variant": tag.variant if tag.buildable else None,
        "arches": list(tag.arches),
        "components": {c: family.component(c).version for c in tag.components},
        "eol": str(tag.eol) if tag.eol else None,
        "eol_passed": state.passed if state else None,
        "refs": list(tag.refs) if tag.buildable else [],
        "note": tag.note or None,
    }


def as_json(tags: Sequence[Tag], family: Family, today: dt.date) -> str:
    return json.dumps([tag_record(t, family, today) for t in tags], indent=2) + "\n"


def as_github(tags: Sequence[Tag], arches: Sequence[str] = ()) -> str:
    """A ``strategy.matrix`` with one ``include`` entry per tag x arch (compact JSON)."""
    include = []
    for tag in tags:
        for arch in tag.arches:
            if arches and arch not in arches:
                continue
            include.append(
                {
                    "tag": tag.name,
                    "python": tag.version,
                    "os": tag.os,
                    "release": tag.release,
                    "variant": tag.variant,
                    "arch": arch,
                    "runner": ARCHES[arch].runner,
                }
            )
    return json.dumps({"include": include}, separators=(",", ":"))


def as_table(tags: Sequence[Tag], family: Family, today: dt.date) -> str:
    header = ("TAG", "STATUS", "PYTHON", "BASE OS", "VARIANT", "ARCHES", "COMPONENTS", "EOL")
    rows: list[tuple[str, ...]] = [header]
    for tag in tags:
        state = eol_state(tag, today)
        eol = str(tag.eol) if tag.eol else "-"
        if state and state.passed:
            eol += " (passed)"
        elif state and state.near:
            eol += f" ({state.days_left}d left)"
        comps = ", ".join(f"{c} {family.component(c).version}" for c in tag.components) or "-"
        rows.append(
            (
                tag.name,
                tag.status,
                tag.python or "-",
                tag.distro.name if tag.os else "-",
                tag.variant if tag.buildable else "-",
                ",".join(tag.arches) or "-",
                comps,
                eol,
            )
        )
    return "\n".join(table_lines(rows)) + "\n"
