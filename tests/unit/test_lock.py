"""images.lock: the model, its stable form, pin rules, and `lock` against a local server."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from bink_python.errors import ConfigError, FetchError, PolicyError, UsageError
from bink_python.family.config import Family, load_family
from bink_python.inputs.cache import Cache
from bink_python.inputs.fetch import FetchSettings, fetch_artifact
from bink_python.inputs.lockfile import Lock, parse_pin, require_pinned, sync_lock
from bink_python.inputs.update import LockResult, run_lock
from bink_python.settings import Settings, Upstream
from tests.support.family_toml import images_toml, write_images_toml
from tests.support.httpserver import TestServer, quick_fetch, running, served_settings

REPO = Path(__file__).resolve().parents[2]
FAST = FetchSettings(timeout=1.0, attempts=1, backoff=0.0)


def served(srv: TestServer) -> Settings:
    """The settings of a run whose upstream, mirror and epoch are the test server's."""
    return served_settings(srv, 1700000000, BINK_PYTHON_DEBIAN_MIRROR=srv.url + "/debian")


def lock_served(
    srv: TestServer,
    family: Family,
    cache: Cache | Path,
    *,
    pins: Mapping[str, str] | None = None,
    offline: bool = False,
) -> LockResult:
    """``lock`` as a run served by ``srv`` runs it (its upstream, mirror and epoch)."""
    settings = served(srv)
    return run_lock(
        family,
        cache,
        pins=pins,
        offline=offline,
        settings=quick_fetch(settings),
        epoch=settings.source_date_epoch,
    )


DESIGN_PINS = {
    "3.9.25": "00e07d7c0f2f0cc002432d1ee84d2a40dae404a99303e3f97701c10966c91834",
    "3.10.22": "c61fe9b1a1a7ec2a0b0388e664187c378a5325a89e3606d220abf5bdfccb2543",
    "3.11.17": "bfb74ad39efae27cda510f134ab408e00f9992c56851cfc0b1cdb5646da11599",
    "3.12.15": "c2c4321961fab0fb999d66e0cecf521c2ab3994c7992873ea99e306c1094fd5a",
    "3.13.16": "f4b1bfb3c79b5bb11b8d228a12504163b4c0dab4d679828d8f5f26b6cb6ab35d",
    "3.14.8": "c2215904f02b175596dc49351585104f4bc20341e1c47378b26a2c274360ce73",
    "3.15.0": "ba4bed1ba346b916890b76d9e320451420aa69f6408997d33c66482eeae3d575",
}

FAMILY = images_toml()


def test_committed_lock_pins_design_sha256s() -> None:
    family = load_family(REPO / "images.toml")
    lock = Lock.load(family.lock_path)
    for version in family.python_versions:
        entry = lock.entry(f"cpython:{version}")
        assert entry.sha256 == DESIGN_PINS[version], version
        assert (
            entry.urls[0] == f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz"
        )
        assert entry.urls[1].startswith("debian:pool/main/p/python")
    for arch in family.arches:
        entry = lock.entry(f"linkerd-await:0.3.3:{arch}")
        assert not entry.pinned and entry.sha256 is None
        with pytest.raises(
            PolicyError, match=r"bink-python lock.*cache add FILE --for linkerd-await"
        ):
            require_pinned(entry)


def test_committed_lock_is_what_the_tool_writes() -> None:
    """Stable form: re-serializing and re-syncing the committed lock changes no byte."""
    family = load_family(REPO / "images.toml")
    text = family.lock_path.read_text()
    lock = Lock.load(family.lock_path)
    assert lock.to_text() == text
    assert sync_lock(family, lock, upstream=Upstream()).to_text() == text


def test_no_registry_host_in_lock() -> None:
    text = (REPO / "images.lock").read_text()
    hosts = set(re.findall(r"https?://([^/\"]+)", text))
    assert hosts == {"www.python.org", "github.com"}


@pytest.fixture
def family_path(tmp_path: Path) -> Path:
    return write_images_toml(tmp_path, FAMILY)


def test_sync_adds_keeps_and_drops(family_path: Path) -> None:
    family = load_family(family_path)
    sha = "a" * 64
    lock = sync_lock(family, Lock(0, {}), {"cpython:3.13.15": sha}, now=100, upstream=Upstream())
    assert sorted(lock.artifacts) == [
        "cpython:3.13.15",
        "linkerd-await:0.3.3:amd64",
        "linkerd-await:0.3.3:arm64",
    ]
    assert lock.source_date_epoch == 100
    # unchanged content: epoch kept, byte-identical
    again = sync_lock(family, lock, now=200, upstream=Upstream())
    assert again.to_text() == lock.to_text()
    # a version change drops the old artifact, adds the new one unpinned, moves the epoch
    family_path.write_text(FAMILY.replace('"3.13.15"', '"3.13.16"'))
    moved = sync_lock(load_family(family_path), lock, now=300, upstream=Upstream())
    assert "cpython:3.13.15" not in moved.artifacts
    assert not moved.entry("cpython:3.13.16").pinned
    assert moved.source_date_epoch == 300


def test_first_pin_keeps_the_epoch_repin_moves_it(family_path: Path) -> None:
    """Pinning an artifact the lock lists unpinned (what `cache add --for` does to a
    fresh copy of the example's lock) keeps the epoch: the same bytes pinned twice, at
    two times, give the same lock. Re-pinning to other bytes or unpinning moves it."""
    family = load_family(family_path)
    lock = sync_lock(
        family, Lock(0, {}), {"cpython:3.13.15": "a" * 64}, now=100, upstream=Upstream()
    )
    amd64 = "linkerd-await:0.3.3:amd64"
    first = lock.with_artifact(replace(lock.entry(amd64), sha256="b" * 64, size=5), now=200)
    again = lock.with_artifact(replace(lock.entry(amd64), sha256="b" * 64, size=5), now=300)
    assert first.source_date_epoch == again.source_date_epoch == 100
    assert first.to_text() == again.to_text()
    repinned = first.with_artifact(replace(first.entry(amd64), sha256="c" * 64), now=400)
    assert repinned.source_date_epoch == 400
    unpinned = first.with_artifact(replace(first.entry(amd64), sha256=None), now=500)
    assert unpinned.source_date_epoch == 500
    # through sync_lock (`lock --pin`) too
    assert (
        sync_lock(family, lock, {amd64: "d" * 64}, now=600, upstream=Upstream()).source_date_epoch
        == 100
    )


def test_sync_rejects_pin_for_unused_artifact(family_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"cannot pin cpython:3\.12\.1: images\.toml does not use it"
    ):
        sync_lock(
            load_family(family_path), Lock(0, {}), {"cpython:3.12.1": "a" * 64}, upstream=Upstream()
        )


def test_parse_pin() -> None:
    assert parse_pin("cpython:3.13.16=sha256:" + "A" * 64) == ("cpython:3.13.16", "a" * 64)
    with pytest.raises(UsageError, match="expected NAME=SHA256"):
        parse_pin("cpython:3.13.16=abc")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(lock_version=2), "lock_version 2 is not 1"),
        (lambda d: d["artifacts"]["cpython:3.13.16"].update(pinned=False), "'pinned' must be true"),
        (lambda d: d["artifacts"]["cpython:3.13.16"].update(sha256="xyz"), "64 lowercase hex"),
        (
            lambda d: d["artifacts"]["cpython:3.13.16"].update(sha256="a" * 64 + "\n"),
            "64 lowercase",
        ),
        (lambda d: d["artifacts"]["cpython:3.13.16"].update(size=-1), "non-negative integer"),
        (lambda d: d["artifacts"]["cpython:3.13.16"].update(urls=[]), "non-empty list"),
        (lambda d: d["artifacts"]["cpython:3.13.16"].update(extra=1), "unknown field 'extra'"),
    ],
)
def test_bad_lock_is_a_one_line_config_error(tmp_path: Path, mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((REPO / "images.lock").read_text())
    mutate(data)
    path = tmp_path / "images.lock"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Lock.load(path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- `lock` over HTTP

TARBALL = os.urandom(50_000)
TAR_SHA = hashlib.sha256(TARBALL).hexdigest()
AMD64 = b"\x7fELF amd64 stand-in"
ARM64 = b"\x7fELF arm64 stand-in"


@pytest.fixture
def upstream() -> Iterator[TestServer]:
    with running() as srv:
        yield srv


def serve_linkerd(srv: TestServer, *, shasum: bool = True) -> None:
    base = "/gh/linkerd/linkerd-await/releases/download/release%2Fv0.3.3"
    for arch, body in (("amd64", AMD64), ("arm64", ARM64)):
        asset = f"linkerd-await-v0.3.3-{arch}"
        srv.serve(f"{base}/{asset}", body)
        if shasum:
            digest = hashlib.sha256(body).hexdigest()
            srv.serve(f"{base}/{asset}.shasum", f"{digest}  release/{asset}\n".encode())


def test_lock_pins_linkerd_from_shasum_and_fetches_cpython_via_debian(
    upstream: TestServer, family_path: Path, tmp_path: Path
) -> None:
    serve_linkerd(upstream)
    upstream.serve("/debian/pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz", TARBALL)
    family = load_family(family_path)
    cache = Cache(tmp_path / "cache")
    result = lock_served(upstream, family, cache, pins={"cpython:3.13.15": TAR_SHA})
    assert result.pinned == ("linkerd-await:0.3.3:amd64", "linkerd-await:0.3.3:arm64")
    lock = Lock.load(family.lock_path)
    assert lock.entry("cpython:3.13.15").size == len(TARBALL)  # learned by downloading
    assert lock.entry("linkerd-await:0.3.3:arm64").sha256 == hashlib.sha256(ARM64).hexdigest()
    assert upstream.count("/ftp/python/3.13.15/Python-3.13.15.tar.xz") == 1  # tried first, 404
    # a second run changes nothing and downloads nothing
    text = family.lock_path.read_bytes()
    before = upstream.count()
    again = lock_served(upstream, family, cache)
    assert not again.changed and family.lock_path.read_bytes() == text
    assert upstream.count() == before
    # offline lock never connects
    lock_served(upstream, family, cache, offline=True)
    assert upstream.count() == before


def test_lock_refuses_asset_not_matching_shasum(
    upstream: TestServer, family_path: Path, tmp_path: Path
) -> None:
    serve_linkerd(upstream)
    base = "/gh/linkerd/linkerd-await/releases/download/release%2Fv0.3.3"
    upstream.serve(f"{base}/linkerd-await-v0.3.3-arm64", AMD64)  # the wrong arch's binary
    upstream.serve("/debian/pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz", TARBALL)
    family = load_family(family_path)
    with pytest.raises(FetchError, match=r"1 of 3 artifacts could not be fetched.*arm64: sha256"):
        lock_served(upstream, family, Cache(tmp_path / "c"), pins={"cpython:3.13.15": TAR_SHA})
    lock = Lock.load(family.lock_path)  # verified pins were still recorded
    assert lock.entry("linkerd-await:0.3.3:amd64").pinned
    assert not lock.entry("linkerd-await:0.3.3:arm64").pinned


def test_lock_unreachable_upstream_says_how_to_pin(
    upstream: TestServer, family_path: Path, tmp_path: Path
) -> None:
    family = load_family(family_path)
    with pytest.raises(FetchError) as info:
        lock_served(upstream, family, Cache(tmp_path / "c"))
    message = str(info.value)
    assert "\n" not in message
    assert "cpython:3.13.15 is not pinned" in message
    assert "bink-python lock --pin cpython:3.13.15=SHA256" in message
    assert "linkerd-await-v0.3.3-amd64: HTTP 404" in message


def test_lock_tofu_when_shasum_missing(
    upstream: TestServer, family_path: Path, tmp_path: Path
) -> None:
    serve_linkerd(upstream, shasum=False)
    upstream.serve("/debian/pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz", TARBALL)
    family = load_family(family_path)
    lock_served(upstream, family, Cache(tmp_path / "c"), pins={"cpython:3.13.15": TAR_SHA})
    entry = Lock.load(family.lock_path).entry("linkerd-await:0.3.3:amd64")
    assert entry.sha256 == hashlib.sha256(AMD64).hexdigest()
    assert fetch_artifact(entry, Cache(tmp_path / "c"), offline=True).read_bytes() == AMD64


def test_source_date_epoch_is_settled_in_one_place() -> None:
    from bink_python.errors import UsageError
    from bink_python.inputs.lockfile import source_date_epoch

    def epoch(args: object = None, **environ: str) -> int:
        given = Settings.resolve(args, environ).source_date_epoch()
        return source_date_epoch(given, fallback=lambda: 7)

    assert epoch() == 7
    assert epoch(SOURCE_DATE_EPOCH="1700000000") == 1700000000
    assert epoch(argparse.Namespace(source_date_epoch=5), SOURCE_DATE_EPOCH="1700000000") == 5
    with pytest.raises(UsageError, match=r"SOURCE_DATE_EPOCH='soon': expected an integer"):
        epoch(SOURCE_DATE_EPOCH="soon")
