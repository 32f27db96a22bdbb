"""Which tags may be built today: selection and the EOL policy.

A tag whose EOL month has passed is refused unless ``allow_eol``; a tag within
``EOL_WARNING_DAYS`` of the end of its EOL month is built with a warning.
Deprecated tags are never built. The date comes from a ``Clock`` so tests (and
``$BINK_PYTHON_TODAY``, through :meth:`bink_python.settings.Settings.clock`) can set it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import PolicyError, UsageError
from .config import Family, Tag

EOL_WARNING_DAYS = 90

Clock = Callable[[], dt.date]


def select_tags(
    family: Family,
    patterns: Sequence[str] = (),
    *,
    statuses: Sequence[str] = (),
    arch: str | None = None,
) -> tuple[Tag, ...]:
    """Tags matching any of the glob ``patterns`` (all when none), in file order.

    A pattern that matches no tag is an error: a typo must not build nothing.
    """
    chosen: list[Tag] = []
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(t.name, pattern) for t in family.tags):
            known = ", ".join(t.name for t in family.tags if t.status != "deprecated")
            raise UsageError(f"no tag in {family.path} matches {pattern!r} (tags: {known})")
    for tag in family.tags:
        if patterns and not any(fnmatch.fnmatchcase(tag.name, p) for p in patterns):
            continue
        if statuses and tag.status not in statuses:
            continue
        if arch and tag.buildable and arch not in tag.arches:
            continue
        chosen.append(tag)
    return tuple(chosen)


@dataclass(frozen=True)
class EolState:
    tag: Tag
    days_left: int  # days until the end of the EOL month (negative: passed)

    @property
    def passed(self) -> bool:
        return self.days_left <= 0

    @property
    def near(self) -> bool:
        return 0 < self.days_left <= EOL_WARNING_DAYS


def eol_state(tag: Tag, today: dt.date) -> EolState | None:
    if tag.eol is None:
        return None
    return EolState(tag, (tag.eol.end - today).days)


@dataclass(frozen=True)
class Buildable:
    """The outcome of the policy for a selection."""

    tags: tuple[Tag, ...]
    skipped: tuple[tuple[Tag, str], ...]
    warnings: tuple[str, ...]


def check_buildable(
    tags: Sequence[Tag],
    *,
    today: dt.date,
    allow_eol: bool = False,
    explicit: bool = True,
) -> Buildable:
    """Apply the EOL policy to ``tags``.

    ``explicit``: the user named these tags. An explicitly named tag past EOL (or
    deprecated) is an error; with the default selection such tags are skipped
    and reported instead.
    """
    ok: list[Tag] = []
    skipped: list[tuple[Tag, str]] = []
    warnings: list[str] = []
    for tag in tags:
        if not tag.buildable:
            reason = f"tag {tag.name} is deprecated: it is listed in the README but never built"
            if explicit:
                raise PolicyError(reason)
            skipped.append((tag, "deprecated"))
            continue
        state = eol_state(tag, today)
        if state is not None and state.passed:
            if not allow_eol:
                reason = (
                    f"tag {tag.name} reached its EOL ({tag.eol.human() if tag.eol else ''}); "
                    "building it is refused: pass --allow-eol to build it anyway"
                )
                if explicit:
                    raise PolicyError(reason)
                skipped.append((tag, f"EOL {tag.eol}"))
                continue
            warnings.append(
                f"tag {tag.name} is past its EOL ({tag.eol}); building because --allow-eol"
            )
        elif state is not None and state.near:
            warnings.append(
                f"tag {tag.name} reaches its EOL at the end of "
                f"{tag.eol.human() if tag.eol else ''} "
                f"({state.days_left} days left)"
            )
        ok.append(tag)
    return Buildable(tuple(ok), tuple(skipped), tuple(warnings))
