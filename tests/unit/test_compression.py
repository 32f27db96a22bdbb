"""Layer compression: gzip and zstd blobs, determinism, media types, the zstd index entry."""

from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import deflate
import pytest
import zstandard

from bink_python.errors import BuildError
from bink_python.image.assemble import LayerSource, build_image, build_index, compress_layer
from bink_python.oci import compression, tarball, types
from bink_python.oci.layout import Layout
from bink_python.store.store import Store

from .test_assemble import EPOCH, _spec

ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def _layer(tmp: Path, size: int = 300_000) -> LayerSource:
    tree = tmp / "tree"
    (tree / "usr/lib").mkdir(parents=True)
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(8)) for _ in range(500)]
    (tree / "usr/lib/data").write_bytes(b" ".join(rng.choice(words) for _ in range(size // 9)))
    (tree / "usr/lib/noise").write_bytes(rng.randbytes(20_000))
    tar = tmp / "layer.tar"
    sha, _ = tarball.write_tree_tar_file(tree, tar, epoch=EPOCH)
    return LayerSource(tar, "sha256:" + sha, "bink-python base test amd64")


def test_gzip_and_zstd_blobs_decompress_to_the_tar(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    store = Store(tmp_path / "store")
    gz = compress_layer(layer, store, "gzip")
    zst = compress_layer(layer, store, "zstd")
    assert (gz.media_type, zst.media_type) == (GZIP, ZSTD)
    tar = layer.tar.read_bytes()
    assert gzip.decompress(gz.path.read_bytes()) == tar
    frame = zst.path.read_bytes()
    assert zstandard.ZstdDecompressor().decompress(frame) == tar
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == len(tar) and params.has_checksum
    assert zst.tar_size == gz.tar_size == len(tar)
    assert compression.uncompressed_digest(zst.path, ZSTD) == (layer.diff_id, len(tar))
    assert compression.uncompressed_digest(gz.path, GZIP) == (layer.diff_id, len(tar))
    assert "sha256:" + hashlib.sha256(frame).hexdigest() == zst.digest
    assert compress_layer(layer, store, "zstd").reused


def test_zstd_bytes_are_the_same_every_time(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    digests = set()
    for run in range(2):
        digest, _, source = compression.compress_file(layer.tar, tmp_path / f"{run}.zst", "zstd")
        assert source == layer.diff_id
        digests.add(digest)
    assert len(digests) == 1


def test_gzip_is_libdeflate_at_its_highest_level_and_deterministic(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    blobs = []
    for run in range(2):
        digest, _, source = compression.compress_file(layer.tar, tmp_path / f"{run}.gz", "gzip")
        assert (
            digest == "sha256:" + hashlib.sha256((tmp_path / f"{run}.gz").read_bytes()).hexdigest()
        )
        assert source == layer.diff_id
        blobs.append((tmp_path / f"{run}.gz").read_bytes())
    assert blobs[0] == blobs[1]
    blob = blobs[0]
    # an ordinary gzip member: no mtime, no file name; what zlib makes is bigger
    assert blob[:4] == b"\x1f\x8b\x08\x00" and blob[4:8] == b"\0\0\0\0"
    assert gzip.decompress(blob) == layer.tar.read_bytes()
    assert len(blob) < len(gzip.compress(layer.tar.read_bytes(), compresslevel=9, mtime=0))
    assert compression.settings("gzip") == {
        "encoder": "libdeflate",
        "level": 12,
        "deflate": deflate.__version__,
    }


def test_an_empty_layer_compresses(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    digest, size, source = compression.compress_file(tmp_path / "empty", tmp_path / "e.gz", "gzip")
    assert gzip.decompress((tmp_path / "e.gz").read_bytes()) == b""
    assert source == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert digest == "sha256:" + hashlib.sha256((tmp_path / "e.gz").read_bytes()).hexdigest()
    assert size == (tmp_path / "e.gz").stat().st_size


def test_cache_keys_name_the_library_and_level() -> None:
    assert compression.settings("zstd")["level"] == compression.ZSTD_LEVEL == 19
    assert compression.settings("zstd")["workers"] == compression.ZSTD_WORKERS
    libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
    assert compression.settings("zstd")["libzstd"] == libzstd


def test_unknown_compression_and_media_type_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown layer compression 'xz'"):
        compress_layer(_layer(tmp_path), Store(tmp_path / "s"), "xz")
    with pytest.raises(BuildError, match="unsupported layer media type"):
        compression.algorithm_of("application/vnd.oci.image.layer.v1.tar+xz")


@pytest.mark.parametrize("algorithm", ["gzip", "zstd"])
def test_a_tar_changed_after_build_is_refused(tmp_path: Path, algorithm: str) -> None:
    layer = _layer(tmp_path)
    with open(layer.tar, "ab") as handle:
        handle.write(b"\0" * 512)
    with pytest.raises(BuildError, match="not its recorded diff_id"):
        compress_layer(layer, Store(tmp_path / "s"), algorithm)


def test_index_lists_gzip_instances_first_and_marks_zstd(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    store = Store(tmp_path / "store")
    layout = Layout(tmp_path / "oci").init()
    built = [
        build_image(_spec(arch, (layer,)), layout, store, comp)
        for comp in ("zstd", "gzip")
        for arch in ("arm64", "amd64")
    ]
    # same config whatever the compression; different manifests
    by_arch: dict[object, set[str]] = {}
    for image in built:
        by_arch.setdefault(image.descriptor.platform, set()).add(image.config.digest)
    assert all(len(configs) == 1 for configs in by_arch.values())
    assert len({b.descriptor.digest for b in built}) == 4
    index = build_index([b.descriptor for b in built], {}, layout)
    entries = layout.read_json(index.digest)["manifests"]
    assert [
        (e["platform"]["architecture"], e.get("annotations", {}).get(compression.ANNOTATION_ZSTD))
        for e in entries
    ] == [("amd64", None), ("arm64", None), ("amd64", "true"), ("arm64", "true")]
    for entry in entries:
        manifest = layout.read_json(entry["digest"])
        want = ZSTD if entry.get("annotations") else GZIP
        assert [x["mediaType"] for x in manifest["layers"]] == [want]
    # what every reader of a tag takes for a platform: its instances in index order
    amd64 = layout.platform_manifests(index, "amd64")
    assert [e.annotations.get(compression.ANNOTATION_ZSTD) for e in amd64] == [None, "true"]
    assert {e.platform for e in amd64} == {built[1].descriptor.platform}
    assert layout.platform_manifests(amd64[0], "arm64") == [amd64[0]]  # a manifest names itself
    with pytest.raises(BuildError, match="neither an image index nor a manifest"):
        layout.platform_manifests(built[0].config, "amd64")
    # the same inputs in another order give the same index
    again = build_index([b.descriptor for b in reversed(built)], {}, layout)
    assert again.digest == index.digest
    # two zstd instances of one platform are refused
    with pytest.raises(BuildError, match="distinct platforms"):
        build_index([built[0].descriptor, built[0].descriptor], {}, layout)


def test_open_layer_streams_every_kind(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    store = Store(tmp_path / "store")
    for comp in ("gzip", "zstd"):
        blob = compress_layer(layer, store, comp)
        with compression.open_layer(blob.path, blob.media_type) as stream:
            assert stream.read() == layer.tar.read_bytes()
    with compression.open_layer(layer.tar, types.MEDIA_LAYER_TAR) as stream:
        assert stream.read(10) == layer.tar.read_bytes()[:10]
