"""``bink-python diff`` on real builds of the offline example's family (amd64, fast profile)
that differ by one base package and by a CPython patch version, read from OCI layouts and
from a real registry on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bink_python.__main__ import main
from tests.support.images import BASE, make_image
from tests.support.registry import LocalRegistry

from .fixtures_diff import EXTRA_PACKAGE, OTHER_VERSION, DiffBuilds

TAGS = ("3.13", "3.13-distroless")


def run_diff(capsys: pytest.CaptureFixture[str], *argv: str, code: int) -> dict[str, Any]:
    assert main(["diff", *argv, "--json"]) == code, capsys.readouterr().err
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def only_platform(data: dict[str, Any]) -> dict[str, Any]:
    (plat,) = data["platforms"]
    assert plat["platform"] == "linux/amd64"
    assert isinstance(plat, dict)
    return plat


def layer_roles(plat: dict[str, Any]) -> list[str]:
    return [x["layer"].split(" ", 1)[1] for x in plat["layers"]]


@pytest.mark.parametrize("tag", TAGS)
def test_a_base_package_added(
    diff_builds: DiffBuilds, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    old, new = f"oci:{diff_builds.old.path}:{tag}", f"oci:{diff_builds.package.path}:{tag}"
    plat = only_platform(run_diff(capsys, old, new, code=1))
    added = {p["name"] for p in plat["packages"]["added"]}
    assert EXTRA_PACKAGE in added
    assert plat["packages"]["removed"] == []
    assert plat["packages"]["upgraded"] == plat["packages"]["downgraded"] == []
    assert plat["packages_from"] == {"old": "sbom", "new": "sbom"}
    assert plat["python"] == {"old": "3.13.15", "new": "3.13.15"}
    # a base security rebuild: only the base layer changed, the runtime was reused
    assert layer_roles(plat) == ["base"]
    assert plat["components"] == plat["config"] == []

    assert main(["diff", old, new]) == 1
    text = capsys.readouterr().out
    assert f"    + {EXTRA_PACKAGE} " in text
    # runtime and linkerd-await, and in regular images the loader cache: a package with
    # no shared library leaves /etc/ld.so.cache as it was
    unchanged = 3 if tag == "3.13" else 2
    assert f"layers: 1 changed, {unchanged} unchanged" in text


@pytest.mark.parametrize("tag", TAGS)
def test_a_cpython_patch_version(
    diff_builds: DiffBuilds, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    old, new = f"oci:{diff_builds.old.path}:{tag}", f"oci:{diff_builds.python.path}:{tag}"
    plat = only_platform(run_diff(capsys, old, new, code=1))
    assert plat["python"] == {"old": "3.13.15", "new": OTHER_VERSION}
    assert plat["packages"] == {"added": [], "removed": [], "upgraded": [], "downgraded": []}
    assert layer_roles(plat) == ["runtime"]
    components = {c["name"]: (c["old"], c["new"]) for c in plat["components"]}
    assert components["cpython"] == ("3.13.15", OTHER_VERSION)
    old_sha, new_sha = components["cpython sha256"]
    assert old_sha == "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
    assert new_sha == "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
    config = {c["name"]: (c["old"], c["new"]) for c in plat["config"]}
    assert config["env PYTHON_VERSION"] == ("3.13.15", OTHER_VERSION)
    assert config["label org.opencontainers.image.version"] == ("3.13.15", OTHER_VERSION)


def test_the_same_image_is_no_change(
    diff_builds: DiffBuilds, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"oci:{diff_builds.old.path}:3.13"
    data = run_diff(capsys, ref, ref, code=0)
    assert data["changed"] is False


def _push(layout_ref: str, registry: LocalRegistry, dest: str) -> str:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            layout_ref,
            f"docker://{registry.host}/{dest}",
        ],
        check=True,
    )
    return f"docker://{registry.host}/{dest}"


@pytest.mark.parametrize("tag", TAGS)
def test_registry_images_read_from_their_layers(
    diff_builds: DiffBuilds,
    registry: LocalRegistry,
    capsys: pytest.CaptureFixture[str],
    tag: str,
) -> None:
    old_oci = f"oci:{diff_builds.old.path}:{tag}"
    old_reg = _push(old_oci, registry, f"diff/python:{tag}")
    pkg_reg = _push(f"oci:{diff_builds.package.path}:{tag}", registry, f"diff/python-pkg:{tag}")

    # the dpkg status read from the registry image's layers is exactly the SBOM's list
    same = only_platform(run_diff(capsys, old_reg, old_oci, "--insecure", code=0))
    assert same["packages_from"] == {"old": "dpkg status", "new": "sbom"}

    # registry to registry, and registry to layout, see the same change
    for new in (pkg_reg, f"oci:{diff_builds.package.path}:{tag}"):
        plat = only_platform(
            run_diff(capsys, old_reg, new, "--insecure", "--arch", "amd64", code=1)
        )
        assert EXTRA_PACKAGE in {p["name"] for p in plat["packages"]["added"]}
        assert layer_roles(plat) == ["base"]

    py = only_platform(
        run_diff(capsys, old_reg, f"oci:{diff_builds.python.path}:{tag}", "--insecure", code=1)
    )
    assert py["python"] == {"old": "3.13.15", "new": OTHER_VERSION}
    assert py["packages"]["added"] == py["packages"]["removed"] == []


def test_an_unreachable_registry_is_a_fetch_error(
    diff_builds: DiffBuilds, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "diff",
            "docker://127.0.0.1:9/none/python:3.13",
            f"oci:{diff_builds.old.path}:3.13",
            "--insecure",
        ]
    )
    assert code == 5
    assert "skopeo copy docker://127.0.0.1:9/none/python:3.13 failed" in capsys.readouterr().err


def test_docker_transport_reads_dpkg_status_from_the_layers(
    tmp_path: Path, registry: LocalRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Small images (no compile): regular and distroless through the registry, with a
    package upgraded, added and removed, against the same images read in place."""
    for distroless in (False, True):
        name = "small-distroless" if distroless else "small"
        changed = {**BASE, "libssl3t64": "3.5.4-1~deb13u1", "less": "668-1"}
        del changed["zlib1g"]
        old = make_image(tmp_path / name, "a", packages=BASE, distroless=distroless)
        new = make_image(tmp_path / name, "b", packages=changed, distroless=distroless)
        old_reg = _push(old, registry, f"diff/{name}:old")
        new_reg = _push(new, registry, f"diff/{name}:new")
        assert only_platform(run_diff(capsys, old_reg, old, "--insecure", code=0))
        for a, b in ((old_reg, new_reg), (old, new_reg), (old_reg, new)):
            plat = only_platform(run_diff(capsys, a, b, "--insecure", code=1))
            assert plat["packages"]["added"] == [{"name": "less", "version": "668-1"}]
            assert [p["name"] for p in plat["packages"]["removed"]] == ["zlib1g"]
            assert [p["name"] for p in plat["packages"]["upgraded"]] == ["libssl3t64"]
            assert plat["old_digest"] != plat["new_digest"]
