"""SBOMs of real base root filesystems (mmdebstrap, Debian 13, both arches and variants):
the packages listed are exactly those dpkg lists, and spdx-tools validates the document.
With the built example family, every image carries its SBOM as a referrer artifact."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from bink_python.host.distro import get_distro
from bink_python.image import referrer, sbom
from bink_python.image.assemble import ImageSpec, LayerSource, build_image
from bink_python.oci.layout import Layout
from bink_python.oci.types import MEDIA_INDEX, MEDIA_MANIFEST, Descriptor, sha256_digest
from bink_python.store.store import Store

from .fixtures_base import BaseFactory
from .fixtures_verify import GoodLayout

TRIXIE = get_distro("debian", "13")
CPYTHON = sbom.cpython_component(
    "3.13.15",
    "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz",
    "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76",
)
DPKG_FORMAT = "${db:Status-Status} ${Package} ${Version} ${Architecture}\n"


def _dpkg_query(admindir: Path) -> set[tuple[str, str, str]]:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", DPKG_FORMAT],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        (name, version, arch)
        for status, name, version, arch in (line.split() for line in out.splitlines())
        if status == "installed"
    }


def _admindir(rootfs: Path, dest: Path) -> Path:
    """dpkg's database of a rootfs, for dpkg-query on the host.

    Regular bases have ``var/lib/dpkg/status``; distroless ones only the
    ``status.d/<pkg>`` records, which are concatenated into a status file so that
    dpkg's own parser reads them.
    """
    admindir = dest / "dpkg"
    admindir.mkdir()
    status = b""
    records: list[bytes] = []
    with tarfile.open(rootfs) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            if name == "var/lib/dpkg/status":
                status = handle.read()
            elif name.startswith("var/lib/dpkg/status.d/") and not name.endswith(".md5sums"):
                records.append(handle.read().rstrip(b"\n") + b"\n")
    if records:
        assert not status, "a base has both status and status.d"
        status = b"\n".join(sorted(records))
    assert status, f"{rootfs} has no dpkg database"
    (admindir / "status").write_bytes(status)
    (admindir / "updates").mkdir()
    (admindir / "info").mkdir()
    return admindir


def _validate(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "image.spdx.json"
    path.write_bytes(data)
    messages = validate_full_spdx_document(parse_file(str(path)), "SPDX-2.3")
    assert [m.validation_message for m in messages] == []
    document = json.loads(data)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("variant", ["regular", "distroless"])
def test_sbom_lists_exactly_what_dpkg_lists(
    base_factory: BaseFactory, arch: str, variant: str, tmp_path: Path
) -> None:
    base = base_factory(arch, variant)
    packages = sbom.packages_from_rootfs(base.rootfs)
    expected = _dpkg_query(_admindir(base.rootfs, tmp_path))
    assert {(p.name, p.version, p.architecture) for p in packages} == expected
    # and the base's own record agrees
    assert {(p["name"], p["version"]) for p in base.record["packages"]} == {
        (p.name, p.version) for p in packages
    }
    # Debian 13 ships machine-readable copyright files for many of these
    assert sum(p.license != "NOASSERTION" for p in packages) >= len(packages) // 4

    digest = sha256_digest(f"stand-in manifest {arch} {variant}".encode())
    tag = "3.13" if variant == "regular" else "3.13-distroless"
    document = sbom.make_sbom(
        tag=tag,
        arch=arch,
        image_digest=digest,
        packages=packages,
        distro=TRIXIE,
        cpython=CPYTHON,
        created_epoch=int(base.record["epoch"]),
    )
    data = sbom.sbom_bytes(document)
    parsed = _validate(data, tmp_path)
    listed = {
        p["name"]
        for p in parsed["packages"]  # type: ignore[attr-defined]
        if p["externalRefs"][0]["referenceLocator"].startswith("pkg:deb/debian/")
    }
    assert listed == {name for name, _, _ in expected}
    assert data == sbom.sbom_bytes(
        sbom.make_sbom(
            tag=tag,
            arch=arch,
            image_digest=digest,
            packages=sbom.packages_from_rootfs(base.rootfs),
            distro=TRIXIE,
            cpython=CPYTHON,
            created_epoch=int(base.record["epoch"]),
        )
    )


def test_image_sbom_of_a_real_image_is_a_referrer_that_travels_with_copy_refs(
    base_factory: BaseFactory, base_store: Store, tmp_path: Path
) -> None:
    """Module level, without the orchestrator: a real image (the Debian 13 base as its
    layer), its SBOM attached, named and copied into another layout like ``build`` does."""
    base = base_factory("arm64", "distroless")
    staging = Layout(tmp_path / "staging").init()
    image = build_image(
        ImageSpec(
            arch="arm64",
            layers=(LayerSource(base.rootfs, "sha256:" + str(base.record["sha256"]), "base"),),
            env=("PATH=/usr/local/bin:/usr/bin",),
            cmd=("python3",),
            user="10000:10000",
        ),
        staging,
        base_store,
    )
    desc, data = sbom.image_sbom(
        staging,
        tag="3.13-distroless",
        arch="arm64",
        manifest=image.descriptor,
        base_rootfs=base.rootfs,
        distro=TRIXIE,
        cpython=CPYTHON,
        components=[],
        epoch=int(base.record["epoch"]),
        out_dir=tmp_path / "sbom",
    )
    index = staging.write_blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_INDEX,
                "manifests": [image.descriptor.to_json()],
            }
        ).encode()
    )
    refs = {
        "3.13-distroless": Descriptor(MEDIA_INDEX, index.digest, index.size),
        sbom.sbom_ref("3.13-distroless", "arm64"): desc,
    }
    staging.set_refs(refs)
    output = Layout(tmp_path / "oci")
    output.copy_refs(staging, refs)
    assert output.prune() == 0
    assert referrer.read_sbom(output, "3.13-distroless", "arm64") == data
    assert (tmp_path / "sbom" / "3.13-distroless-arm64.spdx.json").read_bytes() == data
    document = _validate(data, tmp_path)
    assert document["packages"][0]["versionInfo"] == image.descriptor.digest  # type: ignore[index]
    # the SBOM lists what dpkg lists in the image's own (gzip) base layer
    layer = output.blob_path(image.layers[0].digest)
    assert {p.name for p in sbom.packages_from_rootfs(layer)} == {
        p["name"]
        for p in document["packages"]  # type: ignore[attr-defined]
        if p["externalRefs"][0]["referenceLocator"].startswith("pkg:deb/")
    }


def test_every_built_image_has_its_sbom_as_a_referrer(
    good_layout: GoodLayout, tmp_path: Path
) -> None:
    """The build stores one SBOM per (tag, arch), its subject the image manifest."""
    layout: Layout = good_layout.layout
    images = [
        (tag.name, arch) for tag in good_layout.family.tags if tag.buildable for arch in tag.arches
    ]
    assert images
    for tag, arch in images:
        manifest = good_layout.manifest(tag, arch)
        data = referrer.read_sbom(layout, tag, arch)
        document = _validate(data, tmp_path)
        image = document["packages"][0]  # type: ignore[index]
        assert image["versionInfo"] == manifest.digest
        # the packages are those of the image's own base layer
        base_layer = layout.read_json(manifest.digest)["layers"][0]
        expected = {
            p.name for p in sbom.packages_from_rootfs(layout.blob_path(base_layer["digest"]))
        }
        debs = {
            p["name"]
            for p in document["packages"]  # type: ignore[attr-defined]
            if p["externalRefs"][0]["referenceLocator"].startswith("pkg:deb/")
        }
        assert debs == expected
        artifact = layout.refs()[sbom.sbom_ref(tag, arch)]
        body = layout.read_json(artifact.digest)
        assert (
            body["subject"] == Descriptor(MEDIA_MANIFEST, manifest.digest, manifest.size).to_json()
        )
