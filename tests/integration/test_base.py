"""Debian 13 bases built with the real mmdebstrap (arm64 through real qemu binfmt).

The four bases come from ``base_factory`` (cached across sessions); the byte-identical
check builds amd64 distroless (and so its regular base) afresh and compares it with
the cached one.
"""

from __future__ import annotations

import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from bink_python.base import BaseResult, BaseSpec, build_base
from bink_python.binfmt import BINFMT_DIR, ensure_binfmt
from bink_python.distro import get_distro
from bink_python.errors import BuildError, ToolError
from bink_python.proc import run
from bink_python.store import Store, sha256_file

from ..family_toml import TEST_USER
from .fixtures_base import BASE_TEST_EPOCH, BaseFactory

pytestmark = pytest.mark.integration

ARCHES = ("amd64", "arm64")


class Rootfs:
    """The members of a rootfs tar, by path, with file contents on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with tarfile.open(path) as tar:
            self.members = {m.name.rstrip("/"): m for m in tar.getmembers()}

    def text(self, name: str) -> str:
        with tarfile.open(self.path) as tar:
            handle = tar.extractfile(self.members[name])
            assert handle is not None, name
            return handle.read().decode()

    def files_under(self, prefix: str) -> list[str]:
        return [n for n, m in self.members.items() if n.startswith(prefix) and not m.isdir()]

    def exists(self, name: str) -> bool:
        return name in self.members


_ROOTFS: dict[Path, Rootfs] = {}


def rootfs(result: BaseResult) -> Rootfs:
    if result.rootfs not in _ROOTFS:
        _ROOTFS[result.rootfs] = Rootfs(result.rootfs)
    return _ROOTFS[result.rootfs]


def test_foreign_arch_binfmt_is_registered_with_fix_binary() -> None:
    ensure_binfmt("arm64")
    entry = (BINFMT_DIR / "qemu-aarch64").read_text()
    assert entry.startswith("enabled")
    assert "F" in entry.split("flags:", 1)[1].splitlines()[0]


@pytest.mark.parametrize("variant", ["regular", "distroless"])
@pytest.mark.parametrize("arch", ARCHES)
def test_record_matches_rootfs(base_factory: BaseFactory, arch: str, variant: str) -> None:
    result = base_factory(arch, variant)
    record = result.record
    assert result.rootfs.name == "rootfs.tar"
    assert (result.rootfs.parent / "record.json").is_file()
    assert record["sha256"] == sha256_file(result.rootfs)
    assert record["size"] == result.rootfs.stat().st_size
    assert record["key"] == result.key
    assert (record["arch"], record["variant"], record["epoch"]) == (arch, variant, BASE_TEST_EPOCH)
    assert set(record["key_parts"]["mirror_state"]) == {
        "trixie",
        "trixie-updates",
        "trixie-security",
    }
    names = {p["name"]: p for p in record["packages"]}
    assert names["libc6"]["source"] == "glibc"
    assert names["libc6"]["architecture"] == arch
    assert {"ca-certificates", "tzdata", "netbase", "libssl3t64", "libsqlite3-0"} <= set(names)


@pytest.mark.parametrize("variant", ["regular", "distroless"])
@pytest.mark.parametrize("arch", ARCHES)
def test_common_contents(base_factory: BaseFactory, arch: str, variant: str) -> None:
    fs = rootfs(base_factory(arch, variant))
    # the apps user and group, its home
    passwd = fs.text("etc/passwd").splitlines()
    group = fs.text("etc/group").splitlines()
    assert any(line.startswith("apps:x:10000:10000:") and ":/home/apps:" in line for line in passwd)
    assert "apps:x:10000:" in group
    assert any(line.startswith("root:x:0:0:") for line in passwd)
    home = fs.members["home/apps"]
    assert home.isdir() and (home.uid, home.gid) == (10000, 10000)
    # CA bundle, time zones, services
    bundle = fs.members["etc/ssl/certs/ca-certificates.crt"]
    assert bundle.isfile() and bundle.size > 100_000
    assert fs.text("etc/ssl/certs/ca-certificates.crt").startswith("-----BEGIN CERTIFICATE-----")
    assert fs.exists("usr/share/zoneinfo/Europe/London")
    assert "https\t\t443/tcp" in fs.text("etc/services")
    # slim: no docs beyond copyright files, no man/info/locale, no apt lists
    docs = fs.files_under("usr/share/doc/")
    assert docs and all(n.endswith("/copyright") for n in docs), docs[:5]
    for prefix in ("usr/share/man/", "usr/share/info/", "usr/share/locale/"):
        assert fs.files_under(prefix) == [], prefix
    assert [n for n in fs.files_under("var/lib/apt/lists/") if not n.endswith("/lock")] == []
    assert fs.files_under("var/cache/apt/") in ([], ["var/cache/apt/archives/lock"])
    # normalized tar: numeric owners only, mtimes clamped
    assert all(m.uname == "" and m.gname == "" for m in fs.members.values())
    assert max(m.mtime for m in fs.members.values()) <= BASE_TEST_EPOCH
    tmp = fs.members["tmp"]
    assert stat.S_IMODE(tmp.mode) == 0o1777
    # the right architecture's loader
    loader = (
        "usr/lib64/ld-linux-x86-64.so.2" if arch == "amd64" else "usr/lib/ld-linux-aarch64.so.1"
    )
    assert fs.exists(loader)


@pytest.mark.parametrize("arch", ARCHES)
def test_regular_base(base_factory: BaseFactory, arch: str) -> None:
    fs = rootfs(base_factory(arch, "regular"))
    shadow = fs.text("etc/shadow").splitlines()
    gshadow = fs.text("etc/gshadow").splitlines()
    apps = next(line for line in shadow if line.startswith("apps:"))
    assert apps.split(":")[1] == "!"  # locked password
    assert apps.split(":")[2] == str(BASE_TEST_EPOCH // 86400)  # last change from the epoch
    assert "apps:!::" in gshadow
    assert fs.members["etc/shadow"].gid == 42  # shadow group, as Debian's tools leave it
    passwd_apps = next(
        line for line in fs.text("etc/passwd").splitlines() if line.startswith("apps:")
    )
    assert passwd_apps.endswith(":/bin/bash")
    assert fs.exists("usr/bin/sh") and fs.exists("usr/bin/apt-get") and fs.exists("usr/bin/dpkg")
    assert "path-exclude=/usr/share/doc/*" in fs.text("etc/dpkg/dpkg.cfg.d/99mmdebstrap")
    assert fs.text("etc/machine-id") == ""
    assert not fs.exists("etc/hostname") and not fs.exists("etc/resolv.conf")
    assert all(fs.members[n].size == 0 for n in fs.files_under("var/log/"))
    assert "Package: libc6\n" in fs.text("var/lib/dpkg/status")


@pytest.mark.parametrize("arch", ARCHES)
def test_distroless_base(base_factory: BaseFactory, arch: str) -> None:
    result = base_factory(arch, "distroless")
    fs = rootfs(result)
    for tool in (
        "usr/bin/sh",
        "usr/bin/bash",
        "usr/bin/dash",
        "usr/bin/dpkg",
        "usr/bin/apt",
        "usr/bin/apt-get",
        "usr/bin/ls",
        "usr/bin/cat",
        "usr/bin/perl",
        "usr/bin/awk",
    ):
        assert not fs.exists(tool), tool
    assert fs.members["bin"].issym() and fs.members["bin"].linkname == "usr/bin"
    assert not fs.exists("var/lib/dpkg/status")  # scanners read status.d
    packages = {p["name"] for p in result.record["packages"]}
    assert {"libc6", "base-files", "ca-certificates", "tzdata", "netbase"} <= packages
    assert not {"bash", "dash", "coreutils", "dpkg", "apt", "debconf", "perl-base"} & packages
    status_d = {n.rsplit("/", 1)[1] for n in fs.files_under("var/lib/dpkg/status.d/")}
    assert {p for p in status_d if not p.endswith(".md5sums")} == packages
    stanza = fs.text("var/lib/dpkg/status.d/libc6")
    assert stanza.startswith("Package: libc6\n") and "Status: install ok installed" in stanza
    version = next(p["version"] for p in result.record["packages"] if p["name"] == "libc6")
    assert f"Version: {version}\n" in stanza
    assert fs.text("etc/passwd").splitlines() == [
        "root:x:0:0:root:/root:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "apps:x:10000:10000:apps:/home/apps:/usr/sbin/nologin",
    ]
    assert fs.text("etc/group").splitlines() == ["root:x:0:", "nobody:x:65534:", "apps:x:10000:"]
    assert fs.exists("etc/os-release") and fs.exists("usr/lib/os-release")
    assert fs.members["etc/localtime"].issym()
    regular = base_factory(arch, "regular")
    assert result.record["size"] < regular.record["size"] * 0.6


def test_unchanged_inputs_are_a_cache_hit_under_a_second(base_factory: BaseFactory) -> None:
    first = base_factory("amd64", "regular")
    store = Store(first.rootfs.parent.parent.parent)
    start = time.monotonic()
    again = build_base(
        BaseSpec(get_distro("debian", "13"), "amd64", "regular", TEST_USER),
        store,
        epoch=BASE_TEST_EPOCH,
    )
    elapsed = time.monotonic() - start
    assert again.cached and again.key == first.key and again.rootfs == first.rootfs
    assert elapsed < 1.0, f"cache hit took {elapsed:.2f}s"


def test_two_builds_are_byte_identical(base_factory: BaseFactory, tmp_path: Path) -> None:
    """A fresh build equals the cached one of the same key (built in another session).

    amd64 distroless, so both its regular base and the derivation are compared. When
    the archive moved since the cached build (new key), a second fresh build is made.
    This also catches a recipe change made without bumping RECIPE_VERSION.
    """
    spec = BaseSpec(get_distro("debian", "13"), "amd64", "distroless", TEST_USER)
    fresh = build_base(spec, Store(tmp_path / "one"), epoch=BASE_TEST_EPOCH, force=True)
    other = base_factory("amd64", "distroless")
    if other.key != fresh.key:
        other = build_base(spec, Store(tmp_path / "two"), epoch=BASE_TEST_EPOCH, force=True)
    if other.key != fresh.key:
        pytest.skip("the archive changed between the two builds (different mirror state)")
    assert other.rootfs != fresh.rootfs
    regular_fresh, regular_other = (
        r.rootfs.parent.parent / r.record["derived_from"] / "rootfs.tar" for r in (fresh, other)
    )
    assert sha256_file(regular_fresh) == sha256_file(regular_other)
    assert fresh.record["sha256"] == other.record["sha256"]
    assert fresh.rootfs.read_bytes() == other.rootfs.read_bytes()


def test_ubuntu_2204_base_builds_or_fails_with_one_clear_line(tmp_path: Path) -> None:
    """This machine has no Ubuntu archive: the build must stop with one actionable line."""
    spec = BaseSpec(get_distro("ubuntu", "22.04"), "amd64", "regular", TEST_USER)
    try:
        result = build_base(spec, Store(tmp_path), epoch=BASE_TEST_EPOCH)
    except (ToolError, BuildError) as exc:
        message = str(exc)
        assert "\n" not in message
        assert "Ubuntu" in message or "archive unreachable" in message, message
        assert not Store(tmp_path).entries("bases")
        pytest.skip(f"no Ubuntu 22.04 base on this machine: {message}")
    fs = rootfs(result)
    assert 'VERSION_ID="22.04"' in fs.text("usr/lib/os-release")
    assert any(
        line.startswith("apps:x:10000:10000:") for line in fs.text("etc/passwd").splitlines()
    )


def _unpack(result: BaseResult, dest: Path) -> Path:
    with tarfile.open(result.rootfs) as tar:
        tar.extractall(dest, numeric_owner=True, filter="fully_trusted")
    return dest


@pytest.mark.parametrize("arch", ARCHES)
def test_bases_run_their_own_binaries(base_factory: BaseFactory, arch: str, tmp_path: Path) -> None:
    """The regular base's tools see the apps user; the distroless loader works unaided.

    Distroless has no shell, so its one binary (openssl, kept as a dependency of
    ca-certificates) shows the loader finds libc and libssl without ld.so.cache and
    that the CA bundle parses. arm64 runs through the qemu binfmt entry.
    """
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    ensure_binfmt(arch)
    regular = _unpack(base_factory(arch, "regular"), tmp_path / "regular")
    out = run(["chroot", str(regular), "/bin/sh", "-c", "id apps; stat -c '%u:%g %a' ~apps"])
    assert out.stdout.splitlines() == [
        "uid=10000(apps) gid=10000(apps) groups=10000(apps)",
        "10000:10000 700",
    ]
    distroless = _unpack(base_factory(arch, "distroless"), tmp_path / "distroless")
    assert not (distroless / "etc/ld.so.cache").exists()
    version = run(["chroot", str(distroless), "/usr/bin/openssl", "version"]).stdout
    assert version.startswith("OpenSSL 3.")
    certs = run(
        [
            "chroot",
            str(distroless),
            "/usr/bin/openssl",
            "storeutl",
            "-certs",
            "/etc/ssl/certs/ca-certificates.crt",
        ]
    ).stdout
    assert certs.count("-----BEGIN CERTIFICATE-----") > 100
