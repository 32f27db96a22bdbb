"""Assemble OCI images and indexes from layer tarballs (the ``assemble`` stage).

Inputs are deterministic, uncompressed layer tars already on disk (the base rootfs,
the runtime, small component/file layers made here by :func:`files_layer`). For
each (tag, arch) :func:`build_image` compresses the layers (once per diff_id: the
gzip blob is cached in the store), writes the image config and manifest as
canonical JSON into an OCI :class:`~bink_python.oci.layout.Layout`, and returns the
manifest descriptor. :func:`build_index` groups the per-arch manifests of a tag
into an image index. The caller names the index with :meth:`Layout.set_refs`
(last, atomically). Same inputs give the same bytes, hence the same digests.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import BuildError
from ..oci import compression as compression_mod
from ..oci.layout import Layout
from ..oci.types import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Descriptor,
    Platform,
    canonical_json,
    is_sha256_digest,
)
from ..store.kinds import FILES_LAYERS, GZIP_LAYERS, ZSTD_LAYERS
from ..store.store import Store, atomic_write_bytes, cache_key, read_json, write_json

#: Bumped when the bytes of a compressed or files layer would change for the same input.
LAYER_RECIPE = 1

#: Label and manifest-annotation keys beyond the org.opencontainers.image.* ones.
LABEL_EOL = "com.bink.python.eol"
LABEL_STATUS = "com.bink.python.status"

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")

#: The store kind of each compression's layer blobs.
_COMPRESSED_KINDS = {compression_mod.GZIP: GZIP_LAYERS, compression_mod.ZSTD: ZSTD_LAYERS}


def rfc3339(epoch: int) -> str:
    """``SOURCE_DATE_EPOCH`` as the RFC 3339 UTC time used in configs and labels."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- layers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSource:
    """An uncompressed, deterministic layer tar already on disk."""

    tar: Path
    diff_id: str  # "sha256:<hex>" of the tar
    created_by: str  # history entry: which stage made it, from what
    comment: str = ""


@dataclass(frozen=True)
class LayerFile:
    """One file of a small layer: its path in the image and its content."""

    path: str  # relative, e.g. "usr/local/bin/linkerd-await"
    source: Path | None = None
    data: bytes | None = None
    mode: int = 0o644

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.source is None:
            raise BuildError(f"layer file {self.path}: give a source file or data")
        try:
            return self.source.read_bytes()
        except OSError as exc:
            raise BuildError(f"cannot read {self.source} for {self.path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class CompressedLayer:
    """A compressed layer blob in the store, ready to be copied into a layout."""

    path: Path
    digest: str
    size: int
    diff_id: str
    reused: bool  # True when the blob came from the cache
    media_type: str = MEDIA_LAYER_GZIP
    tar_size: int = 0  # bytes of the uncompressed tar
    created_by: str = ""


def _check_rel_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BuildError(f"layer file path {path!r} must be relative, without '.' or '..' parts")


def files_layer(
    files: Sequence[LayerFile],
    store: Store,
    *,
    epoch: int,
    created_by: str,
    comment: str = "",
) -> LayerSource:
    """A small deterministic layer from individual files (cached in the store).

    Parent directories are included with mode 0755; every entry has uid/gid 0, no
    owner names, and mtime ``epoch``. Entries are sorted by path.
    """
    if not files:
        raise BuildError("files_layer needs at least one file")
    contents: dict[str, tuple[bytes, int]] = {}
    for item in files:
        _check_rel_path(item.path)
        if item.path in contents:
            raise BuildError(f"layer file {item.path} given twice")
        contents[item.path] = (item.content(), item.mode & 0o7777)
    dirs: set[str] = set()
    for path in contents:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    clash = dirs & contents.keys()
    if clash:
        raise BuildError(f"layer file {sorted(clash)[0]} is also a parent directory")
    key = cache_key(
        {
            "recipe": LAYER_RECIPE,
            "epoch": epoch,
            "files": sorted(
                [p, hashlib.sha256(c).hexdigest(), m] for p, (c, m) in contents.items()
            ),
        }
    )
    kind = FILES_LAYERS.name
    with store.lock(kind, key):
        entry = store.lookup(kind, key)
        if entry is None:
            with store.building(kind, key) as tmp:
                buffer = io.BytesIO()
                _write_files_tar(buffer, contents, dirs, epoch)
                data = buffer.getvalue()
                atomic_write_bytes(tmp / "layer.tar", data)
                diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
                write_json(tmp / "meta.json", {"diff_id": diff_id})
            entry = store.path(kind, key)
        meta = read_json(entry / "meta.json")
    return LayerSource(entry / "layer.tar", str(meta["diff_id"]), created_by, comment)


def _write_files_tar(
    dest: io.BytesIO, contents: Mapping[str, tuple[bytes, int]], dirs: set[str], epoch: int
) -> None:
    entries = sorted([*dirs, *contents], key=os.fsencode)
    with tarfile.open(fileobj=dest, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            if name in contents:
                data, mode = contents[name]
                info.type = tarfile.REGTYPE
                info.mode = mode
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)


def compress_layer(
    layer: LayerSource, store: Store, compression: str = compression_mod.GZIP
) -> CompressedLayer:
    """The compressed blob of a layer, made once per (diff_id, algorithm) and kept in the store.

    The bytes depend only on the tar and :func:`compression.settings` (algorithm, level,
    library version: all in the cache key). The tar is hashed while it is read: a tar
    that does not match its diff_id is refused.
    """
    if not is_sha256_digest(layer.diff_id):
        raise BuildError(f"layer {layer.tar}: diff_id {layer.diff_id!r} is not sha256:<hex>")
    settings = compression_mod.settings(compression)
    key = cache_key({"recipe": LAYER_RECIPE, "diff_id": layer.diff_id, **settings})
    kind = _COMPRESSED_KINDS[compression].name
    blob_name = f"layer.tar.{'gz' if compression == compression_mod.GZIP else 'zst'}"
    reused = True
    with store.lock(kind, key):
        entry = store.lookup(kind, key)
        if entry is None:
            reused = False
            with store.building(kind, key) as tmp:
                digest, size, tar_size = _compress_verified(layer, tmp / blob_name, compression)
                write_json(
                    tmp / "meta.json",
                    {
                        "diff_id": layer.diff_id,
                        "digest": digest,
                        "size": size,
                        "tar_size": tar_size,
                        "settings": settings,
                    },
                )
            entry = store.path(kind, key)
        meta = read_json(entry / "meta.json")
    tar_size = int(meta.get("tar_size") or layer.tar.stat().st_size)
    return CompressedLayer(
        entry / blob_name,
        str(meta["digest"]),
        int(meta["size"]),
        layer.diff_id,
        reused,
        media_type=compression_mod.MEDIA_TYPES[compression],
        tar_size=tar_size,
        created_by=layer.created_by,
    )


def _compress_verified(layer: LayerSource, dest: Path, compression: str) -> tuple[str, int, int]:
    if not layer.tar.is_file():
        raise BuildError(
            f"layer tar {layer.tar} is missing ({layer.created_by}): rebuild that stage"
        )
    try:
        digest, size, actual = compression_mod.compress_file(layer.tar, dest, compression)
        tar_size = layer.tar.stat().st_size
    except OSError as exc:
        raise compression_mod.compress_error(layer.tar, exc) from exc
    if actual != layer.diff_id:
        raise BuildError(
            f"layer tar {layer.tar} has digest {actual}, not its recorded diff_id "
            f"{layer.diff_id}: it changed after it was built; rebuild that stage"
        )
    return digest, size, tar_size


# -- images and indexes ---------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """Everything that determines one image (one tag, one arch)."""

    arch: str  # "amd64" | "arm64" (config and platform: arm64 + variant v8)
    layers: tuple[LayerSource, ...]
    env: tuple[str, ...]  # ("PATH=/usr/local/bin:...", "LANG=C.UTF-8", "PYTHON_VERSION=...")
    cmd: tuple[str, ...]  # ("python3",)
    user: str  # "" (root) for regular images, "uid:gid" of the family user for distroless
    labels: Mapping[str, str] = field(default_factory=dict)  # also manifest annotations
    created: str = "1970-01-01T00:00:00Z"  # rfc3339(SOURCE_DATE_EPOCH)

    @property
    def platform(self) -> Platform:
        return Platform.for_arch(self.arch)


@dataclass(frozen=True)
class BuiltImage:
    """One assembled image: its manifest descriptor and what it is made of."""

    descriptor: Descriptor  # the manifest, with platform (goes into the index)
    config: Descriptor
    layers: tuple[CompressedLayer, ...]
    compression: str = compression_mod.GZIP

    @property
    def compressed_size(self) -> int:
        """Bytes a pull downloads: manifest + config + compressed layers."""
        return self.descriptor.size + self.config.size + sum(x.size for x in self.layers)

    @property
    def uncompressed_size(self) -> int:
        """Bytes of the layer tars (what a node unpacks) plus the config."""
        return self.config.size + sum(x.tar_size for x in self.layers)

    @property
    def reused(self) -> bool:
        """True when no layer had to be compressed (everything came from the cache)."""
        return all(x.reused for x in self.layers)


def _validate(spec: ImageSpec) -> None:
    if not spec.layers:
        raise BuildError(f"image for {spec.arch} has no layers")
    if not _RFC3339.fullmatch(spec.created):
        raise BuildError(f"created {spec.created!r} is not an RFC 3339 time (use rfc3339(epoch))")
    for item in spec.env:
        if "=" not in item or item.startswith("="):
            raise BuildError(f"environment entry {item!r} must be NAME=value")
    for key, value in spec.labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BuildError(f"label {key!r} must map a string to a string")


def image_config(spec: ImageSpec) -> dict[str, object]:
    """The OCI image config (application/vnd.oci.image.config.v1+json) of a spec."""
    _validate(spec)
    platform = spec.platform
    config: dict[str, object] = {"Env": list(spec.env)}
    if spec.cmd:
        config["Cmd"] = list(spec.cmd)
    if spec.user:
        config["User"] = spec.user
    if spec.labels:
        config["Labels"] = dict(spec.labels)
    history: list[dict[str, str]] = []
    for layer in spec.layers:
        entry = {"created": spec.created, "created_by": layer.created_by}
        if layer.comment:
            entry["comment"] = layer.comment
        history.append(entry)
    out: dict[str, object] = {
        "created": spec.created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in spec.layers]},
        "history": history,
    }
    if platform.variant:
        out["variant"] = platform.variant
    return out


def build_image(
    spec: ImageSpec, layout: Layout, store: Store, compression: str = compression_mod.GZIP
) -> BuiltImage:
    """Write one image (layers compressed with ``compression``, config, manifest).

    The config (and so the image ID and diff_ids) is the same whatever the compression;
    the manifest differs. The descriptor carries the index-entry annotation of its
    compression (:func:`compression.instance_annotations`). index.json is not touched:
    name the result with :func:`build_index` and :meth:`Layout.set_refs`.
    """
    config_bytes = canonical_json(image_config(spec))
    layout.init()
    layers = tuple(compress_layer(x, store, compression) for x in spec.layers)
    for layer in layers:
        layout.write_blob_file(layer.path, layer.digest, layer.size)
    config = Descriptor(MEDIA_CONFIG, *_blob(layout, config_bytes))
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.to_json(),
        "layers": [Descriptor(x.media_type, x.digest, x.size).to_json() for x in layers],
    }
    if spec.labels:
        manifest["annotations"] = dict(spec.labels)
    digest, size = _blob(layout, canonical_json(manifest))
    desc = Descriptor(
        MEDIA_MANIFEST,
        digest,
        size,
        spec.platform,
        compression_mod.instance_annotations(compression),
    )
    return BuiltImage(desc, config, layers, compression)


def _is_zstd_instance(desc: Descriptor) -> bool:
    return desc.annotations.get(compression_mod.ANNOTATION_ZSTD) == "true"


def build_index(
    manifests: Sequence[Descriptor], annotations: Mapping[str, str], layout: Layout
) -> Descriptor:
    """Write the image index of one tag; returns its descriptor.

    One manifest per platform and compression: a platform may have a gzip and a zstd
    instance (marked by :data:`compression.ANNOTATION_ZSTD`). Every gzip instance is
    listed before every zstd one (then by platform), so clients that take the first
    entry of their platform get gzip and containers/image's chooser takes zstd.
    """
    if not manifests:
        raise BuildError("an image index needs at least one image")
    keys = [(str(m.platform), _is_zstd_instance(m)) for m in manifests]
    if any(m.platform is None for m in manifests) or len(set(keys)) != len(keys):
        names = ", ".join(f"{p}{' (zstd)' if z else ''}" for p, z in keys)
        raise BuildError(f"index images need distinct platforms (one per compression), got {names}")
    for m in manifests:
        if not layout.has_blob(m.digest, m.size):
            raise BuildError(f"manifest {m.digest} is not in {layout.path}: build the image first")
    ordered = sorted(manifests, key=lambda m: (_is_zstd_instance(m), str(m.platform)))
    index: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [m.to_json() for m in ordered],
    }
    if annotations:
        index["annotations"] = dict(annotations)
    digest, size = _blob(layout, canonical_json(index))
    return Descriptor(MEDIA_INDEX, digest, size)


def _blob(layout: Layout, data: bytes) -> tuple[str, int]:
    desc = layout.write_blob(data)
    return desc.digest, desc.size
