"""gzip and zstd instances side by side, read by the real skopeo, buildah and registry here.

A tiny runnable image (one static binary, compiled here) is assembled with gzip and zstd
layers into one index, gzip first. Skopeo 1.9 and Buildah 1.28 (Debian 12) predate
containers/image's choice by the zstd annotation, so they must take the first instance
of their platform: gzip. Buildah must read and run the zstd instance. A push with
``skopeo copy --all --preserve-digests`` keeps the index byte for byte.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bink_python.errors import VerifyError
from bink_python.host.progress import Progress
from bink_python.image.assemble import (
    ImageSpec,
    LayerFile,
    build_image,
    build_index,
    files_layer,
    rfc3339,
)
from bink_python.image.description import describe_image
from bink_python.oci import compression, types
from bink_python.oci.layout import Layout
from bink_python.store.store import Store
from bink_python.verify import Target, verify_targets
from bink_python.verify.imagerun import Buildah, buildah_session
from tests.support.example import build_example
from tests.support.machine import machine_mirrors, machine_settings
from tests.support.registry import LocalRegistry

EPOCH = 1_767_225_600
HELLO = '#include <stdio.h>\nint main(void){puts("hello from the image");return 0;}\n'


def _skopeo(*args: str) -> str:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """A layout with ref ``both`` (gzip and zstd amd64 instances) and ``zstd`` (zstd only)."""
    tmp = tmp_path_factory.mktemp("compression")
    (tmp / "hello.c").write_text(HELLO)
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(tmp / "hello"), str(tmp / "hello.c")], check=True
    )
    store = Store(tmp / "store")
    layer = files_layer(
        [LayerFile("hello", source=tmp / "hello", mode=0o755)],
        store,
        epoch=EPOCH,
        created_by="bink-python test hello",
    )
    spec = ImageSpec(
        arch="amd64",
        layers=(layer,),
        env=("PATH=/",),
        cmd=("/hello",),
        user="",
        created=rfc3339(EPOCH),
    )
    layout = Layout(tmp / "oci").init()
    gz, zst = (build_image(spec, layout, store, c) for c in ("gzip", "zstd"))
    layout.set_refs(
        {
            "both": build_index([zst.descriptor, gz.descriptor], {}, layout),
            "zstd": build_index([zst.descriptor], {}, layout),
        }
    )
    return layout


def _layer_media_types(layout_dir: Path, ref: str) -> list[str]:
    index = json.loads((layout_dir / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == ref
    )
    manifest = json.loads(
        (layout_dir / "blobs/sha256" / entry["digest"].split(":", 1)[1]).read_text()
    )
    return [x["mediaType"] for x in manifest["layers"]]


def test_skopeo_takes_the_first_instance_gzip(both: Layout, tmp_path: Path) -> None:
    out = tmp_path / "picked"
    _skopeo("copy", "--override-arch", "amd64", f"oci:{both.path}:both", f"oci:{out}:picked")
    assert _layer_media_types(out, "picked") == [types.MEDIA_LAYER_GZIP]


def _from_ref(buildah: Buildah, layout: Path, ref: str) -> str:
    """A working container of ``ref`` in ``layout``, as ``buildah from`` picks it."""
    out = buildah.call("from", "--quiet", "--pull-always", f"oci:{layout}:{ref}", what=ref)
    return out.strip().splitlines()[-1]


def _inspect(buildah: Buildah, ctr: str) -> dict[str, object]:
    data = json.loads(buildah.call("inspect", "--type", "container", ctr, what="inspect"))
    assert isinstance(data, dict)
    return data


def test_buildah_takes_gzip_from_both_and_runs_the_zstd_image(both: Layout, tmp_path: Path) -> None:
    index = both.read_json(both.resolve("both").digest)
    gzip_manifest = index["manifests"][0]["digest"]
    with buildah_session(tmp_path / "buildah") as buildah:
        first = _from_ref(buildah, both.path, "both")
        assert _inspect(buildah, first)["FromImageDigest"] == gzip_manifest
        assert buildah.run(first, ["/hello"]).output.strip() == "hello from the image"
        ctr = _from_ref(buildah, both.path, "zstd")
        zstd_manifest = index["manifests"][1]["digest"]
        assert _inspect(buildah, ctr)["FromImageDigest"] == zstd_manifest
        result = buildah.run(ctr, ["/hello"])
        assert result.ok and result.output.strip() == "hello from the image"


def test_push_keeps_both_instances(both: Layout, registry: LocalRegistry) -> None:
    dest = f"docker://{registry.host}/compression/both:1"
    _skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{both.path}:both",
        dest,
    )
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", dest)
    assert raw.encode() == both.read_blob(both.resolve("both").digest)
    entries = json.loads(raw)["manifests"]
    assert [e.get("annotations", {}).get(compression.ANNOTATION_ZSTD) for e in entries] == [
        None,
        "true",
    ]
    # from the registry too, skopeo resolves the tag to the first (gzip) instance
    chosen = json.loads(_skopeo("inspect", "--override-arch", "amd64", "--tls-verify=false", dest))
    assert chosen["Digest"] == both.resolve("both").digest  # skopeo names the index
    gzip_layers = both.read_json(entries[0]["digest"])["layers"]
    assert chosen["Layers"] == [x["digest"] for x in gzip_layers]


def test_build_with_gzip_and_zstd_verifies_both_instances(
    test_cache_root: Path, tmp_path: Path
) -> None:
    """``compression = ["gzip", "zstd"]``: the real build (3.13-distroless amd64, stages
    cached in the test store) writes both instances, and verify passes on each: the zstd
    one is unpacked by buildah, and the distroless removals keep TLS, imports, pip working.
    """
    built = build_example(
        tmp_path,
        Store(test_cache_root / "store"),
        tags=("3.13-distroless",),
        compression=("gzip", "zstd"),
    )
    family, summary = built.family, built.summary
    tag = family.tag("3.13-distroless")
    assert [(r.tag, r.compression) for r in summary.rows] == [
        ("3.13-distroless", "gzip"),
        ("3.13-distroless", "zstd"),
    ]
    gz, zst = summary.rows
    assert zst.compressed_size < gz.compressed_size
    assert zst.uncompressed_size == gz.uncompressed_size
    layout = Layout(tmp_path / "oci")
    entries = layout.children(layout.resolve("3.13-distroless"))
    assert [e.annotations.get(compression.ANNOTATION_ZSTD) for e in entries] == [None, "true"]
    expect = describe_image(family, tag, "amd64", error=VerifyError, mirrors=machine_mirrors())
    report = verify_targets(
        layout.path,
        [Target(entry, expect) for entry in entries],
        checks=["image-config", "python-version", "stdlib-imports", "tls-trust-store", "pip"],
        workdir=tmp_path / "verify",
        progress=Progress(),
        cache_dir=machine_settings().cache_dir,
    )
    for image in report.images:
        assert not image.failed, [(c.name, c.detail) for c in image.failed]
    assert len(report.images) == 2
