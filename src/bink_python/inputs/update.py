"""``lock`` and ``update``: pin what images.toml names, and keep it current.

``run_lock`` brings images.lock in line with images.toml (new artifacts added,
unused ones dropped, pins kept), then downloads every artifact into the fetch
cache, verifying it against its pin, and pins what is not pinned yet:

* CPython: from the sha256 python.org publishes for the source file (the release
  API, read by :mod:`.upstream`); never trust-on-first-use from a mirror.
* linkerd-await: from the upstream ``<asset>.shasum`` file (``shasum -a 256``
  output: ``<hex>  release/<asset>``); if that file is unreachable but the asset is
  not, the asset's own hash is recorded (trust on first use) with a warning.

``run_update`` discovers newer versions and rewrites images.toml in place with tomlkit
(only the ``python`` value of each affected ``[[tag]]`` and the ``version`` of a
component change; comments, order, quoting and layout are kept byte for byte), then
images.lock and the README. :func:`rewrite_toml` can also add a ``[[tag]]`` table.
What is newer upstream comes from :mod:`.upstream`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, String, Table
from tomlkit.toml_document import TOMLDocument

from ..errors import BinkError, ConfigError, FetchError
from ..family.config import BUILDABLE_STATUSES, Family, load_family
from ..family.versions import version_tuple
from ..host.progress import SILENT, Progress
from ..store.store import atomic_write_text
from .cache import Cache
from .fetch import FetchSettings, fetch_artifact
from .lockfile import Artifact, Given, Lock, component_artifact, sync_lock
from .upstream import (
    GithubRelease,
    PyRelease,
    linkerd_releases,
    newest_patch,
    pin_and_fetch,
    python_releases,
    python_source_file,
    upstream_checksum,
)

UPDATED_STATUSES = ("supported", "evaluation")


# ---------------------------------------------------------------- lock


@dataclass(frozen=True)
class LockResult:
    lock: Lock
    changed: bool
    pinned: tuple[str, ...]
    fetched: tuple[str, ...]
    failures: tuple[str, ...]
    #: of ``pinned``: the ones upstream publishes no checksum for (trusted on first use)
    trusted: tuple[str, ...] = ()

    @property
    def unpinned(self) -> tuple[str, ...]:
        """What the lock still leaves unpinned (offline, or a failed pin)."""
        return tuple(a.name for a in self.lock.artifacts.values() if a.sha256 is None)


def run_lock(
    family: Family,
    cache: Cache | Path,
    *,
    offline: bool = False,
    pins: Mapping[str, str] | None = None,
    progress: Progress = SILENT,
    settings: FetchSettings | None = None,
    only_unpinned: bool = False,
    epoch: Given = None,
) -> LockResult:
    """Sync images.lock with images.toml, fetch and verify everything, pin the rest
    (``only_unpinned``: pin what is unpinned and fetch nothing else).

    The lock is written even when some artifacts failed (it only ever gains
    verified pins); the failures are then raised as one FetchError.
    """
    settings = settings or FetchSettings()
    store = cache if isinstance(cache, Cache) else Cache(cache)
    old = Lock.load_or_empty(family.lock_path)
    lock = sync_lock(family, old, pins, upstream=settings.upstream, epoch=epoch)
    arts: list[Artifact] = []
    pinned: list[str] = []
    fetched: list[str] = []
    failures: list[str] = []
    trusted: list[str] = []
    releases: list[PyRelease] | None = None
    for art in lock.artifacts.values():
        try:
            if art.sha256 is not None:
                if offline or only_unpinned:
                    cached = store.path(art.sha256)
                    if art.size is None and cached.is_file():
                        art = replace(art, size=cached.stat().st_size)
                else:
                    path = fetch_artifact(art, store, progress=progress, settings=settings)
                    art = replace(art, size=path.stat().st_size)
                    fetched.append(art.name)
            elif not offline:
                if art.kind == "cpython" and releases is None:
                    try:
                        releases = python_releases(settings)
                    except FetchError:
                        releases = []
                art, on_first_use = pin_and_fetch(art, store, settings, progress, releases or None)
                pinned.append(art.name)
                fetched.append(art.name)
                if on_first_use:
                    trusted.append(art.name)
        except BinkError as exc:
            failures.append(str(exc))
        arts.append(art)
    new = lock.with_artifacts(arts, epoch=epoch)
    changed = new.write(family.lock_path)
    result = LockResult(
        new, changed, tuple(pinned), tuple(fetched), tuple(failures), tuple(trusted)
    )
    if failures:
        raise FetchError(
            f"{len(failures)} of {len(arts)} artifacts could not be fetched "
            f"(images.lock keeps every verified pin): " + " | ".join(failures)
        )
    return result


# ---------------------------------------------------------------- update


@dataclass(frozen=True)
class Change:
    subject: str  # "CPython 3.13" or "linkerd-await"
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class UpdateResult:
    changes: tuple[Change, ...]
    family: Family
    lock: Lock
    #: of images.toml, images.lock and README.md, those that changed (dry run: would change)
    changed_files: tuple[str, ...]
    dry_run: bool
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        lines = [str(c) for c in self.changes] or ["everything is up to date"]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.dry_run:
            lines.append("dry run: nothing written")
        else:
            written = self.changed_files
            lines.append("updated " + ", ".join(written) if written else "no file changed")
        return "\n".join(lines)


@dataclass(frozen=True)
class NewTag:
    """A ``[[tag]]`` table to add to images.toml: its keys in order, after tag ``after``
    (``None``: after the last tag)."""

    fields: tuple[tuple[str, str], ...]
    after: str | None = None


def rewrite_toml(
    text: str,
    python: Mapping[str, str],
    components: Mapping[str, str],
    add_tags: Sequence[NewTag] = (),
) -> str:
    """Set ``python`` of the named [[tag]] tables and ``version`` of named components,
    and add ``add_tags``; with tomlkit, which keeps every other byte (comments, order,
    quoting, blank lines): with nothing to change the text comes back byte for byte.
    """
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"images.toml: not valid TOML ({exc})") from None
    if tomlkit.dumps(doc) != text:
        # tomlkit regroups tables of one parent split by other tables ([[tag]] ... [x]
        # ... [[tag]], or [components.a] ... [[tag]] ... [components.b]); refuse rather
        # than move the user's tables around
        raise ConfigError(
            "images.toml: its [[tag]] or [components.*] tables are split by other tables, "
            "which cannot be edited in place; keep each kind together"
        )
    tags = doc.get("tag")
    tables: list[Table] = list(tags) if isinstance(tags, AoT) else []
    by_name = {str(t.get("name")): t for t in tables}
    for name, value in python.items():
        table = by_name.get(name)
        if table is None or "python" not in table:
            raise ConfigError(f"images.toml: no [[tag]] named {name!r} with a python key")
        _set_string(table, "python", value)
    comps = doc.get("components")
    # tomlkit keeps [components.*] tables split by a [[tag]] in place, behind a proxy
    if not isinstance(comps, Table | OutOfOrderTableProxy):
        comps = None
    for name, value in components.items():
        table = comps.get(name) if comps is not None else None
        if not isinstance(table, Table) or "version" not in table:
            raise ConfigError(f"images.toml: no [components.{name}] table with a version key")
        _set_string(table, "version", value)
    for new in add_tags:
        _add_tag(doc, new)
    return tomlkit.dumps(doc)


def _set_string(table: Table, key: str, value: str) -> None:
    """Replace a string value, keeping its quoting style (and, by tomlkit, its comment)."""
    old = table.item(key)
    if not isinstance(old, String):
        raise ConfigError(f"images.toml: {key} must be a string, found {table[key]!r}")
    if str(old) != value:
        table[key] = String.from_raw(value, old.type)


def _add_tag(doc: TOMLDocument, new: NewTag) -> None:
    names = [name for name, _ in new.fields]
    if "name" not in names or len(set(names)) != len(names):
        raise ConfigError(f"a new [[tag]] needs one name and distinct keys, got {names}")
    tags = doc.get("tag")
    if tags is None:
        doc.append("tag", tomlkit.aot())
        tags = doc["tag"]
    if not isinstance(tags, AoT):
        raise ConfigError("images.toml: tag must be an array of tables ([[tag]])")
    existing = [str(t.get("name")) for t in tags]
    name = dict(new.fields)["name"]
    if name in existing:
        raise ConfigError(f"images.toml: tag {name!r} exists already")
    if new.after is not None and new.after not in existing:
        raise ConfigError(f"images.toml: no tag {new.after!r} to add {name!r} after")
    position = existing.index(new.after) + 1 if new.after is not None else len(existing)
    table = tomlkit.table()
    for key, value in new.fields:
        table[key] = value
    before = tags[position - 1].as_string() if position else ""
    table.trivia.indent = "" if not before or before.endswith("\n\n") else "\n"
    if position < len(existing):
        table.add(tomlkit.nl())
    tags.insert(position, table)


def _validate_text(text: str, path: Path) -> Family:
    """Load ``text`` as if it were ``path`` (via a temporary file beside it)."""
    fd, tmp = tempfile.mkstemp(prefix=".images-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        family = load_family(Path(tmp))
    finally:
        os.unlink(tmp)
    return dataclasses.replace(family, path=path)


def _newer_pythons(
    family: Family,
    settings: FetchSettings,
    pins: dict[str, str],
    changes: list[Change],
    warnings: list[str],
) -> dict[str, str]:
    """``{tag: newest patch}`` for updated tags behind python.org; pins their sources."""
    new_python: dict[str, str] = {}
    releases = python_releases(settings)
    minors: dict[str, str] = {}
    for tag in family.tags:
        if tag.status in UPDATED_STATUSES and tag.python:
            minors.setdefault(tag.minor, tag.python)
    for minor, current in sorted(minors.items(), key=lambda kv: version_tuple(kv[1])):
        newest = newest_patch(releases, minor)
        if newest is None or version_tuple(newest) <= version_tuple(current):
            continue
        source = python_source_file(newest, settings, releases)
        if source.sha256 is None:
            warnings.append(
                f"python.org publishes no sha256 for Python-{newest}.tar.xz; "
                f"{minor} stays at {current}"
            )
            continue
        pins[f"cpython:{newest}"] = source.sha256
        changes.append(Change(f"CPython {minor}", current, newest))
        for tag in family.tags:
            if tag.status in UPDATED_STATUSES and tag.minor == minor:
                new_python[tag.name] = newest
    return new_python


def _newer_components(
    family: Family, settings: FetchSettings, changes: list[Change]
) -> tuple[dict[str, str], list[GithubRelease]]:
    """``{component: newest version}`` for components behind upstream, and its releases."""
    new_components: dict[str, str] = {}
    used = {c for t in family.tags if t.status in BUILDABLE_STATUSES for c in t.components}
    gh: list[GithubRelease] = []
    if "linkerd-await" in used:
        comp = family.component("linkerd-await")
        gh = linkerd_releases(settings)
        if gh:
            newest_gh = max(gh, key=lambda r: version_tuple(r.version))
            if version_tuple(newest_gh.version) > version_tuple(comp.version):
                new_components[comp.name] = newest_gh.version
                changes.append(Change(comp.name, comp.version, newest_gh.version))
    return new_components, gh


def _pin_components(
    family: Family,
    new_components: Mapping[str, str],
    gh: Sequence[GithubRelease],
    pins: dict[str, str],
    settings: FetchSettings,
) -> None:
    """Pin every artifact of the new component versions from its upstream checksum."""
    for tag in family.tags:
        for comp_name in tag.components if tag.buildable else ():
            if comp_name not in new_components:
                continue
            for arch in tag.arches:
                art = component_artifact(
                    comp_name, new_components[comp_name], arch, settings.upstream
                )
                if art.name in pins:
                    continue
                sha = upstream_checksum(art, settings)
                stated = next(
                    (r.digests.get(art.filename) for r in gh if r.version == art.version), None
                )
                if stated and stated != sha:
                    raise FetchError(
                        f"{art.name}: the .shasum file says {sha} but GitHub's "
                        f"release API says {stated}; refusing to pin"
                    )
                pins[art.name] = sha


def run_update(
    family: Family,
    *,
    dry_run: bool = False,
    progress: Progress = SILENT,
    settings: FetchSettings | None = None,
    write_readme: Callable[[Family], bool] | None = None,
    epoch: Given = None,
) -> UpdateResult:
    """Move supported/evaluation tags to the newest CPython patch release and
    components to their newest release; rewrite images.toml, images.lock and (with
    ``write_readme``, which returns whether it changed the file) the README."""
    settings = settings or FetchSettings()
    warnings: list[str] = []
    changes: list[Change] = []
    pins: dict[str, str] = {}
    new_python = _newer_pythons(family, settings, pins, changes, warnings)
    new_components, gh = _newer_components(family, settings, changes)

    old_text = family.path.read_text()
    new_text = rewrite_toml(old_text, new_python, new_components)
    new_family = _validate_text(new_text, family.path) if new_text != old_text else family
    if new_components:
        _pin_components(new_family, new_components, gh, pins, settings)

    old_lock = Lock.load_or_empty(family.lock_path)
    new_lock = sync_lock(new_family, old_lock, pins, upstream=settings.upstream, epoch=epoch)
    toml_changed = new_text != old_text
    lock_changed = new_lock.to_text() != (
        family.lock_path.read_text() if family.lock_path.exists() else ""
    )
    readme_changed = False
    if not dry_run:
        if toml_changed:
            atomic_write_text(family.path, new_text)
        new_lock.write(new_family.lock_path)
        # the README renders every stage's tables: its writer comes from the caller
        readme_changed = write_readme(new_family) if write_readme is not None else False
    for change in changes:
        progress.info(f"    {change}")
    files = (
        ("images.toml", toml_changed),
        ("images.lock", lock_changed),
        ("README.md", readme_changed),
    )
    return UpdateResult(
        tuple(changes),
        new_family,
        new_lock,
        tuple(name for name, changed in files if changed),
        dry_run,
        tuple(warnings),
    )
