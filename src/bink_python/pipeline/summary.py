"""The result of ``bink-python build``: one row per image, pull totals, the table and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..image.assemble import BuiltImage
from ..verify import VerifyReport


@dataclass(frozen=True)
class LayerRow:
    """One layer of an image in the summary."""

    what: str  # which stage made it: "base", "runtime", "component", ...
    digest: str
    compressed_size: int
    uncompressed_size: int  # bytes of the layer tar


@dataclass(frozen=True)
class ImageRow:
    """One line of the summary: an image of one tag, arch and layer compression."""

    tag: str
    arch: str
    digest: str
    compressed_size: int  # manifest + config + compressed layers: what a pull downloads
    built: tuple[str, ...]  # stages that did work for this image (empty: all from cache)
    compression: str = "gzip"
    uncompressed_size: int = 0  # config + layer tars: what a node unpacks
    layers: tuple[LayerRow, ...] = ()
    blobs: tuple[tuple[str, int], ...] = ()  # (digest, size) of manifest, config, layers


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class PullTotal:
    """Bytes one node downloads to pull every image of one arch and compression."""

    arch: str
    compression: str
    images: int
    bytes: int  # each blob once: layers shared between tags are pulled once
    bytes_separately: int  # the sum of the images' own sizes


@dataclass(frozen=True)
class BuildSummary:
    layout: Path
    rows: tuple[ImageRow, ...]
    indexes: dict[str, str] = field(hash=False)  # ref name -> index digest
    seconds: float = 0.0
    report: VerifyReport | None = None  # None: verification was skipped (verify=False)

    @property
    def verified(self) -> bool:
        return self.report is not None and self.report.ok

    def pull_totals(self) -> tuple[PullTotal, ...]:
        """Per (arch, compression): bytes to pull all the built images on one node."""
        groups: dict[tuple[str, str], list[ImageRow]] = {}
        for row in self.rows:
            groups.setdefault((row.arch, row.compression), []).append(row)
        totals = []
        for (arch, compression), rows in sorted(groups.items()):
            blobs = {digest: size for row in rows for digest, size in row.blobs}
            totals.append(
                PullTotal(
                    arch,
                    compression,
                    len(rows),
                    sum(blobs.values()),
                    sum(r.compressed_size for r in rows),
                )
            )
        return tuple(totals)

    def table(self) -> str:
        header = ("TAG", "ARCH", "COMPRESSION", "DIGEST", "SIZE", "UNPACKED", "SOURCE")
        lines: list[tuple[str, ...]] = [header]
        for row in self.rows:
            lines.append(
                (
                    row.tag,
                    row.arch,
                    row.compression,
                    row.digest[:19],
                    _mb(row.compressed_size),
                    _mb(row.uncompressed_size),
                    "built: " + ",".join(row.built) if row.built else "cache",
                )
            )
            for layer in row.layers:
                lines.append(
                    (
                        "",
                        "",
                        "",
                        f"  {layer.what}",
                        _mb(layer.compressed_size),
                        _mb(layer.uncompressed_size),
                        layer.digest[:19],
                    )
                )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )
        pulls = "".join(
            f"\npull all {t.images} {t.arch} {t.compression} images on one node: "
            f"{_mb(t.bytes)} (shared layers once; {_mb(t.bytes_separately)} pulled separately)"
            for t in self.pull_totals()
        )
        refs = ", ".join(f"{ref}={digest[:19]}" for ref, digest in sorted(self.indexes.items()))
        if self.report is None:
            verified = "NOT VERIFIED: verification was skipped (--no-verify)"
        else:
            results = [c.status for i in self.report.images for c in i.checks]
            verified = (
                f"{len(self.report.images)} image(s), {results.count('pass')} checks passed, "
                f"{results.count('skip')} not applicable"
            )
        return (
            f"{text}{pulls}\nindexes: {refs}\nverified: {verified}\n"
            f"layout: {self.layout} ({self.seconds:.1f}s)\n"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "layout": str(self.layout),
            "seconds": round(self.seconds, 1),
            "images": [
                {
                    "tag": r.tag,
                    "arch": r.arch,
                    "compression": r.compression,
                    "digest": r.digest,
                    "compressed_size": r.compressed_size,
                    "uncompressed_size": r.uncompressed_size,
                    "layers": [
                        {
                            "what": x.what,
                            "digest": x.digest,
                            "compressed_size": x.compressed_size,
                            "uncompressed_size": x.uncompressed_size,
                        }
                        for x in r.layers
                    ],
                    "built": list(r.built),
                }
                for r in self.rows
            ],
            "pull_totals": [
                {
                    "arch": t.arch,
                    "compression": t.compression,
                    "images": t.images,
                    "bytes": t.bytes,
                    "bytes_separately": t.bytes_separately,
                }
                for t in self.pull_totals()
            ],
            "indexes": dict(sorted(self.indexes.items())),
            "verified": self.verified,
            "verify": None if self.report is None else json.loads(self.report.to_json()),
        }


def image_row(tag: str, arch: str, image: BuiltImage, built: tuple[str, ...]) -> ImageRow:
    """The summary line of one assembled image, with its layers' sizes."""
    layers = tuple(
        LayerRow(
            x.created_by.split()[1] if x.created_by.startswith("bink-python ") else "layer",
            x.digest,
            x.size,
            x.tar_size,
        )
        for x in image.layers
    )
    blobs = (
        (image.descriptor.digest, image.descriptor.size),
        (image.config.digest, image.config.size),
        *((x.digest, x.size) for x in image.layers),
    )
    return ImageRow(
        tag,
        arch,
        image.descriptor.digest,
        image.compressed_size,
        built,
        image.compression,
        image.uncompressed_size,
        layers,
        blobs,
    )
