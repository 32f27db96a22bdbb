"""``bink-python diff`` on small OCI images made with the real assembler (no registry)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bink_python.__main__ import main
from bink_python.base.dpkg import compare_debian_versions
from bink_python.image.diff import diff_images
from tests.support.images import BASE, make_image, stanza
from tests.support.tools import requires_tool


def test_no_change_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_image(tmp_path, "a", packages=BASE)
    new = make_image(tmp_path, "b", packages=BASE)
    assert main(["diff", old, new]) == 0
    out = capsys.readouterr().out
    assert "linux/amd64: no change" in out
    assert out.rstrip().endswith("no change")
    assert main(["diff", old, new, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_packages_python_component_config_and_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = make_image(tmp_path, "a", packages=BASE)
    changed = {**BASE, "libssl3t64": "3.5.4-1~deb13u1", "less": "668-1"}
    del changed["zlib1g"]
    new = make_image(
        tmp_path, "b", packages=changed, python="3.13.16", binary=b"\x7fELF stand-in 2"
    )
    assert main(["diff", old, new]) == 1
    text = capsys.readouterr().out
    assert "  python: 3.13.15 -> 3.13.16" in text
    assert "packages (dpkg status): 1 added, 1 removed, 1 upgraded, 0 downgraded" in text
    assert "    + less 668-1" in text
    assert "    - zlib1g 1:1.3.dfsg+really1.3.1-1+b1" in text
    assert "    ~ libssl3t64 3.5.1-1 -> 3.5.4-1~deb13u1 (upgraded)" in text
    assert "~ env PYTHON_VERSION: 3.13.15 -> 3.13.16" in text
    assert "~ label org.opencontainers.image.version: 3.13.15 -> 3.13.16" in text
    assert "~ linkerd-await /usr/local/bin/linkerd-await:" in text
    assert "layers: 2 changed, 0 unchanged" in text
    assert "0 base: sha256:" in text and "1 component linkerd-await: sha256:" in text

    assert main(["diff", old, new, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (plat,) = data["platforms"]
    assert plat["platform"] == "linux/amd64"
    assert plat["python"] == {"old": "3.13.15", "new": "3.13.16"}
    assert plat["packages"]["added"] == [{"name": "less", "version": "668-1"}]
    assert plat["packages"]["removed"] == [
        {"name": "zlib1g", "version": "1:1.3.dfsg+really1.3.1-1+b1"}
    ]
    assert plat["packages"]["upgraded"] == [
        {"name": "libssl3t64", "old": "3.5.1-1", "new": "3.5.4-1~deb13u1", "note": "upgraded"}
    ]
    assert [c["name"] for c in plat["components"]] == [
        "cpython",
        "linkerd-await /usr/local/bin/linkerd-await",
    ]
    assert {x["layer"] for x in plat["layers"]} == {"0 base", "1 component linkerd-await"}
    assert all(
        x["old"]["size"] > 0 and x["new"]["digest"].startswith("sha256:") for x in plat["layers"]
    )


def test_distroless_status_d_and_whiteouts(tmp_path: Path) -> None:
    old = make_image(tmp_path, "a", packages=BASE, distroless=True)
    # a later layer deletes one status.d record (an OCI whiteout) and adds another
    new = make_image(
        tmp_path,
        "b",
        packages=BASE,
        distroless=True,
        extra_layer={
            "var/lib/dpkg/status.d/.wh.zlib1g": b"",
            "var/lib/dpkg/status.d/less": stanza("less", "668-1").encode(),
        },
    )
    report = diff_images(old, new)
    (plat,) = report.platforms
    packages = {(c.name, c.old, c.new) for c in plat.changes if c.what == "package"}
    assert packages == {("less", None, "668-1"), ("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", None)}
    assert plat.new is not None and plat.new.config["user"] == "10000:10000"
    layers = [c.name for c in plat.changes if c.what == "layer"]
    assert layers == ["2 files"]  # base and component layers are byte-identical


def test_bad_references_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = make_image(tmp_path, "a", packages=BASE)
    assert main(["diff", old, f"oci:{tmp_path / 'a'}:3.99"]) == 2
    assert "no ref '3.99'" in capsys.readouterr().err
    assert main(["diff", old, f"oci:{tmp_path / 'nowhere'}:3.13"]) == 2
    assert "not an OCI layout" in capsys.readouterr().err


def test_debian_version_order_is_dpkgs() -> None:
    requires_tool("dpkg")
    versions = [
        "1.0",
        "1.0-1",
        "1.0~rc1-1",
        "1.0+b1",
        "1:0.9",
        "1.0-1~deb13u1",
        "1.0-1+deb13u1",
        "1.0a",
        "1.0.1",
        "2.41-12",
        "2.41-12+deb13u1",
        "3.5.1-1",
        "3.5.10-1",
        "1:1.3.dfsg+really1.3.1-1+b1",
        "1:1.3.dfsg-1",
        "0~20250101",
        "10",
        "9.9",
    ]
    # dpkg's own verdicts, one shell for every pair (i < j)
    pairs = [(a, b) for i, a in enumerate(versions) for b in versions[i + 1 :]]
    script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; ' + (
        'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done'
    )
    lines = "".join(f"{a} {b}\n" for a, b in pairs)
    out = subprocess.run(
        ["bash", "-c", script], input=lines, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(out) == len(pairs)
    for (a, b), verdict in zip(pairs, out, strict=True):
        assert compare_debian_versions(a, b) == int(verdict), (a, b, verdict)
        assert compare_debian_versions(b, a) == -int(verdict), (b, a, verdict)
