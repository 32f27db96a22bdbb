"""SBOM documents: dpkg status parsing, DEP-5 licenses, SPDX validity, OCI referrer artifact."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from bink_python.base.dpkg import parse_stanzas
from bink_python.errors import BuildError
from bink_python.host.distro import DISTROS
from bink_python.image import licenses, referrer, sbom
from bink_python.oci.layout import Layout
from bink_python.oci.types import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Descriptor,
    Platform,
    canonical_json,
)

TRIXIE = DISTROS[("debian", "13")]
JAMMY = DISTROS[("ubuntu", "22.04")]
CPYTHON = sbom.cpython_component(
    "3.13.15",
    "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz",
    "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76",
)
AWAIT = sbom.linkerd_await_component(
    "0.3.3",
    "https://github.com/linkerd/linkerd-await/releases/download/release%2Fv0.3.3/linkerd-await-v0.3.3-amd64",
    "ab" * 32,
)
DIGEST = "sha256:" + "0123456789abcdef" * 4

STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.41-12
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libstdc++6
Status: install ok installed
Architecture: amd64
Source: gcc-14 (14.2.0-19)
Version: 14.2.0-19

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-4+deb13u1

Package: libsqlite3-0
Status: install ok installed
Architecture: amd64
Source: sqlite3
Version: 3.46.1-7
"""

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: example
Source: https://example.invalid/

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Someone Else
License: LGPL-2.1+ or BSD-3-clause

Files: debian/*
Copyright: 2022 Debian
License: Expat

License: GPL-2+
 This program is free software ...
 .
 On Debian systems, see /usr/share/common-licenses/GPL-2.

License: Expat
 Permission is hereby granted ...
"""


def test_parse_dpkg_status_keeps_installed_and_continuations() -> None:
    stanzas = parse_stanzas(STATUS)
    assert [s["Package"] for s in stanzas] == ["libc6", "libstdc++6", "tzdata", "libsqlite3-0"]
    assert stanzas[0]["Description"].endswith("the system.")
    assert "removed-pkg" in {s["Package"] for s in parse_stanzas(STATUS, installed_only=False)}
    # a distroless status.d record without Status is an installed package
    assert parse_stanzas("Package: a\nVersion: 1\nArchitecture: all\n")[0]["Package"] == "a"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("GPL-3.0+", "GPL-3.0-or-later"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("public-domain", None),
        ("GPLv3+", None),
    ],
)
def test_spdx_license_id(name: str, expected: str | None) -> None:
    assert licenses.spdx_license_id(name) == expected


def test_dep5_license() -> None:
    assert licenses.dep5_license(DEP5) == (
        "(BSD-3-Clause OR LGPL-2.1-or-later) AND GPL-2.0-or-later AND MIT"
    )
    # free-form copyright files and unmappable names are not guessed
    assert licenses.dep5_license("This is the Debian prepackaged version of X.\n") == "NOASSERTION"
    assert licenses.dep5_license(
        DEP5.replace("License: Expat\n", "License: public-domain\n", 1)
    ) == ("NOASSERTION")
    with_exception = DEP5.replace(
        "License: GPL-2+\n", "License: GPL-2+ with OpenSSL exception\n", 1
    )
    assert licenses.dep5_license(with_exception) == "NOASSERTION"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def test_packages_from_rootfs_status_and_licenses(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        _add_bytes(tar, "./var/lib/dpkg/status", STATUS.encode())
        _add_bytes(tar, "./usr/share/doc/libc6/copyright", b"free text\n")
        _add_bytes(tar, "./usr/share/doc/libsqlite3-0/copyright", DEP5.encode())
        # a symlinked doc directory (as Debian does for binNMU'd / same-source packages)
        _add_symlink(tar, "./usr/share/doc/libstdc++6", "libsqlite3-0")
    packages = sbom.packages_from_rootfs(rootfs)
    by_name = {p.name: p for p in packages}
    assert sorted(by_name) == ["libc6", "libsqlite3-0", "libstdc++6", "tzdata"]
    assert by_name["libc6"] == sbom.DebPackage("libc6", "2.41-12", "amd64", "glibc", "NOASSERTION")
    assert by_name["libstdc++6"].source == "gcc-14"
    assert by_name["libsqlite3-0"].license.startswith("(BSD-3-Clause OR")
    assert by_name["libstdc++6"].license == by_name["libsqlite3-0"].license
    assert by_name["tzdata"].license == "NOASSERTION"


def test_packages_from_distroless_status_d(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    stanzas = STATUS.split("\n\n")
    with tarfile.open(rootfs, "w") as tar:
        for stanza in stanzas:
            name = stanza.split("\n", 1)[0].split(": ", 1)[1]
            _add_bytes(tar, f"var/lib/dpkg/status.d/{name}", (stanza.strip() + "\n").encode())
            _add_bytes(tar, f"var/lib/dpkg/status.d/{name}.md5sums", b"0000  usr/x\n")
    names = [p.name for p in sbom.packages_from_rootfs(rootfs)]
    assert names == ["libc6", "libsqlite3-0", "libstdc++6", "tzdata"]


def test_packages_from_rootfs_without_dpkg_is_an_error(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        _add_bytes(tar, "etc/hostname", b"x\n")
    with pytest.raises(BuildError, match="no dpkg status"):
        sbom.packages_from_rootfs(rootfs)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian host (dpkg-query)")
def test_packages_from_host_dpkg_database_match_dpkg_query(tmp_path: Path) -> None:
    """Real data: this Debian host's status and copyright files, compared with dpkg-query."""
    rootfs = tmp_path / "host.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add("/var/lib/dpkg/status", "var/lib/dpkg/status")
        for doc in sorted(Path("/usr/share/doc").iterdir()):
            if doc.is_symlink():
                tar.add(str(doc), f"usr/share/doc/{doc.name}")
            elif (doc / "copyright").is_file():
                tar.add(str(doc / "copyright"), f"usr/share/doc/{doc.name}/copyright")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version} ${Architecture}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {
        tuple(line.split()[1:]) for line in out.splitlines() if line.startswith("installed ")
    }
    packages = sbom.packages_from_rootfs(rootfs)
    assert {(p.name, p.version, p.architecture) for p in packages} == expected
    # some host packages have DEP-5 copyright files that map fully
    assert any(p.license != "NOASSERTION" for p in packages)
    document = _document(packages)
    _validate(document, tmp_path)


def _document(packages: Any, distro: Any = TRIXIE, arch: str = "amd64") -> dict[str, Any]:
    return sbom.make_sbom(
        tag="3.13",
        arch=arch,
        image_digest=DIGEST,
        packages=packages,
        distro=distro,
        cpython=CPYTHON,
        components=[AWAIT],
        created_epoch=1_760_000_000,
    )


def _validate(document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "doc.spdx.json"
    path.write_bytes(sbom.sbom_bytes(document))
    messages = validate_full_spdx_document(parse_file(str(path)), "SPDX-2.3")
    assert [m.validation_message for m in messages] == []


def _sample_packages() -> list[sbom.DebPackage]:
    return [
        sbom.DebPackage("libc6", "2.41-12", "amd64", "glibc", "LGPL-2.1-or-later"),
        sbom.DebPackage("libstdc++6", "14.2.0-19", "amd64", "gcc-14"),
        sbom.DebPackage(
            "perl-base", "1:5.40.1-6", "amd64", "perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"
        ),
        sbom.DebPackage("tzdata", "2025b-4+deb13u1", "all", "tzdata"),
    ]


def test_make_sbom_is_valid_spdx_and_deterministic(tmp_path: Path) -> None:
    document = _document(_sample_packages())
    _validate(document, tmp_path)
    assert sbom.sbom_bytes(document) == sbom.sbom_bytes(
        _document(list(reversed(_sample_packages())))
    )
    assert document["creationInfo"]["created"] == "2025-10-09T08:53:20Z"
    assert DIGEST.split(":")[1] in document["documentNamespace"]

    packages = {p["name"]: p for p in document["packages"]}
    image = packages["ghcr.io/binkhq/python:3.13"]
    assert image["primaryPackagePurpose"] == "CONTAINER"
    assert image["externalRefs"][0]["referenceLocator"] == (
        f"pkg:oci/python@sha256%3A{DIGEST.split(':')[1]}?arch=amd64"
        "&repository_url=ghcr.io/binkhq/python&tag=3.13"
    )
    purl = packages["perl-base"]["externalRefs"][0]["referenceLocator"]
    assert purl == "pkg:deb/debian/perl-base@1%3A5.40.1-6?arch=amd64&distro=debian-13&upstream=perl"
    assert packages["tzdata"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:deb/debian/tzdata@2025b-4%2Bdeb13u1?arch=all&distro=debian-13"
    )
    assert packages["cpython"]["checksums"] == [
        {"algorithm": "SHA256", "checksumValue": CPYTHON.sha256}
    ]
    assert packages["cpython"]["downloadLocation"] == CPYTHON.url
    assert packages["cpython"]["externalRefs"][0]["referenceLocator"].startswith(
        "pkg:generic/cpython@3.13.15?checksum=sha256:1e66a79"
    )
    assert packages["linkerd-await"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:github/linkerd/linkerd-await@v0.3.3?checksum=sha256:" + "ab" * 32
    )
    rels = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    }
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", image["SPDXID"]) in rels
    contained = {r[2] for r in rels if r[1] == "CONTAINS" and r[0] == image["SPDXID"]}
    assert contained == {p["SPDXID"] for p in document["packages"] if p is not image}


def test_make_sbom_ubuntu_purls(tmp_path: Path) -> None:
    document = _document(_sample_packages(), distro=JAMMY, arch="arm64")
    _validate(document, tmp_path)
    locators = [p["externalRefs"][0]["referenceLocator"] for p in document["packages"]]
    assert "pkg:deb/ubuntu/libc6@2.41-12?arch=amd64&distro=ubuntu-22.04&upstream=glibc" in locators


def test_make_sbom_rejects_bad_digests() -> None:
    with pytest.raises(BuildError, match="image digest"):
        sbom.make_sbom(
            tag="3.13",
            arch="amd64",
            image_digest="sha256:abc",
            packages=[],
            distro=TRIXIE,
            cpython=CPYTHON,
            created_epoch=0,
        )


# --------------------------------------------------------------------------- OCI artifact


def _image(layout: Layout, arch: str) -> Descriptor:
    layer = layout.write_blob(f"layer {arch}".encode())
    config = layout.write_blob(canonical_json({"architecture": arch, "os": "linux"}))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
    }
    blob = layout.write_blob(canonical_json(manifest))
    return Descriptor(MEDIA_MANIFEST, blob.digest, blob.size, Platform.for_arch(arch))


def test_attach_sbom_is_an_oci_referrer_kept_by_prune(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    amd64, arm64 = _image(layout, "amd64"), _image(layout, "arm64")
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [amd64.to_json(), arm64.to_json()],
    }
    blob = layout.write_blob(canonical_json(index))
    layout.set_refs({"3.13": Descriptor(MEDIA_INDEX, blob.digest, blob.size)})
    data = sbom.sbom_bytes(_document(_sample_packages()))

    desc = referrer.attach_sbom(layout, amd64, data, ref=sbom.sbom_ref("3.13", "amd64"))
    manifest = json.loads(layout.read_blob(desc.digest))
    assert manifest["artifactType"] == "application/spdx+json"
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert manifest["subject"] == {
        "mediaType": MEDIA_MANIFEST,
        "digest": amd64.digest,
        "size": amd64.size,
    }
    assert [x["mediaType"] for x in manifest["layers"]] == ["application/spdx+json"]
    assert layout.refs()["sbom/3.13/amd64"].digest == desc.digest

    layout.prune()
    assert referrer.read_sbom(layout, "3.13", "amd64") == data
    # same inputs, same artifact
    assert referrer.attach_sbom(layout, amd64, data) == desc
    with pytest.raises(BuildError, match=r"no SBOM for 3\.13 arm64"):
        referrer.read_sbom(layout, "3.13", "arm64")


def test_attach_sbom_needs_the_image_in_the_layout(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    ghost = Descriptor(MEDIA_MANIFEST, "sha256:" + "f" * 64, 10)
    with pytest.raises(BuildError, match="not in"):
        referrer.attach_sbom(layout, ghost, b"{}")


def test_write_sbom_file(tmp_path: Path) -> None:
    path = sbom.write_sbom_file(tmp_path / "sbom", "3.13-distroless", "arm64", b"{}\n")
    assert path == tmp_path / "sbom" / "3.13-distroless-arm64.spdx.json"
    assert path.read_bytes() == b"{}\n"


def test_image_sbom_writes_file_and_artifact(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    manifest = _image(layout, "arm64")
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        _add_bytes(tar, "var/lib/dpkg/status", STATUS.encode())
    desc, data = sbom.image_sbom(
        layout,
        tag="3.13",
        arch="arm64",
        manifest=manifest,
        base_rootfs=rootfs,
        distro=TRIXIE,
        cpython=CPYTHON,
        components=[sbom.component_for("linkerd-await", "0.3.3", AWAIT.url, AWAIT.sha256)],
        epoch=0,
        out_dir=tmp_path / "sbom",
    )
    assert (tmp_path / "sbom" / "3.13-arm64.spdx.json").read_bytes() == data
    assert referrer.find_sbom(layout, manifest.digest) is None  # not named yet: the caller names it
    layout.set_refs({sbom.sbom_ref("3.13", "arm64"): desc})
    assert referrer.find_sbom(layout, manifest.digest) == data
    document = json.loads(data)
    names = {p["name"] for p in document["packages"]}
    assert {"libc6", "libstdc++6", "tzdata", "libsqlite3-0", "cpython", "linkerd-await"} <= names
    assert sbom.is_sbom_ref(sbom.sbom_ref("3.13", "arm64"))
    assert not sbom.is_sbom_ref("3.13")
    assert sbom.component_for(
        "other", "1", "https://example.invalid/x", "cd" * 32
    ).package_url() == (
        "pkg:generic/other@1?checksum=sha256:"
        + "cd" * 32
        + "&download_url=https://example.invalid/x"
    )
