"""images.lock: every external input, pinned by sha256.

The lock is JSON (sorted keys, two-space indent, trailing newline) written only
by the tool (``bink-python lock`` / ``update`` / ``cache add --for``)::

    {"lock_version": 1, "source_date_epoch": N, "artifacts": {
        "cpython:3.13.16": {"kind": "cpython", "version": "3.13.16",
            "filename": "Python-3.13.16.tar.xz", "pinned": true, "sha256": "...",
            "size": 22...|null, "urls": ["https://www.python.org/ftp/...",
            "debian:pool/main/p/python3.13/python3.13_3.13.16.orig.tar.xz"]},
        "linkerd-await:0.3.3:amd64": {"kind": "linkerd-await", "arch": "amd64",
            "pinned": false, "sha256": null, "checksum_url": ".../...-amd64.shasum", ...}}}

Rules:

* **Not yet pinned** is explicit: ``"pinned": false`` and ``"sha256": null``. Using
  such an artifact in a build raises ``PolicyError`` naming the two ways to pin it.
* **URLs** are tried in order. ``debian:<path>`` is relative to the Debian archive
  mirror configured on the machine (``mirrors.debian_mirror()``), resolved at fetch
  time, so no archive host is ever written into the repository. It is listed for
  every CPython version: Debian's pool changes as versions enter and leave its
  suites, so any list written here would go stale, and a version it does not carry
  costs one 404 from a fallback mirror. Trust is the sha256, never the host.
* **size** may be ``null`` until the tool has seen the bytes (``lock`` fills it).
* **source_date_epoch** is the time the pinned content (the set of artifact names
  and their sha256) last changed; ``$SOURCE_DATE_EPOCH`` when set (handed in as
  ``epoch``), else the clock.
  Re-locking without a content change (sizes learned, URLs re-derived) keeps it, so
  a no-change run leaves the file byte-identical. Filling in the first pin of an
  artifact the lock already lists unpinned (``cache add --for``, trust on first use)
  keeps it too: no build could use that artifact before (unpinned inputs are
  refused), so no earlier image changes meaning, and pinning the same bytes again
  from a fresh copy of the lock gives the same epoch, hence the same digests. An
  artifact added, dropped, re-pinned to other bytes or unpinned moves it. Later
  stages use it as SOURCE_DATE_EPOCH (clamped mtimes, image ``created``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PolicyError, UsageError
from ..family.config import Family
from ..host.files import parse_json, read_text
from ..oci.types import is_sha256_hex
from ..settings import Upstream
from ..store.store import atomic_write_text

LOCK_VERSION = 1
DEBIAN_SCHEME = "debian:"

KINDS = ("cpython", "linkerd-await")


@dataclass(frozen=True)
class Artifact:
    """One external input: what it is, where to get it, and (once pinned) its hash."""

    name: str
    kind: str
    version: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    arch: str | None = None
    checksum_url: str | None = None

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "version": self.version,
            "filename": self.filename,
            "urls": list(self.urls),
            "pinned": self.pinned,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.arch is not None:
            data["arch"] = self.arch
        if self.checksum_url is not None:
            data["checksum_url"] = self.checksum_url
        return data

    @classmethod
    def from_json(cls, name: str, data: Any, path: Path) -> Artifact:
        where = f"{path}: artifact {name!r}"
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
        allowed = {
            "kind",
            "version",
            "filename",
            "urls",
            "pinned",
            "sha256",
            "size",
            "arch",
            "checksum_url",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
        for key in ("kind", "version", "filename"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
        if data["kind"] not in KINDS:
            raise ConfigError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}")
        urls = data.get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f"{where}: field 'urls' must be a non-empty list of strings")
        sha = data.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not is_sha256_hex(sha)):
            raise ConfigError(f"{where}: field 'sha256' must be 64 lowercase hex digits or null")
        if data.get("pinned") is not (sha is not None):
            raise ConfigError(
                f"{where}: 'pinned' must be true exactly when 'sha256' is set "
                "(the lock is written by `bink-python lock`; do not edit it by hand)"
            )
        size = data.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ConfigError(f"{where}: field 'size' must be a non-negative integer or null")
        for key in ("arch", "checksum_url"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{where}: field {key!r} must be a string")
        named = (
            cpython_name(data["version"])
            if data["kind"] == "cpython"
            else component_name(data["kind"], data["version"], str(data.get("arch")))
        )
        if name != named:
            raise ConfigError(
                f"{where}: its kind, version and arch make it {named!r}, not {name!r} "
                "(the lock is written by `bink-python lock`; do not edit it by hand)"
            )
        return cls(
            name=name,
            kind=data["kind"],
            version=data["version"],
            filename=data["filename"],
            urls=tuple(urls),
            sha256=sha,
            size=size,
            arch=data.get("arch"),
            checksum_url=data.get("checksum_url"),
        )


def require_pinned(artifact: Artifact) -> str:
    """The artifact's sha256, or PolicyError saying how to pin it."""
    if artifact.sha256 is None:
        raise PolicyError(
            f"{artifact.name} is not pinned in images.lock: run `bink-python lock` where "
            f"upstream is reachable, or `bink-python cache add FILE --for {artifact.name}` "
            "with a copy you trust"
        )
    return artifact.sha256


@dataclass(frozen=True)
class Lock:
    """The parsed lock: artifacts by name and the family's SOURCE_DATE_EPOCH."""

    source_date_epoch: int
    artifacts: Mapping[str, Artifact]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Lock:
        what = "images.lock, made by `bink-python lock`"
        data = parse_json(read_text(path, what=what, error=ConfigError), path, error=ConfigError)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        if data.get("lock_version") != LOCK_VERSION:
            raise ConfigError(
                f"{path}: lock_version {data.get('lock_version')!r} is not {LOCK_VERSION} "
                "(regenerate it with `bink-python lock`)"
            )
        epoch = data.get("source_date_epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ConfigError(f"{path}: source_date_epoch must be a non-negative integer")
        raw = data.get("artifacts")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: 'artifacts' must be an object")
        extra = sorted(set(data) - {"lock_version", "source_date_epoch", "artifacts"})
        if extra:
            raise ConfigError(f"{path}: unknown field {extra[0]!r}")
        arts = {name: Artifact.from_json(name, value, path) for name, value in raw.items()}
        return cls(epoch, arts, path)

    @classmethod
    def load_or_empty(cls, path: Path) -> Lock:
        if not path.exists():
            return cls(0, {}, path)
        return cls.load(path)

    def entry(self, name: str) -> Artifact:
        try:
            return self.artifacts[name]
        except KeyError:
            where = self.path or "images.lock"
            raise ConfigError(
                f"{where}: no artifact {name!r} (run `bink-python lock` after editing images.toml)"
            ) from None

    def to_text(self) -> str:
        data = {
            "lock_version": LOCK_VERSION,
            "source_date_epoch": self.source_date_epoch,
            "artifacts": {n: a.to_json() for n, a in sorted(self.artifacts.items())},
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(self, path: Path) -> bool:
        """Write atomically if the text changed; True when the file changed."""
        text = self.to_text()
        if path.exists() and path.read_text() == text:
            return False
        atomic_write_text(path, text)
        return True

    def with_artifacts(
        self, artifacts: Iterable[Artifact], *, now: int | None = None, epoch: Given = None
    ) -> Lock:
        """A lock holding ``artifacts``; the epoch moves only when pinned content changes,
        to ``now``, else to :func:`current_epoch` of ``epoch``.

        A first pin of an artifact this lock lists unpinned is not a change (see the
        module docstring): it only records what the unpinned entry will be.
        """
        arts = {a.name: a for a in artifacts}
        new = Lock(self.source_date_epoch, arts, self.path)
        if self.pins_changed(new) or not self.artifacts:
            new = replace(new, source_date_epoch=now if now is not None else current_epoch(epoch))
        return new

    def pins_changed(self, new: Lock) -> bool:
        """True when ``new`` adds or drops an artifact, or changes or removes a pin."""
        if set(new.artifacts) != set(self.artifacts):
            return True
        return any(
            old.sha256 is not None and new.artifacts[name].sha256 != old.sha256
            for name, old in self.artifacts.items()
        )

    def with_artifact(
        self, artifact: Artifact, *, now: int | None = None, epoch: Given = None
    ) -> Lock:
        others = [a for n, a in self.artifacts.items() if n != artifact.name]
        return self.with_artifacts([*others, artifact], now=now, epoch=epoch)


def source_date_epoch(explicit: int | None = None, *, fallback: Callable[[], int]) -> int:
    """SOURCE_DATE_EPOCH, settled in this one place.

    ``explicit`` (``--source-date-epoch``, else ``$SOURCE_DATE_EPOCH``: the settings'
    :meth:`~bink_python.settings.Settings.source_date_epoch`, ``BuildOptions.epoch``)
    wins, then ``fallback()`` (images.lock's epoch for a build, the clock when the
    lock's pins change).
    """
    if explicit is not None:
        return int(explicit)
    return fallback()


#: The SOURCE_DATE_EPOCH given, asked only when needed (a malformed one then fails);
#: None: none given.
Given = Callable[[], int | None] | None


def current_epoch(epoch: Given = None) -> int:
    """The epoch a lock gets when its pins change: the one given, else now."""
    return source_date_epoch(epoch() if epoch else None, fallback=lambda: int(time.time()))


# ---------------------------------------------------------------- artifact recipes


def cpython_name(version: str) -> str:
    return f"cpython:{version}"


def cpython_artifact(version: str, upstream: Upstream) -> Artifact:
    """Where the CPython source tarball of ``version`` is published (not yet pinned)."""
    parts = version.split(".")
    minor = f"{parts[0]}.{parts[1]}"
    filename = f"Python-{version}.tar.xz"
    return Artifact(
        name=cpython_name(version),
        kind="cpython",
        version=version,
        filename=filename,
        urls=(
            f"{upstream.python_org}/ftp/python/{version}/{filename}",
            f"{DEBIAN_SCHEME}pool/main/p/python{minor}/python{minor}_{version}.orig.tar.xz",
        ),
    )


def component_name(component: str, version: str, arch: str) -> str:
    return f"{component}:{version}:{arch}"


def linkerd_await_artifact(version: str, arch: str, upstream: Upstream) -> Artifact:
    asset = f"linkerd-await-v{version}-{arch}"
    url = f"{upstream.github}/linkerd/linkerd-await/releases/download/release%2Fv{version}/{asset}"
    return Artifact(
        name=component_name("linkerd-await", version, arch),
        kind="linkerd-await",
        version=version,
        filename=asset,
        urls=(url,),
        arch=arch,
        checksum_url=url + ".shasum",
    )


def component_artifact(component: str, version: str, arch: str, upstream: Upstream) -> Artifact:
    if component == "linkerd-await":
        return linkerd_await_artifact(version, arch, upstream)
    raise ConfigError(f"component {component!r} has no download recipe (known: linkerd-await)")


def wanted_artifacts(family: Family, upstream: Upstream) -> list[Artifact]:
    """Every artifact a build of ``family`` needs, unpinned, in a stable order, at
    ``upstream``'s addresses."""
    wanted: dict[str, Artifact] = {}
    for version in family.python_versions:
        art = cpython_artifact(version, upstream)
        wanted[art.name] = art
    for tag in family.tags:
        if not tag.buildable:
            continue
        for comp_name in tag.components:
            comp = family.component(comp_name)
            for arch in tag.arches:
                art = component_artifact(comp.name, comp.version, arch, upstream)
                wanted.setdefault(art.name, art)
    return [wanted[n] for n in sorted(wanted)]


def sync_lock(
    family: Family,
    lock: Lock,
    pins: Mapping[str, str] | None = None,
    *,
    upstream: Upstream,
    now: int | None = None,
    epoch: Given = None,
) -> Lock:
    """The lock ``family`` needs: same pins for kept artifacts, new ones unpinned.

    URLs are re-derived from the recipes (so a recipe change reaches the lock);
    artifacts images.toml no longer names are dropped; ``pins`` (name -> sha256)
    pin or re-pin named artifacts.
    """
    pins = dict(pins or {})
    result: list[Artifact] = []
    for art in wanted_artifacts(family, upstream):
        old = lock.artifacts.get(art.name)
        if old is not None and old.sha256 is not None:
            art = replace(art, sha256=old.sha256, size=old.size)
        if art.name in pins:
            sha = pins.pop(art.name)
            if not is_sha256_hex(sha):
                raise ConfigError(f"pin for {art.name}: {sha!r} is not a sha256 (64 hex digits)")
            if art.sha256 != sha:
                art = replace(art, sha256=sha, size=None)
        result.append(art)
    if pins:
        name = sorted(pins)[0]
        raise ConfigError(
            f"cannot pin {name}: images.toml does not use it "
            f"(artifacts: {', '.join(a.name for a in result)})"
        )
    return lock.with_artifacts(result, now=now, epoch=epoch)


def parse_pin(text: str) -> tuple[str, str]:
    """``NAME=SHA256`` (as given to ``lock --pin``) -> (name, sha256)."""
    name, sep, sha = text.rpartition("=")
    sha = sha.strip().lower().removeprefix("sha256:")
    if not sep or not name or not is_sha256_hex(sha):
        raise UsageError(f"--pin {text!r}: expected NAME=SHA256, e.g. cpython:3.13.16=<64 hex>")
    return name, sha
