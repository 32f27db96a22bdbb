"""The cache as a whole: du per kind, prune by need, age and budget, verify every kind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bink_python.__main__ import main
from bink_python.family.config import load_family
from bink_python.host.arch import host_arch
from bink_python.inputs.lockfile import Lock
from bink_python.pipeline import housekeeping
from bink_python.pipeline.housekeeping import inventory, needs, select, verify_entries
from bink_python.pipeline.plan import runtime_spec
from bink_python.pipeline.usage import parse_size
from bink_python.runtime.plan import runtime_key
from bink_python.store import store as store_mod
from bink_python.store.kinds import ENTRY_KINDS
from bink_python.store.store import sha256_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"
DAY = 86400.0


@pytest.fixture
def family_dir(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(EXAMPLE / "images.toml", config)
    shutil.copy(EXAMPLE / "images.lock", config)
    return config


def _entry(root: Path, kind: str, key: str, files: dict[str, bytes], age_days: float) -> Path:
    entry = root / kind / key
    entry.mkdir(parents=True)
    for name, data in files.items():
        (entry / name).write_bytes(data)
    stamp = time.time() - age_days * DAY
    os.utime(entry, (stamp, stamp))
    return entry


def _payload_entry(
    root: Path, kind: str, key: str, payload: str, data: bytes, age: float, **rec: object
) -> Path:
    import hashlib

    record = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **rec}
    return _entry(root, kind, key, {payload: data, "record.json": json.dumps(record).encode()}, age)


def _populate(root: Path, family_dir: Path) -> dict[str, Path]:
    family = load_family(family_dir / "images.toml")
    lock = Lock.load(family_dir / "images.lock")
    tag = family.tag("3.13")
    needed_rt = runtime_key(runtime_spec(tag, "amd64", lock, "fast"), host_arch())
    base = {"os": "debian", "release": "13", "arch": "amd64", "variant": "regular"}
    cpython = lock.entry("cpython:3.13.15").sha256
    assert cpython is not None
    paths = {
        "runtime_needed": _payload_entry(root, "runtimes", needed_rt, "runtime.tar", b"rt", 90),
        "runtime_old": _payload_entry(root, "runtimes", "a" * 32, "runtime.tar", b"old", 40),
        "base_new": _payload_entry(root, "bases", "b" * 32, "rootfs.tar", b"new", 1, **base),
        "base_older": _payload_entry(root, "bases", "c" * 32, "rootfs.tar", b"older", 3, **base),
        "log": _entry(root, "logs", "runtime-x.log", {}, 0),
        "pyc": _entry(root, "verify-pycache", "k" * 32, {"x.pyc": b"x" * 5000}, 20),
        "sha_needed": root / "sha256" / cpython,
        "sha_other": root / "sha256" / ("e" * 64),
    }
    paths["log"].rmdir()
    paths["log"].write_text("old log")
    os.utime(paths["log"], (time.time() - 10 * DAY,) * 2)
    for key in ("sha_needed", "sha_other"):
        paths[key].parent.mkdir(exist_ok=True)
        paths[key].write_bytes(b"input")
        os.utime(paths[key], (time.time() - 50 * DAY,) * 2)
    return paths


def test_prune_keeps_what_the_family_needs_and_removes_the_rest(
    tmp_path: Path, family_dir: Path
) -> None:
    root = tmp_path / "cache"
    paths = _populate(root, family_dir)
    code = main(
        ["cache", "prune", "--config", str(family_dir / "images.toml"), "--cache-dir", str(root)]
    )
    assert code == 0
    assert paths["runtime_needed"].is_dir()  # needed, however old
    assert paths["base_new"].is_dir()  # the newest base of a needed spec
    assert paths["sha_needed"].is_file()
    for gone in ("runtime_old", "base_older", "log", "pyc", "sha_other"):
        assert not paths[gone].exists(), gone


def test_prune_by_age_and_by_budget(tmp_path: Path, family_dir: Path) -> None:
    root = tmp_path / "cache"
    paths = _populate(root, family_dir)
    family = load_family(family_dir / "images.toml")
    need = needs(family, Lock.load(family_dir / "images.lock"))
    now = time.time()
    items = inventory(root, need)
    by_age = {i.path for i in select(items, older_than=30 * DAY, max_bytes=None, now=now)}
    assert by_age == {paths["runtime_old"], paths["sha_other"]}
    total = sum(i.size for i in items)
    pyc = next(i for i in items if i.path == paths["pyc"])
    # a budget just under the total: only the oldest unneeded item goes
    budget = {i.path for i in select(items, older_than=None, max_bytes=total - 1, now=now)}
    assert budget == {paths["sha_other"]}
    assert pyc.size >= 4096
    # a budget of zero removes every unneeded item, never a needed one
    everything = {i.path for i in select(items, older_than=None, max_bytes=0, now=now)}
    assert paths["runtime_needed"] not in everything
    assert paths["pyc"] in everything
    assert parse_size("1.5G") == int(1.5 * (1 << 30))
    with pytest.raises(ValueError, match="expected a size"):
        parse_size("lots")


def test_prune_never_touches_an_entry_being_built(tmp_path: Path, family_dir: Path) -> None:
    root = tmp_path / "cache"
    key = "d" * 32
    building = root / "runtimes" / f".tmp-{key}-abc"
    building.mkdir(parents=True)
    work = root / "work" / f"runtime-{key}-xyz"
    work.mkdir(parents=True)
    abandoned = root / "runtimes" / f".tmp-{'f' * 32}-zzz"
    abandoned.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; h = open(sys.argv[1], 'a+b'); "
            "fcntl.flock(h, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(root / "runtimes" / f".lock-{key}"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        argv = ["cache", "prune", "--config", str(family_dir / "images.toml")]
        assert main([*argv, "--cache-dir", str(root)]) == 0
        assert building.is_dir() and work.is_dir()  # its builder holds the lock
        assert not abandoned.exists()  # nobody holds that one: a killed build's leftovers
    finally:
        holder.kill()
        holder.wait()
    assert main([*argv, "--cache-dir", str(root)]) == 0
    assert not building.exists() and not work.exists()


def test_prune_never_removes_an_entry_a_build_is_using(tmp_path: Path, family_dir: Path) -> None:
    """A build that looked up an entry (here an older base, which the family does not
    need) holds it until it ends; a prune meanwhile leaves it, and one after removes it."""
    root = tmp_path / "cache"
    paths = _populate(root, family_dir)
    older = paths["base_older"]
    user = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from bink_python.store.store import Store; "
            "store = Store(Path(sys.argv[1])); found = store.lookup('bases', sys.argv[2]); "
            "print('using' if found else 'absent', flush=True); time.sleep(60)",
            str(root),
            older.name,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    argv = ["cache", "prune", "--config", str(family_dir / "images.toml"), "--cache-dir"]
    try:
        assert user.stdout is not None and user.stdout.readline().strip() == "using"
        items = inventory(root, needs(load_family(family_dir / "images.toml"), None))
        assert next(i for i in items if i.path == older).busy
        assert main([*argv, str(root)]) == 0
        assert (older / "rootfs.tar").is_file()  # in use: kept
        assert not paths["runtime_old"].exists()  # not in use: gone
    finally:
        user.kill()
        user.wait()
    assert main([*argv, str(root)]) == 0
    assert not older.exists()  # the pin went with the process


def test_a_lookup_after_a_prune_finds_nothing_and_the_store_pins_what_it_builds(
    tmp_path: Path,
) -> None:
    store = store_mod.Store(tmp_path / "cache")
    with store.building("runtimes", "9" * 32) as tmp:
        (tmp / "runtime.tar").write_bytes(b"rt")
    use_lock = tmp_path / "cache" / "runtimes" / f".use-{'9' * 32}"
    assert use_lock.is_file()
    probe = [sys.executable, "-c", PROBE_EXCLUSIVE, str(use_lock)]
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "held"
    store.close()
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "free"
    shutil.rmtree(tmp_path / "cache" / "runtimes" / ("9" * 32))
    assert store.lookup("runtimes", "9" * 32) is None


PROBE_EXCLUSIVE = (
    "import fcntl, sys; h = open(sys.argv[1], 'a+b')\n"
    "try:\n    fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n"
    "    print('held')\nelse:\n    print('free')"
)


def test_du_reports_each_kind(
    tmp_path: Path, family_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "cache"
    _populate(root, family_dir)
    argv = ["cache", "du", "--json", "--config", str(family_dir / "images.toml")]
    assert main([*argv, "--cache-dir", str(root)]) == 0
    rows = {r["kind"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"sha256", "runtimes", "bases", "logs", "verify-pycache"}
    assert rows["runtimes"]["entries"] == 2
    assert 0 < rows["runtimes"]["needed"] < rows["runtimes"]["size"]


def test_verify_finds_a_corrupt_runtime_base_or_input(tmp_path: Path, family_dir: Path) -> None:
    root = tmp_path / "cache"
    paths = _populate(root, family_dir)
    good = root / "sha256" / sha256_file(paths["sha_needed"])
    paths["sha_needed"].rename(good)
    paths["sha_other"].unlink()
    assert verify_entries(root) == []
    (paths["runtime_old"] / "runtime.tar").write_bytes(b"OLD")  # same size, other bytes
    (paths["base_new"] / "record.json").unlink()
    bad = verify_entries(root)
    assert len(bad) == 2
    assert any("runtime.tar does not match its recorded sha256" in line for line in bad)
    assert any("record.json missing" in line for line in bad)
    argv = ["cache", "verify", "--config", str(family_dir / "images.toml")]
    assert main([*argv, "--cache-dir", str(root)]) == 5


def test_cache_dir_is_the_root_for_every_stage(tmp_path: Path) -> None:
    """verify's bytecode cache lives under the cache root handed to it: --cache-dir wins
    over the environment's."""
    from bink_python.cli.commands import build_parser
    from bink_python.settings import Settings
    from bink_python.verify.pycache import host_pycache

    args = build_parser().parse_args(["verify", "--cache-dir", str(tmp_path / "mine")])
    settings = Settings.resolve(args, {"BINK_PYTHON_CACHE": str(tmp_path / "env")})
    manifest = {"layers": [{"digest": "sha256:base"}, {"digest": "sha256:runtime"}]}
    kept = host_pycache(manifest, settings.cache_dir)
    assert kept is not None and kept.is_relative_to((tmp_path / "mine").resolve())
    assert host_pycache(manifest, None) is None


def _sound_entry_of_every_kind(root: Path) -> dict[str, Path]:
    """One complete, needed entry of every registered kind (the needs they answer to)."""
    pinned = b"a pinned input"
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("input")
        info.size = len(pinned)
        archive.addfile(info, io.BytesIO(pinned))

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    base = {"os": "debian", "release": "13", "arch": "amd64", "variant": "regular"}
    made = {
        "bases": _payload_entry(root, "bases", "b" * 32, "rootfs.tar", b"base", 1, **base),
        "runtimes": _payload_entry(root, "runtimes", "r" * 32, "runtime.tar", b"rt", 1),
        "buildroots": _entry(
            root,
            "buildroots",
            "c" * 32,
            {"buildroot.json": b'{"os": "debian", "release": "13"}'},
            1,
        ),
    }
    (made["buildroots"] / "root" / "usr" / "bin").mkdir(parents=True)
    base_id, runtime_id = f"sha256:{sha(b'base')}", f"sha256:{sha(b'rt')}"
    for kind, blob in (("gzip-layers", "layer.tar.gz"), ("zstd-layers", "layer.tar.zst")):
        meta = {"diff_id": base_id, "digest": f"sha256:{sha(b'z')}", "size": 1}
        made[kind] = _entry(
            root, kind, "d" * 32, {blob: b"z", "meta.json": json.dumps(meta).encode()}, 1
        )
    files_meta = json.dumps({"diff_id": f"sha256:{sha(tar.getvalue())}"}).encode()
    made["files-layers"] = _entry(
        root, "files-layers", "e" * 32, {"layer.tar": tar.getvalue(), "meta.json": files_meta}, 1
    )
    ld_meta = json.dumps({"base": base_id, "runtime": runtime_id, "arch": "amd64"}).encode()
    made["ld-caches"] = _entry(
        root,
        "ld-caches",
        "f" * 32,
        {"ld.so.cache": b"glibc-ld.so.cache1.1 and the rest", "meta.json": ld_meta},
        1,
    )
    assert set(made) == {kind.name for kind in ENTRY_KINDS}
    (root / "sha256").mkdir()
    (root / "sha256" / sha(pinned)).write_bytes(pinned)
    return made


def test_verify_names_a_corrupt_entry_of_every_kind(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    made = _sound_entry_of_every_kind(root)
    assert verify_entries(root) == []
    corrupt = {
        "bases": "rootfs.tar",
        "runtimes": "runtime.tar",
        "gzip-layers": "layer.tar.gz",
        "zstd-layers": "layer.tar.zst",
        "files-layers": "layer.tar",
        "ld-caches": "ld.so.cache",
    }
    for kind, name in corrupt.items():
        path = made[kind] / name
        path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))  # same size, other bytes
    shutil.rmtree(made["buildroots"] / "root" / "usr")
    bad = verify_entries(root)
    for kind, entry in made.items():
        assert sum(line.startswith(f"{entry}:") for line in bad) == 1, (kind, bad)
    assert len(bad) == len(made)


def test_verify_names_the_record_that_lacks_the_payload_hash(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    made = _sound_entry_of_every_kind(root)
    (made["runtimes"] / "record.json").write_text("{}")
    (made["zstd-layers"] / "meta.json").write_text('{"size": 1}')
    assert sorted(verify_entries(root)) == [
        f"{made['runtimes']}: record.json names no sha256",
        f"{made['zstd-layers']}: meta.json names no digest",
    ]


def test_prune_keeps_the_needed_entry_of_every_kind(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    made = _sound_entry_of_every_kind(root)
    need = housekeeping.Needs(
        sha256=frozenset({hashlib.sha256(b"a pinned input").hexdigest()}),
        runtimes=frozenset({"r" * 32}),
        base_specs=frozenset({("debian", "13", "amd64", "regular")}),
        buildroot_specs=frozenset({("debian", "13")}),
    )
    items = inventory(root, need)
    assert {i.kind for i in items if i.needed} >= set(made)
    doomed = {i.path for i in select(items, older_than=None, max_bytes=0, now=time.time())}
    assert not doomed & set(made.values())
    # without the needs, every one of them may go
    items = inventory(root, None)
    doomed = {i.path for i in select(items, older_than=None, max_bytes=0, now=time.time())}
    assert set(made.values()) <= doomed


def test_ls_lists_an_entry_of_every_kind(
    tmp_path: Path, family_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "cache"
    made = _sound_entry_of_every_kind(root)
    argv = ["cache", "ls", "--config", str(family_dir / "images.toml")]
    assert main([*argv, "--cache-dir", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for kind, entry in made.items():
        assert f"{kind}/{entry.name}" in lines


def test_older_than_counts_from_the_last_use_not_the_build(tmp_path: Path) -> None:
    """An entry built 60 days ago but looked up today is not old; one nobody used is."""
    root = tmp_path / "cache"
    used = _entry(root, "runtimes", "a" * 32, {"record.json": b"{}"}, 60)
    idle = _entry(root, "runtimes", "b" * 32, {"record.json": b"{}"}, 60)
    store = store_mod.Store(root)
    assert store.lookup("runtimes", used.name) == used
    store.close()
    items = inventory(root)
    doomed = {i.path for i in select(items, older_than=30 * DAY, max_bytes=None, now=time.time())}
    assert doomed == {idle}
