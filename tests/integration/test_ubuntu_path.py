"""The Ubuntu 22.04 path, built here for the first time, against a simulated archive.

A regular image of CPython 3.13.15 on "Ubuntu 22.04" for amd64 and arm64: base
(mmdebstrap from the ``jammy`` suites, amd64 from the archive address, arm64 from
the ports address, signatures checked against a throwaway keyring), build root
(multiarch: arm64 -dev packages from ports), runtimes (amd64 native, arm64
cross-compiled), assembly, then every verify check in both images (arm64 under
qemu). The archive (``ubuntu_archive.py``) holds Debian 12 packages: what this
proves and what only a real Ubuntu archive can is said in the README.

Everything is built in a store of its own under the test cache
(``ubuntu-sim/store``), so nothing made from the simulated archive is ever found
under the keys of a real Ubuntu build.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bink_python.oci.layout import Layout
from tests.support.cli import run_ok
from tests.support.ubuntu_archive import IMAGE_ARCHIVES, UbuntuArchive, build_ubuntu_family, serving

# a build root, two bases (arm64 under qemu) and two runtimes from the simulated archive,
# kept in the test cache's ubuntu-sim/store; on a cold run the suite's background builder
# makes them while other tests run (tests/integration/background.py)
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"


@pytest.fixture(scope="module")
def ubuntu_archive(test_cache_root: Path) -> Iterator[UbuntuArchive]:
    with serving(test_cache_root / "ubuntu-sim" / "archive") as archive:
        yield archive


@pytest.fixture(scope="module")
def ubuntu_build(
    ubuntu_archive: UbuntuArchive, test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("ubuntu")
    return out, build_ubuntu_family(ubuntu_archive, test_cache_root, out)


def test_ubuntu_image_builds_and_verifies_for_both_arches(
    ubuntu_build: tuple[Path, dict[str, str]], ubuntu_archive: UbuntuArchive
) -> None:
    """`verify`, as a user runs it, on both images (arm64 under qemu): every check."""
    out, env = ubuntu_build
    layout = Layout(out / "oci")
    index = json.loads(layout.read_blob(layout.resolve("3.13").digest))
    arches = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert arches == ["amd64", "arm64"]
    proc = run_ok(
        [
            sys.executable,
            "-m",
            "bink_python",
            "verify",
            "--config",
            str(out / "images.toml"),
            "--layout",
            str(out / "oci"),
            "--json",
        ],
        env,
    )
    report = json.loads(proc.stdout)
    assert report["ok"], proc.stdout
    assert sorted(i["arch"] for i in report["images"]) == ["amd64", "arm64"]
    for image in report["images"]:
        assert image["checks"] and all(c["ok"] for c in image["checks"]), image


def _base_keys(layout: Layout) -> dict[str, str]:
    """arch -> the key of the base each image of 3.13 was assembled from (its history)."""
    index = json.loads(layout.read_blob(layout.resolve("3.13").digest))
    keys = {}
    for entry in index["manifests"]:
        manifest = json.loads(layout.read_blob(entry["digest"]))
        config = json.loads(layout.read_blob(manifest["config"]["digest"]))
        created_by = config["history"][0]["created_by"]
        match = re.search(r"\(mmdebstrap, key (\w+)\)", created_by)
        assert match, created_by
        keys[entry["platform"]["architecture"]] = match.group(1)
    return keys


def test_ubuntu_base_came_from_the_archive_layout(
    ubuntu_build: tuple[Path, dict[str, str]], test_cache_root: Path
) -> None:
    """Each arch's base resolved the three jammy suites at its own address (amd64:
    archive, arm64: ports), and its apt sources name the image archives."""
    out, _ = ubuntu_build
    store = test_cache_root / "ubuntu-sim" / "store" / "bases"
    keys = _base_keys(Layout(out / "oci"))
    assert sorted(keys) == ["amd64", "arm64"]
    for arch, key in keys.items():
        record = json.loads((store / key / "record.json").read_text())
        assert (record["os"], record["release"], record["arch"]) == ("ubuntu", "22.04", arch)
        assert sorted(record["key_parts"]["mirror_state"]) == [
            "jammy",
            "jammy-security",
            "jammy-updates",
        ]
        with tarfile.open(store / key / "rootfs.tar") as tar:
            handle = tar.extractfile("etc/apt/sources.list")
            assert handle is not None
            lines = handle.read().decode().splitlines()
        if arch == "amd64":
            archive = IMAGE_ARCHIVES["BINK_PYTHON_IMAGE_UBUNTU_ARCHIVE"]
            security = IMAGE_ARCHIVES["BINK_PYTHON_IMAGE_UBUNTU_SECURITY"]
        else:
            archive = security = IMAGE_ARCHIVES["BINK_PYTHON_IMAGE_UBUNTU_PORTS"]
        assert lines == [
            f"deb {archive} jammy main universe",
            f"deb {archive} jammy-updates main universe",
            f"deb {security} jammy-security main universe",
        ]
