"""What upstream publishes: CPython releases and linkerd-await releases, with checksums.

Discovery reads python.org's downloads API, the data its download pages are built
from (``/api/v2/downloads/release/`` lists releases with ``is_published`` and
``pre_release`` flags; ``/api/v2/downloads/release_file/?release=<id>`` lists each
file with its ``url``, ``filesize`` and ``sha256_sum``), rather than the FTP
directory listing, which has no checksums and shows directories before a release
is published. linkerd-await comes from GitHub's releases API (``tag_name``
``release/vX.Y.Z``, ``draft``, ``prerelease``, ``assets``). Base URLs are
overridable (``$BINK_PYTHON_PYTHON_ORG_URL``, ``$BINK_PYTHON_GITHUB_URL``,
``$BINK_PYTHON_GITHUB_API_URL``: :class:`FetchSettings`' ``upstream``) so tests serve
these shapes from 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import FetchError
from ..family.versions import version_tuple
from ..host.progress import Progress
from ..oci.types import is_sha256_hex
from .cache import Cache
from .fetch import FetchSettings, download, fetch_bytes
from .lockfile import Artifact

_RELEASE_NAME_RE = re.compile(r"^Python (\d+\.\d+\.\d+)$")
_LINKERD_TAG_RE = re.compile(r"^release/v(\d+\.\d+\.\d+)$")


# ---------------------------------------------------------------- python.org


@dataclass(frozen=True)
class PyRelease:
    version: str
    release_id: str


@dataclass(frozen=True)
class SourceFile:
    url: str
    sha256: str | None
    size: int | None


def _json_objects(data: bytes, what: str) -> list[dict[str, Any]]:
    """The objects of a JSON array (other items skipped); a one-line error otherwise."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FetchError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(raw, list):
        raise FetchError(f"{what}: expected a JSON array")
    return [item for item in raw if isinstance(item, dict)]


def parse_python_releases(data: bytes) -> list[PyRelease]:
    """Final, published CPython releases from ``/api/v2/downloads/release/``."""
    releases = []
    for item in _json_objects(data, "python.org release list"):
        match = _RELEASE_NAME_RE.match(str(item.get("name", "")))
        if not match or item.get("pre_release") or item.get("is_published") is False:
            continue
        uri = str(item.get("resource_uri", "")).rstrip("/")
        release_id = uri.rsplit("/", 1)[-1]
        if not release_id.isdigit():
            continue
        releases.append(PyRelease(match[1], release_id))
    return releases


def parse_source_file(data: bytes, version: str) -> SourceFile:
    """The ``Python-X.Y.Z.tar.xz`` entry of ``/api/v2/downloads/release_file/``."""
    want = f"/Python-{version}.tar.xz"
    for item in _json_objects(data, f"python.org files of {version}"):
        if str(item.get("url", "")).endswith(want):
            sha = item.get("sha256_sum") or None
            if sha is not None and not is_sha256_hex(str(sha)):
                raise FetchError(f"python.org files of {version}: bad sha256_sum {sha!r}")
            size = item.get("filesize")
            return SourceFile(
                str(item["url"]), sha, size if isinstance(size, int) and size > 0 else None
            )
    raise FetchError(f"python.org lists no Python-{version}.tar.xz for release {version}")


def python_releases(settings: FetchSettings | None = None) -> list[PyRelease]:
    settings = settings or FetchSettings()
    url = f"{settings.upstream.python_org}/api/v2/downloads/release/?is_published=true"
    return parse_python_releases(
        fetch_bytes([url], what="python.org release list", settings=settings)
    )


def python_source_file(
    version: str,
    settings: FetchSettings | None = None,
    releases: list[PyRelease] | None = None,
) -> SourceFile:
    """The published size and sha256 of CPython ``version``'s source tarball."""
    settings = settings or FetchSettings()
    releases = python_releases(settings) if releases is None else releases
    for release in releases:
        if release.version == version:
            api = f"{settings.upstream.python_org}/api/v2/downloads"
            url = f"{api}/release_file/?release={release.release_id}"
            data = fetch_bytes([url], what=f"python.org files of {version}", settings=settings)
            return parse_source_file(data, version)
    raise FetchError(f"python.org has no published release {version}")


def newest_patch(releases: list[PyRelease], minor: str) -> str | None:
    versions = [r.version for r in releases if r.version.rsplit(".", 1)[0] == minor]
    return max(versions, key=version_tuple) if versions else None


# ---------------------------------------------------------------- linkerd-await


def parse_shasum(text: str, asset: str) -> str:
    """The hex digest from ``shasum -a 256`` output naming ``asset``."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*").rsplit("/", 1)[-1] == asset:
            digest = parts[0].lower()
            if is_sha256_hex(digest):
                return digest
    raise FetchError(f"checksum file for {asset}: no sha256 line naming {asset}")


@dataclass(frozen=True)
class GithubRelease:
    version: str
    digests: Mapping[str, str]  # asset name -> sha256 when the API states it


def parse_linkerd_releases(data: bytes) -> list[GithubRelease]:
    found = []
    for item in _json_objects(data, "linkerd-await release list"):
        if item.get("draft") or item.get("prerelease"):
            continue
        match = _LINKERD_TAG_RE.match(str(item.get("tag_name", "")))
        if not match:
            continue
        digests = {}
        for asset in item.get("assets") or []:
            digest = str(asset.get("digest") or "") if isinstance(asset, dict) else ""
            if digest.startswith("sha256:"):
                digests[str(asset["name"])] = digest.removeprefix("sha256:")
        found.append(GithubRelease(match[1], digests))
    return found


def linkerd_releases(settings: FetchSettings | None = None) -> list[GithubRelease]:
    settings = settings or FetchSettings()
    url = f"{settings.upstream.github_api}/repos/linkerd/linkerd-await/releases"
    return parse_linkerd_releases(
        fetch_bytes([url], what="linkerd-await release list", settings=settings)
    )


def upstream_checksum(artifact: Artifact, settings: FetchSettings) -> str:
    if artifact.checksum_url is None:
        raise FetchError(f"{artifact.name} has no checksum file")
    data = fetch_bytes(
        [artifact.checksum_url],
        what=f"checksum of {artifact.name}",
        settings=settings,
        max_bytes=64 << 10,
    )
    return parse_shasum(data.decode("utf-8", "replace"), artifact.filename)


def pin_and_fetch(
    art: Artifact,
    store: Cache,
    settings: FetchSettings,
    progress: Progress,
    releases: list[PyRelease] | None,
) -> tuple[Artifact, bool]:
    """An unpinned artifact, downloaded and pinned from its upstream checksum; and whether
    it was trusted on first use (upstream publishes no checksum for it)."""
    if art.kind == "cpython":
        try:
            source = python_source_file(art.version, settings, releases)
        except FetchError as exc:
            raise FetchError(
                f"{art.name} is not pinned and its published sha256 could not be read ({exc}); "
                f"pin it with `bink-python lock --pin {art.name}=SHA256` or "
                f"`bink-python cache add FILE --for {art.name}`"
            ) from None
        if source.sha256 is None:
            raise FetchError(
                f"python.org publishes no sha256 for {art.filename}; pin it by hand "
                f"with `bink-python lock --pin {art.name}=SHA256`"
            )
        entry = download(
            art.urls,
            store,
            what=art.name,
            sha256=source.sha256,
            size=source.size,
            settings=settings,
            progress=progress,
        )
        return replace(art, sha256=entry.sha256, size=entry.size), False
    try:
        expected: str | None = upstream_checksum(art, settings)
    except FetchError as exc:
        expected = None
        progress.warn(f"{exc}; recording the hash of the downloaded file (trust on first use)")
    entry = download(
        art.urls, store, what=art.name, sha256=expected, settings=settings, progress=progress
    )
    return replace(art, sha256=entry.sha256, size=entry.size), expected is None
