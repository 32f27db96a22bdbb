"""Session fixtures of the verify stage: good images, and broken images derived from them.

``good_layout`` is the offline example family (3.13 = CPython 3.13.15, regular and
distroless, amd64 and arm64, fast profile) from ``tests/support/example.py``, built
without verify: the tests run verify themselves, on these images and on broken ones
derived from them.

``derive_image`` makes a deliberately broken image from a good one the way an
operator would: ``buildah from`` the good manifest, change files through
``buildah mount`` and the config with ``buildah config``, ``buildah commit`` into
another OCI layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from bink_python.oci.layout import Layout
from bink_python.oci.types import Descriptor
from bink_python.store.store import Store
from bink_python.verify.imagerun import Buildah
from tests.support.example import COMPILERS, ExampleBuild, build_example

#: The example's images the verify tests start from.
GoodLayout = ExampleBuild


@pytest.fixture(scope="session")
def good_layout(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> GoodLayout:
    work = tmp_path_factory.mktemp("verify-good")
    return build_example(work, Store(test_cache_root / "store"), arches=tuple(COMPILERS))


@pytest.fixture(scope="session")
def good_amd64(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> GoodLayout:
    """The regular 3.13 image for amd64 only (what the hostile-image suite derives from:
    no arm64 runtime needed)."""
    work = tmp_path_factory.mktemp("verify-amd64")
    return build_example(work, Store(test_cache_root / "store"), tags=("3.13",))


Mutation = Callable[[Path], None]

ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"


def derive_image(
    buildah: Buildah,
    source: Layout,
    manifest: Descriptor,
    dest: Path,
    ref: str,
    *,
    mutate: Mutation | None = None,
    config: Sequence[str] = (),
) -> Descriptor:
    """Commit a changed copy of ``manifest`` to ``oci:dest:ref``; returns its descriptor."""
    ctr = buildah.from_manifest(source.path, manifest, what=f"deriving {ref}")
    try:
        if mutate is not None:
            mutate(buildah.mount(ctr))
        src_manifest = source.read_json(manifest.digest)
        src_config = source.read_json(src_manifest["config"]["digest"])
        keep = ["--arch", src_config["architecture"], "--os", src_config["os"]]
        # buildah commit names the image it started from as the base; keep the image's own
        base_name = (src_manifest.get("annotations") or {}).get(ANNOTATION_BASE_NAME)
        if base_name:
            keep += ["--annotation", f"{ANNOTATION_BASE_NAME}={base_name}"]
        if src_config.get("variant"):
            keep += ["--variant", src_config["variant"]]
        buildah.config(ctr, *keep, *config)
        buildah.commit(ctr, f"oci:{dest}:{ref}")
    finally:
        buildah.rm(ctr)
    return Layout(dest).resolve(ref)


@pytest.fixture(scope="session")
def buildah_for_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    """One private buildah storage for deriving test images (removed at session end)."""
    session = Buildah(tmp_path_factory.mktemp("buildah-derive"))
    try:
        yield session
    finally:
        session.close()


def read_config(layout: Layout, manifest: Descriptor) -> dict[str, object]:
    data = layout.read_json(layout.read_json(manifest.digest)["config"]["digest"])
    assert isinstance(data, dict)
    return data


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)
