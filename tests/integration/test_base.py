"""Debian 13 bases built with the real mmdebstrap (arm64 through real qemu binfmt).

The four bases come from ``base_factory`` (cached across sessions); the byte-identical
check builds amd64 distroless (and so its regular base) afresh and compares it with
the cached one.
"""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from bink_python.base.base import (
    BaseResult,
    build_base,
)
from bink_python.base.distroless import DISTROLESS_FORBIDDEN
from bink_python.base.spec import BaseSpec
from bink_python.errors import BuildError, ToolError
from bink_python.host.apt import (
    archive_sources,
    image_sources,
    sources_list,
)
from bink_python.host.arch import ARCHES as DISTRO_ARCHES
from bink_python.host.binfmt import BINFMT_DIR, ensure_binfmt
from bink_python.host.distro import get_distro
from bink_python.host.proc import run
from bink_python.store.store import Store, sha256_file
from tests.support.family_toml import TEST_USER
from tests.support.machine import machine_mirrors
from tests.support.runtimes import TEST_EPOCH

from .fixtures_base import BaseFactory

ARCHES = ("amd64", "arm64")
ARCHES_GNU = {a: DISTRO_ARCHES[a].gnu for a in ARCHES}


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
    assert (record["arch"], record["variant"], record["epoch"]) == (arch, variant, TEST_EPOCH)
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
    assert max(m.mtime for m in fs.members.values()) <= TEST_EPOCH
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
    assert apps.split(":")[2] == str(TEST_EPOCH // 86400)  # last change from the epoch
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
    # apt sources: the image archive setting (here unset: the build mirror), all suites
    distro = get_distro("debian", "13")
    given = machine_mirrors()
    expected, _ = image_sources(distro, arch, archive_sources(distro, arch, given), given)
    assert fs.text("etc/apt/sources.list") == sources_list(distro, expected)
    suites = [line.split()[2] for line in fs.text("etc/apt/sources.list").splitlines()]
    assert suites == ["trixie", "trixie-updates", "trixie-security"]
    assert not fs.files_under("etc/apt/sources.list.d/")


@pytest.mark.parametrize("arch", ARCHES)
def test_distroless_base(base_factory: BaseFactory, arch: str) -> None:
    result = base_factory(arch, "distroless")
    fs = rootfs(result)
    for tool in DISTROLESS_FORBIDDEN:  # the build checks these too; this checks the tar
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
        epoch=TEST_EPOCH,
        mirrors=machine_mirrors(),
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
    fresh = build_base(
        spec, Store(tmp_path / "one"), epoch=TEST_EPOCH, force=True, mirrors=machine_mirrors()
    )
    other = base_factory("amd64", "distroless")
    if other.key != fresh.key:
        other = build_base(
            spec,
            Store(tmp_path / "two"),
            epoch=TEST_EPOCH,
            force=True,
            mirrors=machine_mirrors(),
        )
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
        result = build_base(spec, Store(tmp_path), epoch=TEST_EPOCH, mirrors=machine_mirrors())
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

    Distroless has no shell and (slim.REMOVALS) no openssl tool: its dynamic loader,
    run as a program, shows it finds libssl's dependencies without ld.so.cache, and
    the CA bundle parses. arm64 runs through the qemu binfmt entry.
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
    gnu = ARCHES_GNU[arch]
    loader = (
        "/usr/lib64/ld-linux-x86-64.so.2" if arch == "amd64" else "/usr/lib/ld-linux-aarch64.so.1"
    )
    listing = run(
        ["chroot", str(distroless), loader, "--list", f"/usr/lib/{gnu}/libssl.so.3"]
    ).stdout
    assert f"libcrypto.so.3 => /lib/{gnu}/libcrypto.so.3" in listing, listing
    assert "not found" not in listing, listing
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(distroless / "etc/ssl/certs/ca-certificates.crt"))
    assert context.cert_store_stats()["x509_ca"] > 100


@pytest.mark.parametrize("arch", ARCHES)
def test_removals_are_gone_and_what_users_need_stays(base_factory: BaseFactory, arch: str) -> None:
    """Every slim.REMOVALS entry is absent from the variants it names (and only there)."""
    gnu = ARCHES_GNU[arch]
    regular = rootfs(base_factory(arch, "regular"))
    distroless = rootfs(base_factory(arch, "distroless"))
    conv = f"usr/lib/{gnu}/gconv"
    # regular: the ten EBCDIC double-byte converters only; dpkg knows (path-exclude)
    assert not regular.exists(f"{conv}/IBM1390.so") and not regular.exists(f"{conv}/IBM930.so")
    for kept in ("IBM437.so", "ISO8859-2.so", "CP1252.so", "SJIS.so", "gconv-modules.cache"):
        assert regular.exists(f"{conv}/{kept}"), kept
    assert "path-exclude=/usr/lib/*/gconv/IBM1390.so" in regular.text(
        "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
    )
    assert regular.exists("usr/bin/openssl") and regular.exists("usr/bin/apt-get")
    # distroless: no converters, no openssl tool; the links Python's ssl uses stay
    assert not any(n.startswith(conv) for n in distroless.members), conv
    for gone in ("usr/bin/openssl", "usr/bin/c_rehash", "usr/lib/ssl/misc"):
        assert not distroless.exists(gone), gone
    for kept in ("usr/lib/ssl/certs", "usr/lib/ssl/cert.pem", "etc/ssl/openssl.cnf"):
        assert distroless.exists(kept), kept
    assert distroless.members["usr/lib/ssl/certs"].linkname == "/etc/ssl/certs"
    # users would miss these: they stay
    assert regular.exists("usr/lib/locale/C.utf8/LC_CTYPE")  # libc-bin: not in distroless
    for fs in (regular, distroless):
        assert fs.exists(f"usr/lib/{gnu}/libmvec.so.1")
        assert fs.exists("usr/share/zoneinfo/Europe/London")
        assert fs.exists("usr/share/doc/libc6/copyright")
    # status.d: md5sums list only files that are there; the packages are still listed
    md5 = distroless.text("var/lib/dpkg/status.d/libc6.md5sums")
    assert "gconv" not in md5 and f"usr/lib/{gnu}/libc.so.6" in md5
    for line in md5.splitlines():
        path = line.split("  ", 1)[1]
        assert distroless.exists(path) or _via_usr_merge(distroless, path), path
    assert "usr/bin/openssl" not in distroless.text("var/lib/dpkg/status.d/openssl.md5sums")
    assert "Package: openssl\n" in distroless.text("var/lib/dpkg/status.d/openssl")


def _via_usr_merge(fs: Rootfs, path: str) -> bool:
    top, _, rest = path.partition("/")
    link = fs.members.get(top)
    return link is not None and link.issym() and fs.exists(f"{link.linkname}/{rest}")


def test_iconv_converts_with_kept_converters_only(
    base_factory: BaseFactory, tmp_path: Path
) -> None:
    """In the regular base, glibc's iconv still converts Latin-2 and Shift_JIS, not IBM1390."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    regular = _unpack(base_factory("amd64", "regular"), tmp_path / "regular")
    ok = run(
        ["chroot", str(regular), "/bin/sh", "-c", "printf '\\265' | iconv -f ISO-8859-2 -t UTF-8"]
    )
    assert ok.stdout == "ľ"
    sjis = run(
        [
            "chroot",
            str(regular),
            "/bin/sh",
            "-c",
            "printf '\\202\\240' | iconv -f SHIFT_JIS -t UTF-8",
        ]
    )
    assert sjis.stdout == "あ"
    gone = subprocess.run(
        ["chroot", str(regular), "/bin/sh", "-c", "printf 'a' | iconv -f IBM1390 -t UTF-8"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert gone.returncode != 0
