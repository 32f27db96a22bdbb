"""Size reports: ``bink-python layers``, the build summary's sizes and pull totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bink_python.__main__ import main
from bink_python.errors import BuildError
from bink_python.image.assemble import LayerSource, build_image, build_index
from bink_python.image.sizes import image_sizes
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.pipeline.summary import BuildSummary, image_row

from .test_assemble import EPOCH, _spec


def _tar(tmp: Path, name: str, files: dict[str, int]) -> LayerSource:
    tree = tmp / name
    for path, size in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(bytes(i % 251 for i in range(size)))
    tar = tmp / f"{name}.tar"
    sha, _ = tarball.write_tree_tar_file(tree, tar, epoch=EPOCH)
    return LayerSource(tar, "sha256:" + sha, f"bink-python {name} test amd64")


@pytest.fixture
def family_layout(tmp_path: Path) -> tuple[Layout, dict[str, list[object]]]:
    """Two tags (3.12, 3.13) on one base, gzip and zstd instances, amd64."""
    from bink_python.store.store import Store

    store = Store(tmp_path / "store")
    layout = Layout(tmp_path / "oci").init()
    base = _tar(
        tmp_path,
        "base",
        {"usr/lib/big.so": 300_000, "usr/lib/gconv/a.so": 50_000, "etc/os-release": 10},
    )
    built: dict[str, list[object]] = {}
    refs = {}
    for tag, size in (("3.12", 120_000), ("3.13", 140_000)):
        runtime = _tar(tmp_path, f"runtime-{tag}", {f"usr/local/lib/python{tag}/x.py": size})
        images = [
            build_image(_spec("amd64", (base, runtime)), layout, Store(store.root), comp)
            for comp in ("gzip", "zstd")
        ]
        built[tag] = list(images)
        refs[tag] = build_index([i.descriptor for i in images], {}, layout)
    layout.set_refs(refs)
    return layout, built


def test_tags_on_one_base_share_the_base_layer_digest(
    family_layout: tuple[Layout, dict[str, list[object]]],
) -> None:
    layout, built = family_layout
    rows = [
        image_row(tag, "amd64", image, ())  # type: ignore[arg-type]
        for tag, images in built.items()
        for image in images
    ]
    for comp in ("gzip", "zstd"):
        mine = [r for r in rows if r.compression == comp]
        assert mine[0].layers[0].digest == mine[1].layers[0].digest  # the base
        assert mine[0].layers[1].digest != mine[1].layers[1].digest  # the runtimes
    summary = BuildSummary(layout.path, tuple(rows), {})
    totals = {t.compression: t for t in summary.pull_totals()}
    for comp, total in totals.items():
        mine = [r for r in rows if r.compression == comp]
        base = mine[0].layers[0].compressed_size
        assert total.images == 2
        assert total.bytes_separately == sum(r.compressed_size for r in mine)
        assert total.bytes == total.bytes_separately - base  # the base is pulled once
    text = summary.table()
    assert "pull all 2 amd64 gzip images on one node" in text
    assert "  base" in text and "  runtime-3.13" in text
    data = summary.to_json()
    assert data["pull_totals"][0]["bytes"] == totals["gzip"].bytes  # type: ignore[index]
    image = data["images"][0]  # type: ignore[index]
    assert image["uncompressed_size"] > image["compressed_size"] > 0
    assert [x["what"] for x in image["layers"]] == ["base", "runtime-3.12"]


def test_layers_lists_the_biggest_paths_of_each_layer(
    family_layout: tuple[Layout, dict[str, list[object]]],
) -> None:
    layout, _ = family_layout
    gz = image_sizes(layout, "3.13", "amd64", top=2)
    zst = image_sizes(layout, "3.13", "amd64", "zstd", top=2)
    assert (gz.compression, zst.compression) == ("gzip", "zstd")
    assert [x.unpacked_size for x in gz.layers] == [x.unpacked_size for x in zst.layers]
    base = gz.layers[0]
    assert base.files == ((300_000, "usr/lib/big.so"), (50_000, "usr/lib/gconv/a.so"))
    assert base.dirs[0] == (350_000, "usr")
    assert base.unpacked_size == Path(layout.path.parent / "base.tar").stat().st_size
    assert base.what == "bink-python base test amd64"
    assert zst.compressed_size != gz.compressed_size
    with pytest.raises(BuildError, match="has no linux/arm64/v8 image"):
        image_sizes(layout, "3.13", "arm64")


def test_layers_command(
    family_layout: tuple[Layout, dict[str, list[object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = family_layout
    argv = ["layers", "3.12", "--arch", "amd64", "--layout", str(layout.path), "--top", "1"]
    assert main([*argv, "--compression", "zstd", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compression"] == "zstd"
    assert data["layers"][0]["files"] == [{"size": 300_000, "path": "usr/lib/big.so"}]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "layer 1/2" in text and "/usr/lib/big.so" in text and "(gzip)" in text
    assert main(["layers", "nope", "--arch", "amd64", "--layout", str(layout.path)]) != 0
