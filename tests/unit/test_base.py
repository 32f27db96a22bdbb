"""Unit tests of the base stage's pure parts: keys, dpkg status, closure, slimming, mirrors."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bink_python.base import base, distroless
from bink_python.base.distroless import distroless_closure
from bink_python.base.dpkg import package_records, parse_status
from bink_python.base.spec import BaseSpec
from bink_python.errors import BuildError, ToolError
from bink_python.host import apt, mirrors
from bink_python.host.apt import (
    ArchiveSource,
    archive_sources,
    mirror_state,
)
from bink_python.host.distro import get_distro
from bink_python.settings import Mirrors, Settings
from bink_python.store.store import Store, cache_key
from tests.support.family_toml import TEST_USER

DEBIAN13 = get_distro("debian", "13")

STATUS = """\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 13.8+deb13u1
Pre-Depends: awk
Description: Debian base system miscellaneous files

Package: mawk
Status: install ok installed
Architecture: amd64
Version: 1.3.4.20250131-1
Provides: awk
Pre-Depends: libc6 (>= 2.38)
Description: Pattern scanning and text processing language

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.41-12
Depends: libgcc-s1
Recommends: libidn2-0 (>= 2.0.5~)
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-14 (14.2.0-19)
Version: 14.2.0-19
Depends: gcc-14-base (= 14.2.0-19), libc6 (>= 2.35)
Description: GCC support library

Package: gcc-14-base
Status: install ok installed
Architecture: amd64
Source: gcc-14
Version: 14.2.0-19
Description: GCC, the GNU Compiler Collection (base package)

Package: libidn2-0
Status: install ok installed
Architecture: amd64
Version: 2.3.8-2
Depends: libc6 (>= 2.14)
Description: Internationalized domain names (IDNA2008/TR46) library

Package: ca-certificates
Status: install ok installed
Architecture: all
Version: 20250419
Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0
Description: Common CA certificates

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.5.1-1
Depends: libc6 (>= 2.34), libssl3t64 (>= 3.5.0)
Description: Secure Sockets Layer toolkit - cryptographic utility

Package: libssl3t64
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.5.1-1
Depends: libc6 (>= 2.38), openssl-provider-legacy
Description: Secure Sockets Layer toolkit - shared libraries

Package: openssl-provider-legacy
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.5.1-1
Depends: libssl3t64 (= 3.5.1-1)
Description: legacy provider

Package: debconf
Status: install ok installed
Architecture: all
Version: 1.5.91
Depends: perl-base (>= 5.20.1-3~)
Provides: debconf-2.0
Description: Debian configuration management system

Package: perl-base
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.40.1-6
Description: minimal Perl system

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.2.37-2
Description: GNU Bourne Again SHell

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: only its configuration files are left
"""


def test_parse_status_keeps_installed_packages_with_raw_stanzas() -> None:
    status = parse_status(STATUS)
    assert "removed-thing" not in status
    assert "bash" in status
    stanza = status["libc6"]["_stanza"]
    assert stanza.startswith("Package: libc6\n")
    assert " the system.\n" in stanza  # continuation lines kept
    assert status["libc6"]["Depends"] == "libgcc-s1"


def test_package_records_name_version_arch_and_source() -> None:
    records = {r["name"]: r for r in package_records(parse_status(STATUS))}
    assert records["libc6"] == {
        "name": "libc6",
        "version": "2.41-12",
        "architecture": "amd64",
        "source": "glibc",
    }
    assert records["libgcc-s1"]["source"] == "gcc-14"  # "(version)" dropped
    assert records["bash"]["source"] == "bash"  # no Source field: the package itself
    assert [r["name"] for r in package_records(parse_status(STATUS))] == sorted(records)


def test_distroless_closure_drops_shells_interpreters_and_debconf() -> None:
    kept = distroless_closure(parse_status(STATUS), ("base-files", "libc6", "ca-certificates"))
    assert kept == [
        "base-files",
        "ca-certificates",
        "gcc-14-base",
        "libc6",
        "libgcc-s1",
        "libssl3t64",
        "openssl",
        "openssl-provider-legacy",
    ]
    # awk (mawk), debconf/perl-base and Recommends (libidn2-0) are not followed
    assert not {"mawk", "debconf", "perl-base", "bash", "libidn2-0"} & set(kept)


def test_distroless_closure_requires_roots_to_be_installed() -> None:
    with pytest.raises(BuildError, match="libfoo1 are not installed"):
        distroless_closure(parse_status(STATUS), ("libc6", "libfoo1"))


def _spec(**kw: object) -> BaseSpec:
    args: dict[str, object] = {
        "distro": DEBIAN13,
        "arch": "amd64",
        "variant": "regular",
        "user": TEST_USER,
    }
    args.update(kw)
    return BaseSpec(**args)  # type: ignore[arg-type]


def _key(spec: BaseSpec, *, mirror_state: dict[str, str], epoch: int) -> str:
    """The store key build_base gives ``spec`` (its image apt sources left empty)."""
    return cache_key(base.key_parts(spec, mirror_state=mirror_state, epoch=epoch))


def test_base_key_changes_with_every_input() -> None:
    state = {"trixie": "a" * 64, "trixie-security": "b" * 64}
    key = _key(_spec(), mirror_state=state, epoch=1)
    assert key == _key(_spec(), mirror_state=dict(reversed(state.items())), epoch=1)
    others = {
        _key(_spec(arch="arm64"), mirror_state=state, epoch=1),
        _key(_spec(variant="distroless"), mirror_state=state, epoch=1),
        _key(_spec(extra_packages=("less",)), mirror_state=state, epoch=1),
        _key(_spec(), mirror_state={**state, "trixie": "c" * 64}, epoch=1),
        _key(_spec(), mirror_state=state, epoch=2),
        _key(_spec(distro=get_distro("debian", "12")), mirror_state=state, epoch=1),
    }
    assert key not in others
    assert len(others) == 6


def test_spec_packages_are_runtime_packages_plus_extras() -> None:
    spec = _spec(extra_packages=("less", "zlib1g"))
    assert spec.packages == tuple(sorted({*DEBIAN13.runtime_packages, "less"}))
    assert {"ca-certificates", "tzdata", "netbase"} <= set(spec.packages)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"arch": "riscv64"}, "unknown base arch 'riscv64'"),
        ({"variant": "slim"}, "unknown base variant 'slim'"),
        ({"extra_packages": ("Bad Name",)}, "invalid extra package name"),
    ],
)
def test_spec_validation(kw: dict[str, object], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        _spec(**kw).validate()


def _mirrors(**environ: str) -> Mirrors:
    """The mirror settings of a run in ``environ`` (and no --mirror)."""
    return Settings.resolve(environ=environ).mirrors


def test_debian_sources_are_release_updates_and_security() -> None:
    given = _mirrors(
        BINK_PYTHON_DEBIAN_MIRROR="http://127.0.0.1:9/debian",
        BINK_PYTHON_DEBIAN_SECURITY_MIRROR="http://127.0.0.1:9/sec",
    )
    assert archive_sources(DEBIAN13, "arm64", given) == [
        ArchiveSource("http://127.0.0.1:9/debian", "trixie"),
        ArchiveSource("http://127.0.0.1:9/debian", "trixie-updates"),
        ArchiveSource("http://127.0.0.1:9/sec", "trixie-security"),
    ]


def test_image_sources_are_the_configured_archive_not_the_build_mirror(tmp_path: Path) -> None:
    """Regular images name the image archive (a setting of their own) for
    the release, updates and security suites; the build mirror never leaks in."""
    machine = {
        "BINK_PYTHON_DEBIAN_MIRROR": "http://127.0.0.1:9/proxy/debian",
        "BINK_PYTHON_DEBIAN_SECURITY_MIRROR": "http://127.0.0.1:9/proxy/sec",
    }
    build = archive_sources(DEBIAN13, "arm64", _mirrors(**machine))
    same, unset = apt.image_sources(DEBIAN13, "arm64", build, _mirrors(**machine))
    assert same == build  # unset: the build mirror, and the caller is told which settings
    assert unset == ("BINK_PYTHON_IMAGE_DEBIAN_ARCHIVE", "BINK_PYTHON_IMAGE_DEBIAN_SECURITY")
    images = _mirrors(
        **machine,
        BINK_PYTHON_IMAGE_DEBIAN_ARCHIVE="http://archive.invalid/debian/",
        BINK_PYTHON_IMAGE_DEBIAN_SECURITY="http://security.invalid/debian-security",
    )
    image, unset = apt.image_sources(DEBIAN13, "arm64", build, images)
    assert unset == ()
    assert apt.sources_list(DEBIAN13, image) == (
        "deb http://archive.invalid/debian trixie main\n"
        "deb http://archive.invalid/debian trixie-updates main\n"
        "deb http://security.invalid/debian-security trixie-security main\n"
    )
    # written into the tree, replacing what mmdebstrap wrote from the build mirror
    tree = tmp_path / "tree"
    (tree / "etc/apt/sources.list.d").mkdir(parents=True)
    (tree / "etc/apt/sources.list").write_text("deb http://127.0.0.1:9/proxy/debian trixie main\n")
    (tree / "etc/apt/sources.list.d/extra.list").write_text("deb http://127.0.0.1:9/x y z\n")
    base._write_apt_sources(tree, apt.sources_list(DEBIAN13, image))
    assert "proxy" not in (tree / "etc/apt/sources.list").read_text()
    assert not list((tree / "etc/apt/sources.list.d").iterdir())
    # the list is part of the base's key: another image archive, another base
    state = {"trixie": "0" * 64}
    keys = {
        cache_key(base.key_parts(_spec(), mirror_state=state, epoch=1, apt_sources=t))
        for t in ("", apt.sources_list(DEBIAN13, build), apt.sources_list(DEBIAN13, image))
    }
    assert len(keys) == 3
    # Ubuntu: amd64 from the archive (+ its security host), arm64 all from ports
    jammy = get_distro("ubuntu", "22.04")
    assert mirrors.image_archive_variable("ubuntu", "arm64", security=True) == (
        "BINK_PYTHON_IMAGE_UBUNTU_PORTS"
    )
    assert mirrors.image_archive_variable("ubuntu", "amd64", security=True) == (
        "BINK_PYTHON_IMAGE_UBUNTU_SECURITY"
    )
    bad = _mirrors(BINK_PYTHON_IMAGE_UBUNTU_PORTS="not a url")
    with pytest.raises(ToolError, match="BINK_PYTHON_IMAGE_UBUNTU_PORTS='not a url' is not a URL"):
        apt.image_sources(jammy, "arm64", [ArchiveSource("http://127.0.0.1:9/p", "jammy")], bad)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[str]:
    """A local HTTP archive on 127.0.0.1 serving dists/<suite>/InRelease."""
    for suite in ("trixie", "trixie-updates"):
        (tmp_path / "dists" / suite).mkdir(parents=True)
        (tmp_path / "dists" / suite / "InRelease").write_text(f"Suite: {suite}\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_mirror_state_hashes_inrelease_per_suite(archive: str) -> None:
    state = mirror_state(
        [ArchiveSource(archive, "trixie"), ArchiveSource(archive, "trixie-updates")]
    )
    assert state == {
        "trixie": hashlib.sha256(b"Suite: trixie\n").hexdigest(),
        "trixie-updates": hashlib.sha256(b"Suite: trixie-updates\n").hexdigest(),
    }


def test_mirror_state_missing_suite_is_a_one_line_error(archive: str) -> None:
    with pytest.raises(BuildError, match=r"archive unreachable: cannot fetch .*bookworm") as err:
        mirror_state([ArchiveSource(archive, "bookworm")])
    assert "\n" not in str(err.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ubuntu_unreachable_archive_fails_before_mmdebstrap(tmp_path: Path) -> None:
    given = _mirrors(BINK_PYTHON_UBUNTU_MIRROR=f"http://127.0.0.1:{_closed_port()}/ubuntu")
    spec = BaseSpec(get_distro("ubuntu", "22.04"), "amd64", "regular", TEST_USER)
    with pytest.raises(BuildError, match=r"archive unreachable: cannot fetch .*/dists/jammy/InRel"):
        base.build_base(spec, Store(tmp_path), epoch=1, mirrors=given)
    assert not Store(tmp_path).entries("bases")


def test_ubuntu_without_mirror_names_the_setting() -> None:
    jammy = get_distro("ubuntu", "22.04")
    with pytest.raises(ToolError, match="BINK_PYTHON_UBUNTU_PORTS_MIRROR"):
        archive_sources(jammy, "arm64", Mirrors())
    if not any("ubuntu" in s.uri for s in mirrors.apt_sources()):
        with pytest.raises(ToolError, match="no Ubuntu archive mirror configured"):
            archive_sources(jammy, "amd64", Mirrors())


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_slim_tree_keeps_only_copyrights_and_normalizes_state(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "usr/share/doc/libc6/copyright": "c",
            "usr/share/doc/libc6/changelog.Debian.gz": "x",
            "usr/share/doc/empty/README": "x",
            "usr/share/man/man1/ls.1.gz": "x",
            "usr/share/info/dir": "x",
            "usr/share/locale/de/LC_MESSAGES/x.mo": "x",
            "var/lib/apt/lists/lock": "",
            "var/lib/apt/lists/host_dists_trixie_InRelease": "x",
            "var/cache/apt/pkgcache.bin": "x",
            "var/log/apt/history.log": "x",
            "var/lib/dpkg/status-old": "x",
            "var/cache/debconf/config.dat-old": "x",
            "etc/passwd-": "x",
            "etc/hostname": "buildhost",
            "etc/resolv.conf": "nameserver 1.1.1.1",
            "etc/shadow": "root:*:20000:0:99999:7:::\napps:!:20001:0:99999:7:::\nx:*::0:::::\n",
        },
    )
    os.symlink("libc6", tmp_path / "usr/share/doc/libc-bin")
    (tmp_path / "etc/shadow").chmod(0o640)
    base._slim_tree(tmp_path, epoch=86400 * 19000 + 5)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
    assert left == [
        "etc/machine-id",
        "etc/shadow",
        "usr/share/doc/libc6/copyright",
        "var/lib/apt/lists/lock",
        "var/log/apt/history.log",
    ]
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert (tmp_path / "var/log/apt/history.log").read_text() == ""
    assert (tmp_path / "etc/shadow").read_text() == (
        "root:*:19000:0:99999:7:::\napps:!:19000:0:99999:7:::\nx:*::0:::::\n"
    )
    assert (tmp_path / "etc/shadow").stat().st_mode & 0o777 == 0o640
    assert not (tmp_path / "usr/share/doc/empty").exists()
    assert (tmp_path / "usr/share/man").is_dir()


def test_canonical_resolves_merged_usr_parents(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    os.symlink("usr/lib", tmp_path / "lib")
    os.symlink("../lib/x86_64-linux-gnu", tmp_path / "usr/lib64")
    assert distroless._canonical(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6") == (
        "usr/lib/x86_64-linux-gnu/libc.so.6"
    )
    assert distroless._canonical(tmp_path, "/usr/lib64/ld.so") == "usr/lib/x86_64-linux-gnu/ld.so"
    assert distroless._canonical(tmp_path, "/lib") == "lib"  # the last component stays a link
    assert distroless._canonical(tmp_path, "/.") == ""
