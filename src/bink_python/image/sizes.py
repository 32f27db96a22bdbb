"""What an image of a layout weighs, layer by layer, and where the bytes are.

``bink-python layers TAG --arch A [--compression C] [--top N] [--json]`` reads one image
of an OCI layout (the instance of that arch and compression of the tag's index) and
prints, for every layer, which stage made it (from the config's history), its
compressed size, its unpacked size (the bytes of the layer tar) and its biggest files
and directories. This is the tool for slimming: go through a layer largest path
first. Every layer is streamed once (gzip or zstd through :mod:`bink_python.oci.compression`).
"""

from __future__ import annotations

import heapq
import tarfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import BuildError
from ..host.text import human
from ..oci import compression
from ..oci.layout import Layout
from ..oci.types import MEDIA_MANIFEST, Descriptor, Platform

#: Directories are summed down to this many path components (usr/lib/x86_64-linux-gnu/gconv).
DIR_DEPTH = 4


@dataclass(frozen=True)
class LayerReport:
    what: str  # the history entry's created_by
    media_type: str
    digest: str
    compressed_size: int
    unpacked_size: int  # bytes of the layer tar
    entries: int
    files: tuple[tuple[int, str], ...]  # (size, path), biggest first
    dirs: tuple[tuple[int, str], ...]  # (bytes of the files below, path), biggest first


@dataclass(frozen=True)
class ImageSizes:
    ref: str
    platform: str
    compression: str
    manifest: Descriptor
    config_size: int
    layers: tuple[LayerReport, ...]

    @property
    def compressed_size(self) -> int:
        return self.manifest.size + self.config_size + sum(x.compressed_size for x in self.layers)

    @property
    def unpacked_size(self) -> int:
        return self.config_size + sum(x.unpacked_size for x in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "platform": self.platform,
            "compression": self.compression,
            "manifest": self.manifest.digest,
            "compressed_size": self.compressed_size,
            "unpacked_size": self.unpacked_size,
            "layers": [
                {
                    "what": x.what,
                    "media_type": x.media_type,
                    "digest": x.digest,
                    "compressed_size": x.compressed_size,
                    "unpacked_size": x.unpacked_size,
                    "entries": x.entries,
                    "files": [{"size": s, "path": p} for s, p in x.files],
                    "dirs": [{"size": s, "path": p} for s, p in x.dirs],
                }
                for x in self.layers
            ],
        }

    def text(self) -> str:
        out = [
            f"{self.ref} {self.platform} ({self.compression}) {self.manifest.digest}: "
            f"{mb(self.compressed_size)} compressed, {mb(self.unpacked_size)} unpacked"
        ]
        for i, layer in enumerate(self.layers, 1):
            out.append(
                f"\nlayer {i}/{len(self.layers)} {layer.digest[:19]} {layer.what}\n"
                f"  {mb(layer.compressed_size)} compressed, {mb(layer.unpacked_size)} unpacked, "
                f"{layer.entries} entries"
            )
            if layer.files:
                out.append("  biggest files:")
                out.extend(f"  {mb(s):>10}  /{p}" for s, p in layer.files)
            if layer.dirs:
                out.append(f"  biggest directories (files below, up to {DIR_DEPTH} levels):")
                out.extend(f"  {mb(s):>10}  /{p}/" for s, p in layer.dirs)
        return "\n".join(out) + "\n"


def mb(size: int) -> str:
    return human(size, decimal=True, unit="MB")


def select_instance(layout: Layout, ref: str, arch: str, algorithm: str | None) -> Descriptor:
    """The manifest of ``arch`` (and ``algorithm``, else the first listed) in ``ref``'s index."""
    desc = layout.resolve(ref)
    if desc.media_type == MEDIA_MANIFEST:
        return desc
    found = [
        child
        for child in layout.platform_manifests(desc, arch)
        if algorithm is None
        or (algorithm == compression.ZSTD)
        == (child.annotations.get(compression.ANNOTATION_ZSTD) == "true")
    ]
    if not found:
        which = f" {algorithm}" if algorithm else ""
        raise BuildError(f"{ref} in {layout.path} has no {Platform.for_arch(arch)}{which} image")
    return found[0]


def _scan(stream: Any, top: int) -> tuple[int, tuple[tuple[int, str], ...], Counter[str]]:
    files: list[tuple[int, str]] = []
    dirs: Counter[str] = Counter()
    entries = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            entries += 1
            if not member.isfile():
                continue
            path = member.name.lstrip("./")
            item = (member.size, path)
            if len(files) < top:
                heapq.heappush(files, item)
            elif top:
                heapq.heappushpop(files, item)
            parts = path.split("/")[:-1]
            for depth in range(1, min(len(parts), DIR_DEPTH) + 1):
                dirs["/".join(parts[:depth])] += member.size
    return entries, tuple(sorted(files, reverse=True)), dirs


def image_sizes(
    layout: Layout, ref: str, arch: str, algorithm: str | None = None, top: int = 10
) -> ImageSizes:
    """Sizes of the ``arch`` image of ``ref``, with the ``top`` biggest paths of each layer."""
    manifest_desc = select_instance(layout, ref, arch, algorithm)
    manifest = layout.read_json(manifest_desc.digest)
    config = layout.read_json(manifest["config"]["digest"])
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    layers = []
    kinds = set()
    for i, entry in enumerate(manifest.get("layers", [])):
        layer = Descriptor.from_json(entry)
        kinds.add(compression.algorithm_of(layer.media_type))
        counter = _Counting()
        with compression.open_layer(layout.blob_path(layer.digest), layer.media_type) as raw:
            counter.stream = raw
            entries, files, dirs = _scan(counter, top)
        layers.append(
            LayerReport(
                what=str(history[i].get("created_by", "")) if i < len(history) else "",
                media_type=layer.media_type,
                digest=layer.digest,
                compressed_size=layer.size,
                unpacked_size=counter.size,
                entries=entries,
                files=files,
                dirs=tuple((s, p) for p, s in dirs.most_common(top)),
            )
        )
    return ImageSizes(
        ref=ref,
        platform=str(manifest_desc.platform or Platform.for_arch(arch)),
        compression="+".join(sorted(kinds)),
        manifest=manifest_desc,
        config_size=int(manifest["config"]["size"]),
        layers=tuple(layers),
    )


class _Counting:
    """A read-only stream that counts the bytes read through it (the tar's size)."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.stream.read(n)
        self.size += len(data)
        return data
