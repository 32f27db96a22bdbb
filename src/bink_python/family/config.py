"""images.toml: the family of images as immutable, validated data.

``load_family(path)`` parses and validates the file and returns a frozen
``Family``. Every rule violation raises ``ConfigError`` with one line naming the
file, the tag and field, and what was expected. Nothing downstream re-validates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from ..host.distro import DISTROS, Distro, get_distro
from ..host.files import parse_toml, read_text
from ..settings import CONFIG_ENV
from .checks import Checker
from .versions import parse_cpython_version, version_tuple

STATUSES = ("supported", "eol", "evaluation", "deprecated")
VARIANTS = ("regular", "distroless")
BUILDABLE_STATUSES = ("supported", "eol", "evaluation")

_COMPONENT_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_TAG_RE = re.compile(r"^(?P<minor>\d+\.\d+)(?:-(?P<suffix>[a-z0-9]+))?$")
#: The years an EOL may name: from Python's first release to well past any plan.
YEARS = (1991, 2999)
_MONTH_RE = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")
_REGISTRY_RE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, order=True)
class YearMonth:
    """A month (the precision of an EOL date)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> YearMonth:
        match = _MONTH_RE.fullmatch(text)
        if not match:
            raise ValueError("expected YYYY-MM")
        year, month = int(match["year"]), int(match["month"])
        if not 1 <= month <= 12:
            raise ValueError(f"month {month:02d} is not a real month (01-12)")
        if not YEARS[0] <= year <= YEARS[1]:
            raise ValueError(f"year {year:04d} is out of range ({YEARS[0]}-{YEARS[1]})")
        return cls(year, month)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        """The first day after this month: from this day on the month has passed."""
        if self.month == 12:
            return dt.date(self.year + 1, 1, 1)
        return dt.date(self.year, self.month + 1, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def human(self) -> str:
        """As the README shows it, e.g. ``April 2029``."""
        return self.first_day.strftime("%B %Y")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    path: str
    homepage: str


@dataclass(frozen=True)
class Tag:
    name: str
    status: str
    python: str | None = None
    os: str | None = None
    release: str | None = None
    variant: str = "regular"
    eol: YearMonth | None = None
    arches: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    note: str = ""

    @property
    def minor(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def buildable(self) -> bool:
        return self.status in BUILDABLE_STATUSES

    @property
    def suffix(self) -> str:
        """``-distroless`` for distroless tags, else empty."""
        return "" if "-" not in self.name else "-" + self.name.split("-", 1)[1]

    @property
    def distro(self) -> Distro:
        if self.os is None or self.release is None:
            raise ConfigError(f"tag {self.name} has no base OS (it is {self.status})")
        return get_distro(self.os, self.release)

    @property
    def refs(self) -> tuple[str, ...]:
        """Names the tag is published under: minor and full version (``3.13``, ``3.13.16``)."""
        if self.python is None:
            return (self.name,)
        return (self.name, f"{self.python}{self.suffix}")

    @property
    def version(self) -> str:
        if self.python is None:
            raise ConfigError(f"tag {self.name} has no CPython version (it is {self.status})")
        return self.python


@dataclass(frozen=True)
class Family:
    path: Path
    registry: str
    title: str
    description: str
    source: str
    vendor: str
    licenses: str
    arches: tuple[str, ...]
    user: User
    components: tuple[Component, ...]
    tags: tuple[Tag, ...]
    #: Layer compression of every image: one instance per entry, the first is the one
    #: clients that do not choose by compression take ("gzip", "zstd" or both).
    compression: tuple[str, ...] = ("gzip",)

    def component(self, name: str) -> Component:
        return _named(self.components, name, f"{self.path}: no component {name!r}")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name("images.lock")

    def tag(self, name: str) -> Tag:
        return _named(self.tags, name, f"{self.path}: no tag {name!r}")

    @property
    def python_versions(self) -> tuple[str, ...]:
        """Every exact CPython version a buildable tag needs, sorted by version."""
        versions = {t.python for t in self.tags if t.buildable and t.python}
        return tuple(sorted(versions, key=version_tuple))


_Named = TypeVar("_Named", Component, Tag)


def _named(items: tuple[_Named, ...], name: str, missing: str) -> _Named:
    """The item called ``name``; ``missing`` is the error when there is none."""
    for item in items:
        if item.name == name:
            return item
    raise ConfigError(missing)


def _parse_user(ctx: Checker, raw: Any) -> User:
    where = "[family.user]"
    table = ctx.table(raw, where)
    ctx.keys(table, where, {"name", "uid", "gid", "home"}, set())
    name = ctx.string(table, "name", where)
    if not _USER_RE.fullmatch(name):
        raise ctx.fail(f"{where}: field 'name'", f"expected a POSIX user name, got {name!r}")
    home = ctx.absolute_path(table, "home", where)
    return User(
        name=name,
        uid=ctx.integer(table, "uid", where, 1, 65533),
        gid=ctx.integer(table, "gid", where, 1, 65533),
        home=home,
    )


def _parse_components(ctx: Checker, raw: Any) -> dict[str, Component]:
    table = ctx.table(raw, "[components]")
    components: dict[str, Component] = {}
    for name, value in table.items():
        where = f"component {name!r}"
        entry = ctx.table(value, where)
        ctx.keys(entry, where, {"version", "path", "homepage"}, set())
        version = ctx.string(entry, "version", where)
        if not _COMPONENT_VERSION_RE.fullmatch(version):
            raise ctx.fail(f"{where}: field 'version'", f"expected X.Y.Z, got {version!r}")
        path = ctx.absolute_path(entry, "path", where)
        components[name] = Component(name, version, path, ctx.string(entry, "homepage", where))
    return components


_TAG_REQUIRED_BUILDABLE = {"name", "python", "os", "release", "eol", "status"}
_TAG_OPTIONAL = {"variant", "arches", "components", "note"}


def _tag_name(ctx: Checker, table: dict[str, Any], index: int) -> str:
    if "name" not in table:
        raise ctx.fail(f"[[tag]] #{index + 1}", "missing required key 'name'")
    name = table["name"]
    if not isinstance(name, str) or not _TAG_RE.fullmatch(name):
        raise ctx.fail(
            f"[[tag]] #{index + 1}: field 'name'",
            "expected MAJOR.MINOR or MAJOR.MINOR-SUFFIX (e.g. 3.13, 3.13-distroless), "
            f"got {name!r}",
        )
    return name


def _tag_note(ctx: Checker, table: dict[str, Any], where: str) -> str:
    note = table.get("note", "")
    if not isinstance(note, str):
        raise ctx.fail(f"{where}: field 'note'", f"expected a string, got {note!r}")
    return note


def _deprecated_tag(ctx: Checker, table: dict[str, Any], where: str, name: str) -> Tag:
    ctx.keys(table, where, {"name", "status"}, {"note", "python"})
    python = table.get("python")
    if python is not None and (
        not isinstance(python, str) or parse_cpython_version(python) is None
    ):
        raise ctx.fail(f"{where}: field 'python'", f"expected X.Y.Z, got {python!r}")
    return Tag(name=name, status="deprecated", python=python, note=_tag_note(ctx, table, where))


def _tag_python(ctx: Checker, table: dict[str, Any], where: str, name: str) -> str:
    python = ctx.string(table, "python", where)
    parsed = parse_cpython_version(python)
    if parsed is None:
        raise ctx.fail(
            f"{where}: field 'python'", f"expected an exact version X.Y.Z, got {python!r}"
        )
    minor = name.split("-", 1)[0]
    if parsed.minor_name != minor:
        raise ctx.fail(
            f"{where}: field 'python'",
            f"CPython {python} does not belong to tag minor {minor} (expected {minor}.N)",
        )
    return python


def _tag_base(ctx: Checker, table: dict[str, Any], where: str) -> tuple[str, str, YearMonth]:
    """The tag's base OS, its release and its end of life."""
    os_name = ctx.string(table, "os", where)
    release = table["release"]
    if not isinstance(release, str):
        raise ctx.fail(
            f"{where}: field 'release'", f'expected a string such as "13", got {release!r}'
        )
    if (os_name, release) not in DISTROS:
        known = ", ".join(f"{o} {r}" for o, r in DISTROS)
        raise ctx.fail(
            f"{where}: field 'os'",
            f"unsupported base OS {os_name!r} release {release!r} (expected one of {known})",
        )
    eol_text = table["eol"]
    try:
        if not isinstance(eol_text, str):
            raise ValueError("expected a string YYYY-MM")
        eol = YearMonth.parse(eol_text)
    except ValueError as exc:
        raise ctx.fail(f"{where}: field 'eol'", f"{exc}, got {eol_text!r}") from None
    return os_name, release, eol


def _tag_variant(ctx: Checker, table: dict[str, Any], where: str, name: str) -> str:
    variant = table.get("variant", "regular")
    if variant not in VARIANTS:
        raise ctx.fail(
            f"{where}: field 'variant'", f"expected one of {', '.join(VARIANTS)}, got {variant!r}"
        )
    suffix = name.split("-", 1)[1] if "-" in name else ""
    if variant == "distroless" and suffix != "distroless":
        raise ctx.fail(
            f"{where}: field 'variant'", "a distroless tag's name must end in -distroless"
        )
    if variant == "regular" and suffix:
        raise ctx.fail(
            f"{where}: field 'name'",
            f"suffix -{suffix} needs variant distroless or status deprecated",
        )
    return str(variant)


def _parse_tag(
    ctx: Checker,
    raw: Any,
    index: int,
    family_arches: tuple[str, ...],
    default_components: tuple[str, ...],
    components: dict[str, Component],
) -> Tag:
    table = ctx.table(raw, f"[[tag]] #{index + 1}")
    name = _tag_name(ctx, table, index)
    where = f"tag {name!r}"
    status = table.get("status")
    if status not in STATUSES:
        raise ctx.fail(
            f"{where}: field 'status'", f"expected one of {', '.join(STATUSES)}, got {status!r}"
        )
    if status == "deprecated":
        return _deprecated_tag(ctx, table, where, name)
    ctx.keys(table, where, _TAG_REQUIRED_BUILDABLE, _TAG_OPTIONAL)
    python = _tag_python(ctx, table, where, name)
    os_name, release, eol = _tag_base(ctx, table, where)
    variant = _tag_variant(ctx, table, where, name)
    arches = ctx.arches(table, where) if "arches" in table else family_arches
    for arch in arches:
        if arch not in family_arches:
            raise ctx.fail(
                f"{where}: field 'arches'", f"{arch!r} is not one of the family's arches"
            )
    tag_components = (
        ctx.strings(table, "components", where) if "components" in table else default_components
    )
    for comp in tag_components:
        if comp not in components:
            raise ctx.fail(
                f"{where}: field 'components'",
                f"unknown component {comp!r} (declare it under [components])",
            )
    return Tag(
        name=name,
        status=status,
        python=python,
        os=os_name,
        release=release,
        variant=variant,
        eol=eol,
        arches=arches,
        components=tag_components,
        note=_tag_note(ctx, table, where),
    )


def parse_family(data: dict[str, Any], path: Path) -> Family:
    ctx = Checker(path)
    ctx.keys(data, "top level", {"family", "tag"}, {"components"})
    fam = ctx.table(data["family"], "[family]")
    ctx.keys(
        fam,
        "[family]",
        {"registry", "title", "description", "source", "vendor", "licenses", "arches", "user"},
        {"components", "compression"},
    )
    registry = ctx.string(fam, "registry", "[family]")
    parts = registry.split("/")
    if not _REGISTRY_RE.fullmatch(registry) or any(p.startswith(".") for p in parts):
        raise ctx.fail(
            "[family]: field 'registry'",
            f"expected HOST/PATH (e.g. ghcr.io/org/name), got {registry!r}",
        )
    arches = ctx.arches(fam, "[family]")
    components = _parse_components(ctx, data.get("components", {}))
    default_components = ctx.strings(fam, "components", "[family]") if "components" in fam else ()
    for comp in default_components:
        if comp not in components:
            raise ctx.fail(
                "[family]: field 'components'",
                f"unknown component {comp!r} (declare it under [components])",
            )
    raw_tags = data["tag"]
    if not isinstance(raw_tags, list) or not raw_tags:
        raise ctx.fail("[[tag]]", "expected at least one [[tag]] table")
    tags: list[Tag] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_tags):
        tag = _parse_tag(ctx, raw, index, arches, default_components, components)
        if tag.name in seen:
            raise ctx.fail(f"tag {tag.name!r}", "duplicate tag name (each tag is declared once)")
        seen.add(tag.name)
        tags.append(tag)
    compression = ctx.compression(fam) if "compression" in fam else ("gzip",)
    return Family(
        path=path,
        registry=registry,
        title=ctx.string(fam, "title", "[family]"),
        description=ctx.string(fam, "description", "[family]"),
        source=ctx.string(fam, "source", "[family]"),
        vendor=ctx.string(fam, "vendor", "[family]"),
        licenses=ctx.string(fam, "licenses", "[family]"),
        arches=arches,
        user=_parse_user(ctx, fam["user"]),
        components=tuple(components.values()),
        tags=tuple(tags),
        compression=compression,
    )


def load_family(path: Path) -> Family:
    """Read and validate images.toml."""
    what = f"images.toml; give --config PATH or set {CONFIG_ENV}"
    text = read_text(path, what=what, error=ConfigError)
    return parse_family(parse_toml(text, path, error=ConfigError), path)
