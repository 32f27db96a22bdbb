"""An OCI image layout on disk (``dist/oci`` by default) and the OCI data types.

The directory follows the OCI image-layout specification::

    oci-layout                {"imageLayoutVersion":"1.0.0"}
    index.json                an image index; each entry names a ref with the
                              org.opencontainers.image.ref.name annotation
    blobs/sha256/<hex>        content-addressed blobs (layers, configs, manifests)

Updates are atomic in the order a reader needs: every blob is written through a
temporary file and a rename, and ``index.json`` is replaced last, also by rename.
A build interrupted at any point leaves the previous ``index.json`` and every blob
it references intact; unreferenced blobs left behind are harmless and are removed
by :meth:`Layout.prune`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BuildError
from .store import atomic_write_bytes

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"

#: The ref grammar of the image-layout spec (components of alphanumerics and separators).
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")

#: Default location of the layout, relative to the working directory.
DEFAULT_LAYOUT = Path("dist/oci")


def canonical_json(data: Any) -> bytes:
    """The one serialization of OCI JSON documents: sorted keys, no spaces, no newline."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise BuildError(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex digits>")
    return hexpart


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on (descriptor ``platform`` and config fields)."""

    architecture: str
    os: str = "linux"
    variant: str = ""

    @classmethod
    def for_arch(cls, arch: str) -> Platform:
        """The platform of one of our arches: ``amd64`` or ``arm64`` (= ``arm64/v8``)."""
        if arch == "amd64":
            return cls("amd64")
        if arch == "arm64":
            return cls("arm64", variant="v8")
        raise BuildError(f"unsupported architecture {arch!r}: expected amd64 or arm64")

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (mediaType, digest, size, optional platform/annotations)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        try:
            plat = data.get("platform")
            platform = (
                Platform(plat["architecture"], plat["os"], plat.get("variant", ""))
                if plat
                else None
            )
            return cls(
                media_type=str(data["mediaType"]),
                digest=str(data["digest"]),
                size=int(data["size"]),
                platform=platform,
                annotations=dict(data.get("annotations") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BuildError(f"malformed OCI descriptor {dict(data)!r}: {exc}") from exc

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, self.platform, annotations)


def _disk_error(what: Path, exc: OSError) -> BuildError:
    if exc.errno == errno.ENOSPC:
        return BuildError(f"disk full while writing {what}: free space and rerun the build")
    return BuildError(f"cannot write {what}: {exc.strerror or exc}")


class Layout:
    """An OCI image layout directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- structure ---------------------------------------------------------------------

    @property
    def blobs_dir(self) -> Path:
        return self.path / "blobs" / "sha256"

    @property
    def index_path(self) -> Path:
        return self.path / "index.json"

    def init(self) -> Layout:
        """Create the layout if absent (``oci-layout``, ``blobs/sha256``, empty ``index.json``)."""
        try:
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            marker = self.path / "oci-layout"
            if not marker.exists():
                self._atomic_bytes(marker, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
            if not self.index_path.exists():
                self._write_index([])
        except OSError as exc:
            raise _disk_error(self.path, exc) from exc
        return self

    def check_marker(self) -> None:
        """Raise unless ``path`` is an OCI layout with a supported version."""
        marker = self.path / "oci-layout"
        try:
            data = json.loads(marker.read_text())
        except FileNotFoundError as exc:
            raise BuildError(
                f"{self.path} is not an OCI image layout (no oci-layout file): run the build first"
            ) from exc
        except (OSError, ValueError) as exc:
            raise BuildError(f"{marker} is unreadable or not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("imageLayoutVersion") != LAYOUT_VERSION:
            raise BuildError(f"{marker}: unsupported imageLayoutVersion (expected 1.0.0)")

    # -- blobs -------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / _hex(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def write_blob(self, data: bytes) -> Descriptor:
        """Store bytes as a blob; returns a descriptor with an empty media type to fill in."""
        digest = sha256_digest(data)
        if not self.has_blob(digest, len(data)):
            try:
                self.blobs_dir.mkdir(parents=True, exist_ok=True)
                self._atomic_bytes(self.blob_path(digest), data)
            except OSError as exc:
                raise _disk_error(self.blob_path(digest), exc) from exc
        return Descriptor("", digest, len(data))

    def write_blob_file(self, source: Path, digest: str, size: int) -> None:
        """Store a file as the blob ``digest``, verifying its content on the way.

        A blob already present with the right size is kept. Otherwise the file is
        hard-linked (same filesystem) or copied into a temporary name, hashed, and
        renamed into place only if its digest matches.
        """
        if self.has_blob(digest, size):
            return
        final = self.blob_path(digest)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{_hex(digest)[:12]}-", dir=self.blobs_dir)
        tmp = Path(tmp_name)
        try:
            os.close(fd)
            linked = False
            try:
                tmp.unlink()
                os.link(source, tmp)
                linked = True
            except OSError:
                linked = False
            hasher = hashlib.sha256()
            if linked:
                with open(tmp, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        hasher.update(chunk)
            else:
                with open(source, "rb") as src, open(tmp, "wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        hasher.update(chunk)
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest or tmp.stat().st_size != size:
                raise BuildError(
                    f"{source} does not match its recorded digest {digest} (got {actual}): "
                    "remove it from the cache and rebuild"
                )
            os.replace(tmp, final)
        except OSError as exc:
            raise _disk_error(final, exc) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def read_blob(self, digest: str) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise BuildError(
                f"blob {digest} missing from {self.path}: the layout is incomplete, rebuild it"
            ) from exc
        if sha256_digest(data) != digest:
            raise BuildError(f"blob {digest} in {self.path} is corrupt: rebuild the layout")
        return data

    def read_json(self, digest: str) -> Any:
        return json.loads(self.read_blob(digest))

    # -- refs (index.json) -------------------------------------------------------------

    def _entries(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise BuildError(f"{self.index_path} is unreadable or not JSON: {exc}") from exc
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, list):
            raise BuildError(f"{self.index_path} is not an OCI image index (no manifests list)")
        return [m for m in manifests if isinstance(m, dict)]

    def refs(self) -> dict[str, Descriptor]:
        """Every named ref of the layout, without the ref-name annotation."""
        out: dict[str, Descriptor] = {}
        for entry in self._entries():
            desc = Descriptor.from_json(entry)
            name = desc.annotations.get(ANNOTATION_REF_NAME)
            if name:
                rest = {k: v for k, v in desc.annotations.items() if k != ANNOTATION_REF_NAME}
                out[name] = desc.with_annotations(rest)
        return out

    def resolve(self, ref: str) -> Descriptor:
        found = self.refs().get(ref)
        if found is None:
            known = ", ".join(sorted(self.refs())) or "none"
            raise BuildError(
                f"ref {ref!r} not in the OCI layout {self.path} (refs: {known}): build it first"
            )
        return found

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize index.json updates between processes writing the same layout."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".bink-lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def set_refs(self, refs: Mapping[str, Descriptor]) -> None:
        """Point each ref at its descriptor, keeping every other ref; one atomic rename.

        Every blob a descriptor reaches must already be in the layout: this is checked
        first, so index.json never names content that is not there.
        """
        for name, desc in refs.items():
            if not _REF_NAME.fullmatch(name):
                raise BuildError(
                    f"invalid ref name {name!r}: use letters, digits and . _ - : @ + separators"
                )
            self.check(desc)
        with self.locked():
            kept = [
                e
                for e in self._entries()
                if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) not in refs
            ]
            for name, desc in refs.items():
                annotations = dict(desc.annotations)
                annotations[ANNOTATION_REF_NAME] = name
                kept.append(desc.with_annotations(annotations).to_json())
            self._write_index(kept)

    def copy_refs(self, source: Layout, refs: Mapping[str, Descriptor]) -> None:
        """Bring ``refs`` of another layout here: their blobs first, then one index update.

        Blobs are hard-linked when both layouts share a filesystem (copied otherwise)
        and verified against their digests; blobs already here are kept.
        """
        self.init()
        for desc in refs.values():
            for blob in source.reachable(desc):
                self.write_blob_file(source.blob_path(blob.digest), blob.digest, blob.size)
        self.set_refs(refs)

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        def key(entry: dict[str, Any]) -> tuple[str, str]:
            name = (entry.get("annotations") or {}).get(ANNOTATION_REF_NAME, "")
            return (str(name), str(entry.get("digest", "")))

        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": sorted(entries, key=key),
        }
        try:
            self._atomic_bytes(self.index_path, canonical_json(index))
        except OSError as exc:
            raise _disk_error(self.index_path, exc) from exc

    # -- integrity ---------------------------------------------------------------------

    def children(self, desc: Descriptor) -> list[Descriptor]:
        """The descriptors an index or manifest points to (none for other blobs)."""
        if desc.media_type == MEDIA_INDEX:
            data = self.read_json(desc.digest)
            return [Descriptor.from_json(m) for m in data.get("manifests", [])]
        if desc.media_type == MEDIA_MANIFEST:
            data = self.read_json(desc.digest)
            return [Descriptor.from_json(data["config"])] + [
                Descriptor.from_json(layer) for layer in data.get("layers", [])
            ]
        return []

    def reachable(self, desc: Descriptor) -> list[Descriptor]:
        """``desc`` and everything below it, depth first, each digest once."""
        seen: dict[str, Descriptor] = {}
        stack = [desc]
        while stack:
            cur = stack.pop()
            if cur.digest in seen:
                continue
            seen[cur.digest] = cur
            stack.extend(reversed(self.children(cur)))
        return list(seen.values())

    def check(self, desc: Descriptor) -> None:
        """Raise unless every blob ``desc`` reaches is present with its recorded size."""
        for item in self.reachable(desc):
            if not self.has_blob(item.digest, item.size):
                raise BuildError(
                    f"blob {item.digest} ({item.size} bytes) missing from {self.path}: "
                    "rebuild the layout"
                )

    def prune(self) -> int:
        """Remove blobs no ref reaches; returns how many (temporary files are left alone)."""
        with self.locked():
            live: set[str] = set()
            for desc in self.refs().values():
                live.update(_hex(d.digest) for d in self.reachable(desc))
            removed = 0
            for blob in self.blobs_dir.iterdir():
                if not blob.name.startswith(".") and blob.name not in live:
                    blob.unlink()
                    removed += 1
            return removed

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _atomic_bytes(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
