"""README sections generated from images.toml (and from the code, for verify checks).

Each generated section sits between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->``; everything outside the markers is hand-written
and kept. ``readme --check`` fails when a section differs from what the current
data generates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..base.slim import readme_section
from ..errors import ConfigError
from ..family.config import Family, Tag
from ..host.arch import ARCHES
from ..host.files import read_text
from ..host.text import table_lines
from ..runtime.contents import REMOVED_STDLIB_MODULES
from ..store.store import atomic_write_text
from ..verify import CHECKS

DISTRO_LINKS = {
    ("debian", "12"): "https://www.debian.org/releases/bookworm/",
    ("debian", "13"): "https://www.debian.org/releases/trixie/",
    ("ubuntu", "22.04"): "https://releases.ubuntu.com/22.04/",
}


def _python_link(version: str) -> str:
    return (
        f"[{version}](https://www.python.org/downloads/release/python-{version.replace('.', '')}/)"
    )


def _os_link(tag: Tag) -> str:
    assert tag.os and tag.release
    return f"[{tag.distro.name}]({DISTRO_LINKS[(tag.os, tag.release)]})"


def _components(tag: Tag, family: Family) -> str:
    parts = []
    for name in tag.components:
        comp = family.component(name)
        url = f"{comp.homepage}/releases/tag/release/v{comp.version}"
        parts.append(f"[{name} v{comp.version}]({url})")
    return ", ".join(parts) or "-"


def _row(tag: Tag, family: Family) -> tuple[str, ...]:
    eol = tag.eol.human() if tag.eol else "-"
    tag_cell = f"`{family.registry}:{tag.name}`"
    if tag.status == "eol":
        tag_cell += " (EOL)"
    arches = ", ".join(ARCHES[a].platform for a in tag.arches)
    return (
        tag_cell,
        _os_link(tag),
        _python_link(tag.version),
        arches,
        _components(tag, family),
        eol,
    )


_COLUMNS = (
    "Tag",
    "Base OS",
    "Python Version",
    "CPU Architectures",
    "Additional Components",
    "EOL Date",
)


def feature_matrix(family: Family) -> str:
    rows = [
        _row(t, family)
        for t in family.tags
        if t.variant == "regular" and t.status in ("supported", "eol")
    ]
    lines = table_lines([_COLUMNS, *rows], markdown=True)
    # the header ends in a newline even when no tag is listed
    return "\n".join(lines[:2]) + "\n" + "\n".join(lines[2:])


def distroless(family: Family) -> str:
    tags = [t for t in family.tags if t.variant == "distroless" and t.buildable]
    if not tags:
        return "_No distroless tags at the moment._"
    lines = [
        "**Evaluation, not stable.** These tags carry CPython, its runtime libraries, the "
        "additional components listed below, the CA store, `tzdata` and `netbase` only: no shell, "
        f"no package manager, and they run as user `{family.user.name}` "
        f"(`{family.user.uid}:{family.user.gid}`) by default. Their contents may change "
        "between builds while we evaluate them.",
        "",
        *table_lines([_COLUMNS, *(_row(t, family) for t in tags)], markdown=True),
    ]
    return "\n".join(lines)


def deprecated(family: Family) -> str:
    tags = [t for t in family.tags if t.status == "deprecated"]
    if not tags:
        return "_None._"
    lines = [
        "These tags still exist in the registry but are unmaintained and never rebuilt:",
        "",
    ]
    for tag in tags:
        note = f": {tag.note}" if tag.note else ""
        lines.append(f"- `{family.registry}:{tag.name}`{note}")
    return "\n".join(lines)


def verify_checks(family: Family) -> str:
    """The named checks ``bink-python verify`` runs in every image (from verify.CHECKS)."""

    rows = [(f"`{name}`", " ".join(doc.split())) for name, doc in CHECKS.items()]
    return "\n".join(table_lines([("check", "what it proves"), *rows], markdown=True))


def removed_modules(family: Family) -> str:
    """The standard-library modules the runtimes leave out (runtime.REMOVED_STDLIB_MODULES)."""

    rows = [(f"`{name}`", why) for name, why in sorted(REMOVED_STDLIB_MODULES.items())]
    return "\n".join(table_lines([("module", "why it is left out"), *rows], markdown=True))


Section = Callable[[Family], str]


def left_out(family: Family) -> str:
    """What the bases leave out beyond the official slim images (from slim.REMOVALS)."""

    return readme_section()


SECTIONS: dict[str, Section] = {
    "feature-matrix": feature_matrix,
    "distroless": distroless,
    "deprecated": deprecated,
    "verify-checks": verify_checks,
    "left-out": left_out,
    "removed-modules": removed_modules,
}


def _pattern(name: str) -> re.Pattern[str]:
    begin = re.escape(f"<!-- BEGIN GENERATED: {name} -->")
    end = re.escape(f"<!-- END GENERATED: {name} -->")
    return re.compile(rf"({begin}\n)(.*?)({end})", re.DOTALL)


def render(text: str, family: Family, path: Path) -> str:
    """``text`` with every generated section replaced by freshly generated content."""
    for name, make in SECTIONS.items():
        pattern = _pattern(name)
        if not pattern.search(text):
            raise ConfigError(
                f"{path}: missing markers for generated section {name!r} "
                f"(<!-- BEGIN GENERATED: {name} --> ... <!-- END GENERATED: {name} -->)"
            )
        body = make(family).rstrip("\n") + "\n"
        match = pattern.search(text)
        assert match is not None
        text = text[: match.start(2)] + body + text[match.end(2) :]
    return text


def readme_path(family: Family) -> Path:
    return family.path.resolve().parent / "README.md"


def is_stale(family: Family, path: Path) -> bool:
    text = _read(path)
    return render(text, family, path) != text


def write_readme(family: Family, path: Path) -> bool:
    """Regenerate ``path`` in place; True when it changed."""
    text = _read(path)
    new = render(text, family, path)
    if new == text:
        return False
    atomic_write_text(path, new)
    return True


def _read(path: Path) -> str:
    return read_text(path, what="the README", error=ConfigError)
