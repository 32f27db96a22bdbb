"""Session fixtures of the verify stage: good images, and broken images derived from them.

``good_layout`` builds the offline example family (3.13 = CPython 3.13.15, regular and
distroless, amd64 and arm64, fast profile) with the real pipeline (``build_family``:
base, runtime, assemble; every stage cached in the persistent test store, so a
session after the first only assembles), with stand-in linkerd-await binaries
compiled for each arch. It is built with ``verify=False``: the tests run verify
themselves, on these images and on broken ones derived from them.

``derive_image`` makes a deliberately broken image from a good one the way an
operator would: ``buildah from`` the good manifest, change files through
``buildah mount`` and the config with ``buildah config``, ``buildah commit`` into
another OCI layout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bink_python.family.config import Family, load_family
from bink_python.host.progress import Progress
from bink_python.inputs.cache import cache_add
from bink_python.inputs.lockfile import Lock
from bink_python.oci.layout import Layout
from bink_python.oci.types import Descriptor
from bink_python.pipeline.build import build_family
from bink_python.store.store import Store
from bink_python.verify.imagerun import Buildah

from .fixtures_runtime import fast_build_options

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"
COMPILERS = {"amd64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}


@dataclass(frozen=True)
class GoodLayout:
    """An OCI layout with the example family's images, every tag and arch."""

    layout: Layout
    family: Family
    standins: dict[str, Path]  # arch -> stand-in linkerd-await binary

    def manifest(self, tag: str, arch: str) -> Descriptor:
        for child in self.layout.children(self.layout.resolve(tag)):
            if child.platform is not None and child.platform.architecture == arch:
                return child
        raise AssertionError(f"{tag} has no {arch} image")


def _build_good(
    cache_root: Path, work: Path, arches: tuple[str, ...], tags: tuple[str, ...] | None
) -> GoodLayout:
    config = work / "config"
    config.mkdir()
    for name in ("images.toml", "images.lock"):
        shutil.copyfile(EXAMPLE / name, config / name)
    standins: dict[str, Path] = {}
    for arch in arches:
        out = work / f"linkerd-await-{arch}"
        subprocess.run(
            [
                *(COMPILERS[arch], "-static", "-O2", "-o", str(out)),
                str(EXAMPLE / "linkerd-await-standin.c"),
            ],
            check=True,
        )
        standins[arch] = out
    store = Store(cache_root / "store")
    family = load_family(config / "images.toml")
    for arch, binary in standins.items():
        version = family.component("linkerd-await").version
        cache_add(
            [binary], store.root, lock_path=family.lock_path, for_=f"linkerd-await:{version}:{arch}"
        )
    family = load_family(config / "images.toml")
    options = fast_build_options(work / "oci", arches if arches != tuple(COMPILERS) else ())
    chosen = family.tags if tags is None else tuple(family.tag(t) for t in tags)
    build_family(family, chosen, Lock.load(family.lock_path), store, options, progress=Progress())
    return GoodLayout(Layout(work / "oci"), family, standins)


@pytest.fixture(scope="session")
def good_layout(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> GoodLayout:
    return _build_good(
        test_cache_root, tmp_path_factory.mktemp("verify-good"), tuple(COMPILERS), None
    )


@pytest.fixture(scope="session")
def good_amd64(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> GoodLayout:
    """The regular 3.13 image for amd64 only (what the hostile-image suite derives from:
    no arm64 runtime needed)."""
    return _build_good(
        test_cache_root, tmp_path_factory.mktemp("verify-amd64"), ("amd64",), ("3.13",)
    )


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
