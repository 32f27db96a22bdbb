"""verify's host-side file operations on a hostile tree: bounded reads that never block
or follow a symlink, no-follow creation, the bytecode save that copies only bytecode
from inside the root, an ld.so.conf include bomb, an ELF past the size bound."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path

import pytest

from bink_python.oci.rootfs import create_file, make_dir_in_root, read_bounded, read_text_in_root
from bink_python.runtime import elf
from bink_python.runtime.elf import ELF_MAGIC, ElfError, read_elf_file
from bink_python.verify.confine import kill_rooted_at, processes_rooted_at, symlinked_setup_paths
from bink_python.verify.loader import library_dirs
from bink_python.verify.pycache import save_pycache, seed_pycache


def _hostile(tmp_path: Path) -> tuple[Path, Path]:
    root, host = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    return root, host


def test_read_text_in_root_never_follows_onto_the_host(tmp_path: Path) -> None:
    root, host = _hostile(tmp_path)
    (root / "etc/passwd").symlink_to(host / "secret")  # absolute: inside the root, missing
    (root / "etc/group").symlink_to("../../host/secret")  # climbs: stops at the root
    assert read_text_in_root(root, "/etc/passwd") is None
    assert read_text_in_root(root, "/etc/group") is None
    (root / "etc/hosts").write_text("image\n")
    (root / "etc/hostname").symlink_to("/etc/hosts")
    assert read_text_in_root(root, "/etc/hostname") == "image\n"


def test_reads_are_bounded_and_never_block(tmp_path: Path) -> None:
    root, _ = _hostile(tmp_path)
    with open(root / "etc/passwd", "wb") as handle:
        handle.truncate(8 << 30)  # sparse: 8 GiB apparent size
    with pytest.raises(OSError, match="more than the") as caught:
        read_text_in_root(root, "/etc/passwd", limit=1 << 20)
    assert caught.value.errno == errno.EFBIG and "/etc/passwd" in str(caught.value)
    os.mkfifo(root / "etc/group")  # opening a FIFO for reading would block without a writer
    assert read_text_in_root(root, "/etc/group") is None
    (root / "etc/link").symlink_to("passwd")
    assert read_bounded(root / "etc/link", limit=10) is None  # the last component too


def test_create_file_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    root, host = _hostile(tmp_path)
    (root / "tmp/bink-verify").mkdir(parents=True)
    (root / "tmp/bink-verify/probe.whl").symlink_to(host / "secret")
    with pytest.raises(FileExistsError):
        create_file(root / "tmp/bink-verify", "probe.whl", b"wheel")
    assert (host / "secret").read_text() == "host secret\n"
    scratch = make_dir_in_root(root, "/tmp/bink-verify", mode=0o755, fresh=True)
    create_file(scratch, "probe.whl", b"wheel")
    assert (root / "tmp/bink-verify/probe.whl").read_bytes() == b"wheel"
    assert (host / "secret").read_text() == "host secret\n"


def test_save_pycache_copies_only_bytecode_from_inside_the_root(tmp_path: Path) -> None:
    root, host = _hostile(tmp_path)
    cache = root / "tmp/pyc"
    (cache / "usr/lib").mkdir(parents=True)
    (cache / "usr/lib/mod.cpython-313.pyc").write_bytes(b"pyc")
    (cache / "usr/lib/leak.pyc").symlink_to(host / "secret")
    (cache / "hostdir").symlink_to(host)
    (cache / "notes.txt").write_text("not bytecode")
    os.mkfifo(cache / "usr/lib/fifo.pyc")
    saved = tmp_path / "saved/key"
    save_pycache(root, "/tmp/pyc", saved)
    found = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert found == ["usr/lib/mod.cpython-313.pyc"]
    assert not any(p.is_symlink() for p in saved.rglob("*"))


def test_save_pycache_finds_the_directory_again_inside_the_root(tmp_path: Path) -> None:
    """The image's programs ran since the directory was made: /tmp may now be a link."""
    root, host = _hostile(tmp_path)
    (host / "pyc").mkdir()
    (host / "pyc/host.pyc").write_bytes(b"host bytecode")
    (root / "tmp").symlink_to(host)  # on the host, root/tmp/pyc would be host/pyc
    saved = tmp_path / "saved/key"
    save_pycache(root, "/tmp/pyc", saved)
    assert not saved.exists()


def test_seed_pycache_gives_the_copies_to_the_probe_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    root, _ = _hostile(tmp_path)
    saved = tmp_path / "saved"
    (saved / "usr").mkdir(parents=True)
    (saved / "usr/a.pyc").write_bytes(b"pyc")
    target = make_dir_in_root(root, "/tmp/pyc", mode=0o1777, fresh=True)
    seed_pycache(saved, target, owner=(10000, 10000))
    assert (target / "usr/a.pyc").stat().st_uid == 10000
    assert (target / "usr").stat().st_gid == 10000
    assert target.stat().st_mode & 0o7777 == 0o1777


def test_ld_so_conf_include_bomb_ends(tmp_path: Path) -> None:
    root, _ = _hostile(tmp_path)
    (root / "etc/ld.so.cache").write_bytes(b"")
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    confd = root / "etc/ld.so.conf.d"
    confd.mkdir()
    for i in range(12):  # 12**8 reads if each inclusion were read again
        (confd / f"b{i}.conf").write_text(f"/opt/lib{i}\ninclude /etc/ld.so.conf.d/*.conf\n")
    os.mkfifo(confd / "fifo.conf")
    dirs = library_dirs(root, "x86_64-linux-gnu")
    opt = [d for d in dirs if d.startswith("/opt/")]
    assert sorted(opt) == sorted(f"/opt/lib{i}" for i in range(12))  # each once


def test_read_elf_refuses_a_huge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = tmp_path / "huge.so"
    with open(huge, "wb") as handle:
        handle.write(ELF_MAGIC)
        handle.truncate(8 << 30)  # sparse
    with pytest.raises(ElfError, match="larger than"):
        read_elf_file(huge)
    monkeypatch.setattr(elf, "MAX_ELF_BYTES", 2)
    with pytest.raises(ElfError, match="larger than"):
        read_elf_file(Path("/bin/true").resolve())


def _chrooted_sleeper(root: Path | None) -> int:
    pid = os.fork()
    if pid == 0:  # the child: detached (new session), inside ``root``, sleeping
        try:
            os.setsid()
            if root is not None:
                os.chroot(root)
            time.sleep(60)
        finally:
            os._exit(0)
    return pid


def test_kill_rooted_at_ends_what_an_image_left_running(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chroot")
    inside, other = _chrooted_sleeper(tmp_path), _chrooted_sleeper(None)
    try:
        deadline = time.monotonic() + 10
        while inside not in processes_rooted_at(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_rooted_at(tmp_path) == [inside]
        assert kill_rooted_at(tmp_path) == 1
        assert os.waitpid(inside, 0)[1] & 0x7F == signal.SIGKILL
        assert processes_rooted_at(tmp_path) == []
        assert os.waitpid(other, os.WNOHANG) == (0, 0)  # a process elsewhere is left alone
    finally:
        for pid in (inside, other):
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def test_symlinked_setup_paths_names_what_buildah_would_follow(tmp_path: Path) -> None:
    root, host = _hostile(tmp_path)
    for name in ("dev", "proc", "sys", "run"):
        (root / name).mkdir()
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    assert symlinked_setup_paths(root) == []
    (root / "etc/resolv.conf").symlink_to("../run/resolv.conf")  # even a relative one
    (root / "run/.containerenv").symlink_to(host / "secret")
    assert symlinked_setup_paths(root) == [
        "/etc/resolv.conf -> ../run/resolv.conf",
        f"/run/.containerenv -> {host / 'secret'}",
    ]
    (root / "etc").rename(root / "etc.real")
    (root / "etc").symlink_to(host)
    assert f"/etc -> {host}" in symlinked_setup_paths(root)


def test_a_check_that_crashes_fails_alone_in_one_line() -> None:
    from bink_python.verify.registry import Check
    from bink_python.verify.runner import _run_check

    def crash(p: object) -> str:
        raise IndexError("list index out of range\nsecond line")

    result = _run_check(Check("crash", "doc", crash, True), None)  # type: ignore[arg-type]
    assert result.status == "fail"
    assert result.detail == "the check failed unexpectedly: IndexError: list index out of range"
