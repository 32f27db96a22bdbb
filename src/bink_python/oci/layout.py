"""An OCI image layout on disk (``dist/oci`` by default).

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

Integrity: a blob already present is reused only after its content was hashed and
matched its digest (once per file per process: :func:`.blobs.blob_ok` remembers a verified
file by device, inode, size and mtime); a corrupt one is replaced. Every
read-check-write of the layout (bringing refs in, :meth:`Layout.set_refs`,
:meth:`Layout.prune`) runs under one lock (:meth:`Layout.locked`, an ``flock``
that is re-entrant within a thread), so a prune never removes a blob that a
concurrent build is about to name. Temporary files carry their writer's pid
(``.tmp-<pid>-...``); those of dead writers are removed under the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import BuildError, NoSuchLayout, NoSuchTag
from ..host.files import decode, parse_json, read_text
from ..store.store import atomic_write_bytes, flocked, sha256_file, sha256_stream
from .blobs import blob_ok, remember
from .types import (
    ANNOTATION_REF_NAME,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Descriptor,
    Platform,
    canonical_json,
    digest_hex,
    sha256_digest,
    shape_problem,
)

LAYOUT_VERSION = "1.0.0"

#: The ref grammar of the image-layout spec (components of alphanumerics and separators).
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")

#: Default location of the layout, relative to the working directory.
DEFAULT_LAYOUT = Path("dist/oci")


def add_layout_option(parser: Any) -> None:
    """``--layout DIR``: the OCI layout a command reads (default :data:`DEFAULT_LAYOUT`)."""
    parser.add_argument(
        "--layout",
        metavar="DIR",
        default=str(DEFAULT_LAYOUT),
        help=f"OCI layout to read (default {DEFAULT_LAYOUT})",
    )


#: Layout locks held by this thread: resolved layout path -> depth.
_HELD = threading.local()


def _pid_alive(pid: int) -> bool:
    return pid == os.getpid() or Path(f"/proc/{pid}").exists()


_TEMP = re.compile(r"\.tmp-(\d+)-")


def _temp_prefix(label: str = "") -> str:
    return f".tmp-{os.getpid()}-{label}"


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
        """Raise unless ``path`` is an OCI layout with a supported version: every command
        that reads a layout calls it first, so a missing one is :class:`NoSuchLayout`."""
        marker = self.path / "oci-layout"
        try:
            data = json.loads(marker.read_text())
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NoSuchLayout(
                f"{self.path} is not an OCI image layout (no oci-layout file): run the build first"
            ) from exc
        except (OSError, ValueError) as exc:
            raise BuildError(f"{marker} is unreadable or not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("imageLayoutVersion") != LAYOUT_VERSION:
            raise BuildError(f"{marker}: unsupported imageLayoutVersion (expected 1.0.0)")

    # -- blobs -------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / digest_hex(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is present with its size (cheap: no hashing; see :func:`blob_ok`)."""
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def blob_ok(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is present and its content matches its digest (hashed once)."""
        return blob_ok(self.blob_path(digest), digest, size)

    def write_blob(self, data: bytes) -> Descriptor:
        """Store bytes as a blob; returns a descriptor with an empty media type to fill in.

        A blob already present is kept only if its content is right (else replaced)."""
        digest = sha256_digest(data)
        final = self.blob_path(digest)
        if not self.blob_ok(digest, len(data)):
            try:
                self.blobs_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(final, data, prefix=_temp_prefix())
            except OSError as exc:
                raise _disk_error(final, exc) from exc
            remember(final, digest)
        return Descriptor("", digest, len(data))

    def write_blob_file(self, source: Path, digest: str, size: int) -> None:
        """Store a file as the blob ``digest``, verifying its content on the way.

        A blob already present is kept only if its content matches its digest (a
        corrupt one is replaced). Otherwise the file is hard-linked (same filesystem)
        or copied into a temporary name, hashed, and renamed into place only if its
        digest matches.
        """
        if self.blob_ok(digest, size):
            return
        final = self.blob_path(digest)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=_temp_prefix(digest_hex(digest)[:12] + "-"), dir=self.blobs_dir
        )
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
            if linked:
                actual = "sha256:" + sha256_file(tmp)
            else:
                with open(source, "rb") as src, open(tmp, "wb") as dst:
                    actual = "sha256:" + sha256_stream(src, dst)[0]
                    dst.flush()
                    os.fsync(dst.fileno())
            if actual != digest or tmp.stat().st_size != size:
                raise BuildError(
                    f"{source} does not match its recorded digest {digest} (got {actual}): "
                    "remove it from the cache and rebuild"
                )
            os.replace(tmp, final)
            remember(final, digest)
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
        """The JSON document ``digest``; an index's or manifest's shape checked, so a
        well-hashed blob of the wrong shape is a layout error, not a crash downstream."""
        where = Path(f"{self.path}:{digest}")
        data = parse_json(
            decode(self.read_blob(digest), where, error=BuildError), where, error=BuildError
        )
        problem = shape_problem(data)
        if problem:
            raise BuildError(f"{self.path}: blob {digest} is not a valid OCI document ({problem})")
        return data

    # -- refs (index.json) -------------------------------------------------------------

    def _entries(self) -> list[dict[str, Any]]:
        """index.json's entries, each a well-formed descriptor (else one error naming it)."""
        if not self.index_path.exists():
            return []
        path = self.index_path
        data = parse_json(
            read_text(path, what="an OCI index", error=BuildError), path, error=BuildError
        )
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, list):
            raise BuildError(f"{path} is not an OCI image index (no manifests list)")
        problem = shape_problem(data)
        if problem:
            raise BuildError(f"{path} is not a valid OCI image index ({problem})")
        for entry in manifests:
            try:
                digest_hex(entry["digest"])
            except BuildError as exc:
                raise BuildError(f"{path}: {exc}") from None
        return list(manifests)

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
            raise NoSuchTag(
                f"ref {ref!r} not in the OCI layout {self.path} (refs: {known}): build it first"
            )
        return found

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-check-writes of this layout between processes and threads.

        Re-entrant within a thread (a caller may hold it around blob writes and
        :meth:`set_refs`, which takes it too).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        held: dict[str, int] = _HELD.__dict__.setdefault("depth", {})
        if held.get(key, 0) > 0:
            held[key] += 1
            try:
                yield
            finally:
                held[key] -= 1
            return
        with flocked(self.path / ".bink-lock"):
            held[key] = 1
            try:
                yield
            finally:
                held[key] = 0

    def set_refs(self, refs: Mapping[str, Descriptor]) -> None:
        """Point each ref at its descriptor, keeping every other ref; one atomic rename.

        Every blob a descriptor reaches must already be in the layout: this is checked
        under the lock, so index.json never names content that is not there (and a
        concurrent prune cannot remove it in between).
        """
        for name in refs:
            if not _REF_NAME.fullmatch(name):
                raise BuildError(
                    f"invalid ref name {name!r}: use letters, digits and . _ - : @ + separators"
                )
        with self.locked():
            for desc in refs.values():
                self.check(desc)
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
        with self.locked():
            self.init()
            self.remove_dead_temps()
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

    def platform_manifests(self, desc: Descriptor, arch: str) -> list[Descriptor]:
        """The image manifests of ``arch`` that ``desc`` names, in index order: one per
        layer compression the index publishes (gzip first), none if it has no such
        platform. A manifest names itself (what it is built for is in its config, which
        the caller checks if it must). Anything else is an error."""
        if desc.media_type == MEDIA_MANIFEST:
            return [desc]
        if desc.media_type != MEDIA_INDEX:
            raise BuildError(
                f"{desc.digest} in {self.path} is neither an image index nor a manifest"
            )
        want = Platform.for_arch(arch).architecture
        return [
            child
            for child in self.children(desc)
            if child.platform is not None and child.platform.architecture == want
        ]

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

    def remove_dead_temps(self) -> int:
        """Remove temporary files of writers that died (``.tmp-<pid>-...``); how many."""
        removed = 0
        for folder in (self.path, self.blobs_dir):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                found = _TEMP.match(name)
                if found and not _pid_alive(int(found.group(1))):
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
                        removed += 1
        return removed

    def prune(self) -> int:
        """Remove blobs no ref reaches; returns how many (live writers' temp files are kept)."""
        with self.locked():
            self.remove_dead_temps()
            live: set[str] = set()
            for desc in self.refs().values():
                live.update(digest_hex(d.digest) for d in self.reachable(desc))
            removed = 0
            for blob in self.blobs_dir.iterdir():
                if not blob.name.startswith(".") and blob.name not in live:
                    blob.unlink()
                    removed += 1
            return removed

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _atomic_bytes(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data, prefix=_temp_prefix())
