"""Assembly of OCI images and indexes: spec-shaped JSON, deterministic bytes, reuse."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from bink_python.errors import BuildError
from bink_python.image.assemble import (
    LABEL_EOL,
    ImageSpec,
    LayerFile,
    LayerSource,
    build_image,
    build_index,
    compress_layer,
    files_layer,
    rfc3339,
)
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.oci.types import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_json,
)
from bink_python.store.store import Store
from tests.support.images import synthetic_labels

EPOCH = 1_760_000_000


def _base_tar(tmp: Path) -> LayerSource:
    tree = tmp / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=test\n")
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/tool").write_bytes(b"\x7fELF" + b"x" * 5000)
    tar = tmp / "base.tar"
    sha, _ = tarball.write_tree_tar_file(tree, tar, epoch=EPOCH)
    return LayerSource(tar, "sha256:" + sha, "bink-python base test amd64")


def _spec(arch: str, layers: tuple[LayerSource, ...], user: str = "") -> ImageSpec:
    labels = synthetic_labels(
        arch, version="3.13.15", summary="test", vendor="Bink", epoch=EPOCH, revision="abc"
    )
    return ImageSpec(
        arch=arch,
        layers=layers,
        env=("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.13.15"),
        cmd=("python3",),
        user=user,
        labels=labels,
        created=rfc3339(EPOCH),
    )


def _build_tag(tmp: Path, store: Store, layout: Layout) -> Descriptor:
    base = _base_tar(tmp)
    images = []
    for arch in ("amd64", "arm64"):
        extra = files_layer(
            [LayerFile("usr/local/bin/linkerd-await", data=arch.encode() * 100, mode=0o755)],
            store,
            epoch=EPOCH,
            created_by=f"linkerd-await {arch}",
        )
        images.append(build_image(_spec(arch, (base, extra)), layout, store).descriptor)
    index = build_index(images, {"org.opencontainers.image.version": "3.13.15"}, layout)
    layout.set_refs({"3.13": index, "3.13.15": index})
    return index


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000) == "2023-11-14T22:13:20Z"


def test_image_config_and_manifest_follow_the_spec(tmp_path: Path) -> None:
    store, layout = Store(tmp_path / "cache"), Layout(tmp_path / "oci")
    base = _base_tar(tmp_path)
    built = build_image(_spec("arm64", (base,), user="10000:10000"), layout, store)
    desc = built.descriptor
    assert desc.media_type == MEDIA_MANIFEST
    assert desc.platform is not None and desc.platform.to_json() == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }
    raw = layout.read_blob(desc.digest)
    assert raw == canonical_json(json.loads(raw))
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_CONFIG
    assert [x["mediaType"] for x in manifest["layers"]] == [MEDIA_LAYER_GZIP]
    assert manifest["annotations"][LABEL_EOL] == "2029-04-30"
    assert manifest["annotations"]["org.opencontainers.image.created"] == rfc3339(EPOCH)
    config = json.loads(layout.read_blob(manifest["config"]["digest"]))
    assert config["architecture"] == "arm64"
    assert config["variant"] == "v8"
    assert config["os"] == "linux"
    assert config["created"] == rfc3339(EPOCH)
    assert config["config"]["Cmd"] == ["python3"]
    assert config["config"]["User"] == "10000:10000"
    assert config["config"]["Env"][0].startswith("PATH=/usr/local/bin:")
    assert config["config"]["Labels"] == manifest["annotations"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [base.diff_id]}
    assert config["history"] == [
        {"created": rfc3339(EPOCH), "created_by": "bink-python base test amd64"}
    ]
    assert built.compressed_size == desc.size + built.config.size + manifest["layers"][0]["size"]


def test_root_user_is_omitted_and_amd64_has_no_variant(tmp_path: Path) -> None:
    store, layout = Store(tmp_path / "cache"), Layout(tmp_path / "oci")
    built = build_image(_spec("amd64", (_base_tar(tmp_path),)), layout, store)
    manifest = layout.read_json(built.descriptor.digest)
    config = layout.read_json(manifest["config"]["digest"])
    assert "User" not in config["config"]
    assert "variant" not in config
    assert config["architecture"] == "amd64"


def test_layer_blob_is_gzip_of_the_tar_with_a_fixed_header(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    base = _base_tar(tmp_path)
    layer = compress_layer(base, store)
    data = layer.path.read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest
    assert data[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags (no file name)
    assert data[4:8] == b"\0\0\0\0"  # mtime 0
    assert "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == base.diff_id
    assert not layer.reused
    assert compress_layer(base, store).reused


def test_layers_are_compressed_once_per_diff_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    layout = Layout(tmp_path / "oci")
    base = _base_tar(tmp_path)
    first = build_image(_spec("amd64", (base,)), layout, store)
    second = build_image(_spec("arm64", (base,)), layout, store)
    assert not first.reused
    assert second.reused
    assert first.layers[0].digest == second.layers[0].digest
    assert len(store.entries("gzip-layers")) == 1


def test_same_inputs_give_the_same_digests(tmp_path: Path) -> None:
    one = _build_tag(tmp_path / "a", Store(tmp_path / "a/cache"), Layout(tmp_path / "a/oci"))
    two = _build_tag(tmp_path / "b", Store(tmp_path / "b/cache"), Layout(tmp_path / "b/oci"))
    assert one == two
    blobs_a = sorted(p.name for p in (tmp_path / "a/oci/blobs/sha256").iterdir())
    blobs_b = sorted(p.name for p in (tmp_path / "b/oci/blobs/sha256").iterdir())
    assert blobs_a == blobs_b
    assert (tmp_path / "a/oci/index.json").read_bytes() == (
        tmp_path / "b/oci/index.json"
    ).read_bytes()


def test_index_lists_both_platforms(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    index = _build_tag(tmp_path, Store(tmp_path / "cache"), layout)
    assert index.media_type == MEDIA_INDEX
    data = layout.read_json(index.digest)
    assert data["mediaType"] == MEDIA_INDEX
    assert data["schemaVersion"] == 2
    assert [m["platform"] for m in data["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert data["annotations"] == {"org.opencontainers.image.version": "3.13.15"}
    assert layout.refs() == {"3.13": index, "3.13.15": index}
    layout.check(index)


def test_failed_build_leaves_the_previous_layout_valid(tmp_path: Path) -> None:
    store, layout = Store(tmp_path / "cache"), Layout(tmp_path / "oci")
    old = _build_tag(tmp_path / "v1", store, layout)
    before = (tmp_path / "oci/index.json").read_bytes()
    new_base = _base_tar(tmp_path / "v2")
    build_image(_spec("amd64", (new_base,)), layout, store)  # first arch done...
    gone = LayerSource(tmp_path / "gone.tar", "sha256:" + "2" * 64, "runtime arm64")
    with pytest.raises(BuildError, match="missing"):  # ...second arch fails
        build_image(_spec("arm64", (new_base, gone)), layout, store)
    assert (tmp_path / "oci/index.json").read_bytes() == before
    assert layout.refs() == {"3.13": old, "3.13.15": old}
    layout.check(old)


def test_index_refuses_two_images_of_one_platform(tmp_path: Path) -> None:
    store, layout = Store(tmp_path / "cache"), Layout(tmp_path / "oci")
    built = build_image(_spec("amd64", (_base_tar(tmp_path),)), layout, store)
    with pytest.raises(BuildError, match="distinct platforms"):
        build_index([built.descriptor, built.descriptor], {}, layout)


def test_tar_changed_after_build_is_refused(tmp_path: Path) -> None:
    base = _base_tar(tmp_path)
    with open(base.tar, "ab") as handle:
        handle.write(b"\0" * 512)
    with pytest.raises(BuildError, match="not its recorded diff_id"):
        build_image(_spec("amd64", (base,)), Layout(tmp_path / "oci"), Store(tmp_path / "c"))
    assert Store(tmp_path / "c").entries("gzip-layers") == []


def test_missing_layer_tar_names_the_stage(tmp_path: Path) -> None:
    gone = LayerSource(tmp_path / "nope.tar", "sha256:" + "1" * 64, "bink-python runtime 3.13")
    with pytest.raises(BuildError, match=r"nope\.tar is missing \(bink-python runtime 3\.13\)"):
        build_image(_spec("amd64", (gone,)), Layout(tmp_path / "oci"), Store(tmp_path / "c"))


def test_bad_spec_is_refused(tmp_path: Path) -> None:
    base = _base_tar(tmp_path)
    spec = _spec("amd64", (base,))
    bad_time = ImageSpec(spec.arch, spec.layers, spec.env, spec.cmd, "", {}, "yesterday")
    with pytest.raises(BuildError, match="not an RFC 3339 time"):
        build_image(bad_time, Layout(tmp_path / "oci"), Store(tmp_path / "c"))
    bad_env = ImageSpec(spec.arch, spec.layers, ("NOVALUE",), spec.cmd, "", {}, spec.created)
    with pytest.raises(BuildError, match="must be NAME=value"):
        build_image(bad_env, Layout(tmp_path / "oci"), Store(tmp_path / "c"))


def test_files_layer_is_deterministic_with_parent_dirs(tmp_path: Path) -> None:
    src = tmp_path / "await"
    src.write_bytes(b"\x7fELF binary")
    files = [
        LayerFile("usr/local/bin/linkerd-await", source=src, mode=0o755),
        LayerFile("etc/motd", data=b"hello\n"),
    ]
    one = files_layer(files, Store(tmp_path / "a"), epoch=EPOCH, created_by="c")
    two = files_layer(files, Store(tmp_path / "b"), epoch=EPOCH, created_by="c")
    assert one.tar.read_bytes() == two.tar.read_bytes()
    assert one.diff_id == "sha256:" + hashlib.sha256(one.tar.read_bytes()).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(one.tar.read_bytes())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "etc",
            "etc/motd",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/linkerd-await",
        ]
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
            if m.isdir():
                assert m.mode == 0o755
        binary = tar.getmember("usr/local/bin/linkerd-await")
        assert binary.mode == 0o755
        assert binary.isreg()
        extracted = tar.extractfile(binary)
        assert extracted is not None and extracted.read() == b"\x7fELF binary"
        assert tar.getmember("etc/motd").mode == 0o644
    other = files_layer(files, Store(tmp_path / "a"), epoch=EPOCH + 1, created_by="c")
    assert other.diff_id != one.diff_id


@pytest.mark.parametrize("path", ["/usr/bin/x", "usr/../x", "usr//x", ""])
def test_files_layer_refuses_bad_paths(tmp_path: Path, path: str) -> None:
    with pytest.raises(BuildError, match="must be relative"):
        files_layer([LayerFile(path, data=b"x")], Store(tmp_path), epoch=EPOCH, created_by="c")
