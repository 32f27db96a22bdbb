"""Small OCI images of the family's shape (a base layer with a dpkg status, a component
layer), made with the real assembler from an image description (the test family's),
for the diff, exit-code and bad-input tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bink_python.family.config import load_family
from bink_python.host.distro import get_distro
from bink_python.image.assemble import ImageSpec, LayerFile, build_image, build_index, files_layer
from bink_python.image.description import ImageDescription, describe_image
from bink_python.oci.layout import Layout
from bink_python.settings import Mirrors
from bink_python.store.store import Store

from .family_toml import TAG_3_13_DISTROLESS, TEST_USER, images_toml, write_images_toml
from .runtimes import TEST_EPOCH


def stanza(name: str, version: str, arch: str = "amd64") -> str:
    return (
        f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\n"
        f"Version: {version}\nDescription: {name}\n multi-line\n"
    )


def describe(tmp: Path, *, python: str = "3.13.15", distroless: bool = False) -> ImageDescription:
    """The test family's amd64 image of tag 3.13 (or 3.13-distroless) at CPython ``python``."""
    config = tmp / "family"
    config.mkdir(parents=True, exist_ok=True)
    family = load_family(write_images_toml(config, images_toml(TAG_3_13_DISTROLESS)))
    tag = family.tag("3.13-distroless" if distroless else "3.13")
    return replace(describe_image(family, tag, "amd64", mirrors=Mirrors()), version=python)


def make_image(
    tmp: Path,
    name: str,
    *,
    packages: dict[str, str],
    python: str = "3.13.15",
    binary: bytes = b"\x7fELF stand-in 1",
    distroless: bool = False,
    extra_layer: dict[str, bytes] | None = None,
) -> str:
    """An image of the family's shape (base with dpkg status, component), as oci:DIR:3.13,
    its config and labels those of its description (:func:`describe`)."""
    expect = describe(tmp, python=python, distroless=distroless)
    store = Store(tmp / "store")
    if expect.distroless:
        files = [
            LayerFile(f"var/lib/dpkg/status.d/{p}", data=stanza(p, v).encode())
            for p, v in packages.items()
        ]
    else:
        text = "\n".join(stanza(p, v) for p, v in packages.items())
        files = [LayerFile("var/lib/dpkg/status", data=text.encode())]
    base = files_layer(
        [*files, LayerFile("etc/os-release", data=b"ID=debian\n")],
        store,
        epoch=TEST_EPOCH,
        created_by=f"bink-python base {expect.variant} {expect.arch} (key x)",
    )
    comp = files_layer(
        [LayerFile("usr/local/bin/linkerd-await", data=binary, mode=0o755)],
        store,
        epoch=TEST_EPOCH,
        created_by=f"bink-python component linkerd-await 0.3.3 {expect.arch}",
    )
    layers = [base, comp]
    if extra_layer is not None:
        layers.append(
            files_layer(
                [LayerFile(p, data=d) for p, d in extra_layer.items()],
                store,
                epoch=TEST_EPOCH,
                created_by="bink-python files",
            )
        )
    layout = Layout(tmp / name).init()
    image = build_image(
        ImageSpec(
            arch=expect.arch,
            layers=tuple(layers),
            env=expect.env,
            cmd=expect.cmd,
            user=expect.default_user,
            labels=expect.labels(epoch=TEST_EPOCH, revision="test"),
        ),
        layout,
        store,
    )
    index = build_index([image.descriptor], {}, layout)
    layout.set_refs({"3.13": index})
    return f"oci:{layout.path}:3.13"


BASE = {"libc6": "2.41-12", "libssl3t64": "3.5.1-1", "zlib1g": "1:1.3.dfsg+really1.3.1-1+b1"}


def synthetic_labels(
    arch: str, *, version: str, summary: str, vendor: str, epoch: int, revision: str
) -> dict[str, str]:
    """The labels of a hand-made description of tag 3.13 on Debian 13 (no images.toml
    behind it), for images assembled from synthetic layers."""
    return ImageDescription(
        tag="3.13",
        version=version,
        arch=arch,
        variant="regular",
        distro=get_distro("debian", "13"),
        user=TEST_USER,
        eol="2029-04-30",
        status="supported",
        components=(),
        title="python",
        summary=summary,
        source="https://example.invalid/src",
        licenses="MIT",
        vendor=vendor,
        mirrors=Mirrors(),
    ).labels(epoch=epoch, revision=revision)
