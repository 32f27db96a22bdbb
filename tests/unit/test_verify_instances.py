"""`compression-instances`: a platform's zstd instance must be the image the checks ran on."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from bink_python.image.description import ImageDescription
from bink_python.oci.compression import GZIP, MEDIA_TYPES, ZSTD
from bink_python.oci.layout import Layout
from bink_python.oci.types import MEDIA_CONFIG, MEDIA_MANIFEST, Descriptor
from bink_python.verify.imagerun import Container
from bink_python.verify.registry import REGISTRY, CheckFailed, NotApplicable, Probe
from bink_python.verify.static import check_compression_instances


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _compress(data: bytes, algorithm: str) -> bytes:
    if algorithm == GZIP:
        return gzip.compress(data, mtime=0)
    return zstandard.ZstdCompressor().compress(data)


class Image:
    """A two-layer image in a layout, published gzip and zstd (same config)."""

    def __init__(self, root: Path) -> None:
        self.layout = Layout(root).init()
        self.tars = [_tar("a", b"first layer"), _tar("b", b"second layer" * 100)]
        diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in self.tars]
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": diff_ids}}
        self.config = config
        self.config_desc = self.layout.write_blob(json.dumps(config).encode())

    def manifest(self, algorithm: str, tars: list[bytes] | None = None, **extra: Any) -> Descriptor:
        layers = []
        for tar in tars if tars is not None else self.tars:
            blob = self.layout.write_blob(_compress(tar, algorithm))
            layers.append(
                {"mediaType": MEDIA_TYPES[algorithm], "digest": blob.digest, "size": blob.size}
            )
        data = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {
                "mediaType": MEDIA_CONFIG,
                "digest": self.config_desc.digest,
                "size": self.config_desc.size,
            },
            "layers": layers,
            **extra,
        }
        desc = self.layout.write_blob(json.dumps(data).encode())
        return Descriptor(MEDIA_MANIFEST, desc.digest, desc.size)

    def probe(self, first: Descriptor, *others: Descriptor) -> Probe:
        container = Container(buildah=None, name="t", rootfs=Path("/nonexistent"))  # type: ignore[arg-type]
        manifest = self.layout.read_json(first.digest)
        expect: ImageDescription = None  # type: ignore[assignment]  # unused by this check
        return Probe(expect, container, self.config, manifest, layout=self.layout, instances=others)


def test_the_check_is_registered_static() -> None:
    assert REGISTRY["compression-instances"].static


def test_one_instance_is_not_applicable(tmp_path: Path) -> None:
    image = Image(tmp_path)
    with pytest.raises(NotApplicable):
        check_compression_instances(image.probe(image.manifest(GZIP)))


def test_a_zstd_instance_of_the_same_image_passes(tmp_path: Path) -> None:
    image = Image(tmp_path)
    detail = check_compression_instances(image.probe(image.manifest(GZIP), image.manifest(ZSTD)))
    assert "1 other instance(s) (zstd)" in detail and "all 2 layers" in detail


def test_a_zstd_instance_with_other_files_fails(tmp_path: Path) -> None:
    image = Image(tmp_path)
    swapped = [image.tars[0], _tar("b", b"something else")]
    probe = image.probe(image.manifest(GZIP), image.manifest(ZSTD, swapped))
    with pytest.raises(CheckFailed, match="layer 2 unpacks to sha256:"):
        check_compression_instances(probe)


def test_an_instance_with_another_config_or_layer_count_fails(tmp_path: Path) -> None:
    image = Image(tmp_path)
    other = image.layout.write_blob(b'{"rootfs": {"diff_ids": []}}')
    moved = image.manifest(
        ZSTD, config={"mediaType": MEDIA_CONFIG, "digest": other.digest, "size": other.size}
    )
    with pytest.raises(CheckFailed, match="not the checked image's"):
        check_compression_instances(image.probe(image.manifest(GZIP), moved))
    short = image.manifest(ZSTD, image.tars[:1])
    with pytest.raises(CheckFailed, match="1 layers for 2 diff_ids"):
        check_compression_instances(image.probe(image.manifest(GZIP), short))


@pytest.mark.parametrize(("first", "other"), [(GZIP, ZSTD), (ZSTD, GZIP)])
def test_a_changed_blob_of_the_other_instance_fails(tmp_path: Path, first: str, other: str) -> None:
    image = Image(tmp_path)
    broken = image.manifest(other)
    blob = image.layout.blob_path(image.layout.read_json(broken.digest)["layers"][1]["digest"])
    blob.write_bytes(blob.read_bytes()[:20])  # truncated in place: no longer its digest
    with pytest.raises(CheckFailed, match="layer 2 is not the blob its digest names"):
        check_compression_instances(image.probe(image.manifest(first), broken))


@pytest.mark.parametrize("other", [GZIP, ZSTD])
def test_a_blob_that_is_not_in_its_format_fails(tmp_path: Path, other: str) -> None:
    image = Image(tmp_path)
    garbage = image.layout.write_blob(b"not compressed at all" * 10)  # its digest is right
    data = image.layout.read_json(image.manifest(other).digest)
    data["layers"][1].update(digest=garbage.digest, size=garbage.size)
    desc = image.layout.write_blob(json.dumps(data).encode())
    twin = Descriptor(MEDIA_MANIFEST, desc.digest, desc.size)
    with pytest.raises(CheckFailed, match="layer 2 does not unpack"):
        check_compression_instances(image.probe(image.manifest(GZIP), twin))
