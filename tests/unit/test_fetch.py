"""The fetch cache against a real HTTP server on 127.0.0.1: every fault case."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bink_python.errors import FetchError, PolicyError
from bink_python.host.progress import Progress
from bink_python.inputs.cache import Cache, cache_add, cache_ls, cache_verify
from bink_python.inputs.fetch import (
    FetchSettings,
    download,
    fetch_artifact,
    fetch_bytes,
    resolve_url,
)
from bink_python.inputs.lockfile import Artifact, Lock
from bink_python.pipeline.housekeeping import inventory, needs, remove, select
from bink_python.settings import Mirrors
from tests.support.httpserver import TestServer, refused_url, running

FAST = FetchSettings(timeout=1.0, attempts=2, backoff=0.0)
BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[TestServer]:
    with running() as srv:
        yield srv


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def prune(cache: Cache, lock: Lock, *, dry_run: bool = False) -> list[Path]:
    """What ``bink-python cache prune`` removes from ``cache`` (no limits), removed."""
    items = inventory(cache.root, needs(None, lock))
    doomed = select(items, older_than=None, max_bytes=None, now=time.time())
    return [i.path for i in doomed if dry_run or remove(i, cache.root)]


def artifact(*urls: str, sha: str | None = SHA, size: int | None = len(BODY)) -> Artifact:
    return Artifact(
        name="cpython:3.13.15",
        kind="cpython",
        version="3.13.15",
        filename="Python-3.13.15.tar.xz",
        urls=urls,
        sha256=sha,
        size=size,
    )


def assert_clean(cache: Cache) -> None:
    """No partial download left behind, and every entry is what its name says."""
    assert not list(cache.dir.glob(".tmp-*"))
    assert cache_verify(cache) == []


def test_fetch_downloads_verifies_and_reuses(server: TestServer, cache: Cache) -> None:
    url = server.serve("/Python.tar.xz", BODY)
    path = fetch_artifact(artifact(url), cache, settings=FAST)
    assert path == cache.dir / SHA
    assert path.read_bytes() == BODY
    again = fetch_artifact(artifact(url), cache, settings=FAST)
    assert again == path
    assert server.count("/Python.tar.xz") == 1
    assert_clean(cache)


def test_unpinned_artifact_is_refused_with_how_to_pin(cache: Cache) -> None:
    with pytest.raises(PolicyError, match=r"cache add FILE --for cpython:3.13.15"):
        fetch_artifact(artifact("http://127.0.0.1:1/x", sha=None), cache, settings=FAST)


def test_wrong_sha256_fails_and_leaves_no_entry(server: TestServer, cache: Cache) -> None:
    url = server.serve("/bad", b"x" * len(BODY))
    with pytest.raises(
        FetchError, match=r"^cannot fetch cpython:3.13.15: .*/bad: sha256 \w+, expected"
    ):
        fetch_artifact(artifact(url), cache, settings=FAST)
    assert not (cache.dir / SHA).exists()
    assert server.count("/bad") == 1  # a wrong hash is not retried
    assert_clean(cache)


def test_wrong_size_fails(server: TestServer, cache: Cache) -> None:
    url = server.serve("/big", BODY + b"extra")
    with pytest.raises(FetchError, match=r"size 200005 bytes \(Content-Length\), expected 200000"):
        fetch_artifact(artifact(url), cache, settings=FAST)
    assert_clean(cache)


def test_wrong_size_when_unknown_in_lock_is_caught_by_hash(
    server: TestServer, cache: Cache
) -> None:
    url = server.serve("/short", BODY[:-1])
    with pytest.raises(FetchError, match="sha256"):
        fetch_artifact(artifact(url, size=None), cache, settings=FAST)
    assert_clean(cache)


def test_truncated_body_is_retried_then_fails(server: TestServer, cache: Cache) -> None:
    url = server.serve("/trunc", BODY, truncate_at=50_000)
    with pytest.raises(FetchError, match=r"/trunc: truncated body.* after 2 attempts"):
        fetch_artifact(artifact(url), cache, settings=FAST)
    assert server.count("/trunc") == 2
    assert_clean(cache)


def test_connection_refused_then_next_mirror(server: TestServer, cache: Cache) -> None:
    url = server.serve("/ok", BODY)
    path = fetch_artifact(artifact(refused_url() + "/x", url), cache, settings=FAST)
    assert path.read_bytes() == BODY
    assert_clean(cache)


def test_all_mirrors_failing_names_each(server: TestServer, cache: Cache) -> None:
    first = server.serve("/gone", b"", status=404)
    second = server.serve("/broken", b"", status=500)
    with pytest.raises(FetchError) as info:
        fetch_artifact(artifact(first, second, refused_url() + "/y"), cache, settings=FAST)
    message = str(info.value)
    assert "\n" not in message
    assert "/gone: HTTP 404;" in message
    assert "/broken: HTTP 500 after 2 attempts;" in message
    assert "/y: connection refused after 2 attempts" in message
    assert server.count("/gone") == 1  # a 404 is not retried
    assert_clean(cache)


def test_server_error_then_success_is_retried(server: TestServer, cache: Cache) -> None:
    url = server.serve("/flaky", BODY, fail_times=1)
    assert fetch_artifact(artifact(url), cache, settings=FAST).read_bytes() == BODY
    assert server.count("/flaky") == 2


def test_slow_server_hits_timeout(server: TestServer, cache: Cache) -> None:
    url = server.serve("/slow", BODY, stall=3.0)
    settings = FetchSettings(timeout=0.3, attempts=1, backoff=0.0)
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"/slow: timed out"):
        fetch_artifact(artifact(url), cache, settings=settings)
    assert time.monotonic() - start < 2.5
    assert_clean(cache)


def test_connection_closed_without_response(server: TestServer, cache: Cache) -> None:
    url = server.serve("/close", close=True)
    with pytest.raises(FetchError, match=r"/close: "):
        fetch_artifact(artifact(url), cache, settings=FAST)
    assert_clean(cache)


def test_corrupted_cache_file_is_detected_and_refetched(server: TestServer, cache: Cache) -> None:
    url = server.serve("/p", BODY)
    path = fetch_artifact(artifact(url), cache, settings=FAST)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    assert [e.sha256 for e in cache_verify(cache)] == [SHA]
    again = fetch_artifact(artifact(url), cache, settings=FAST)
    assert again.read_bytes() == BODY
    assert server.count("/p") == 2
    assert_clean(cache)


def test_offline_never_connects_and_fails_clearly(server: TestServer, cache: Cache) -> None:
    url = server.serve("/p", BODY)
    with pytest.raises(FetchError, match=r"not in the cache .* --offline was given: seed it with"):
        fetch_artifact(artifact(url), cache, offline=True, settings=FAST)
    with pytest.raises(FetchError, match="--offline"):
        fetch_bytes([url], what="checksum", offline=True, settings=FAST)
    assert server.count() == 0


def test_offline_uses_the_cache(server: TestServer, cache: Cache) -> None:
    url = server.serve("/p", BODY)
    fetch_artifact(artifact(url), cache, settings=FAST)
    before = server.count()
    assert fetch_artifact(artifact(url), cache, offline=True).read_bytes() == BODY
    assert server.count() == before


def test_concurrent_fetches_of_one_artifact_both_succeed(server: TestServer, cache: Cache) -> None:
    url = server.serve("/slowbody", BODY, chunk_delay=0.01)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(fetch_artifact(artifact(url), cache, settings=FAST).read_bytes())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [BODY] * 3
    assert server.count("/slowbody") == 1  # the others waited and found the entry
    assert_clean(cache)


FETCH_SCRIPT = """
import sys
from pathlib import Path
from bink_python.inputs.cache import Cache
from bink_python.inputs.fetch import FetchSettings, fetch_artifact
from bink_python.inputs.lockfile import Artifact
art = Artifact(name="a", kind="cpython", version="1", filename="f", urls=(sys.argv[2],),
               sha256=sys.argv[3], size=int(sys.argv[4]))
path = fetch_artifact(art, Cache(Path(sys.argv[1])), settings=FetchSettings(timeout=5))
print(path)
"""


def _spawn(cache: Cache, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    return subprocess.Popen(
        [sys.executable, "-c", FETCH_SCRIPT, str(cache.root), url, SHA, str(len(BODY))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_fetching_at_once_both_succeed(server: TestServer, cache: Cache) -> None:
    url = server.serve("/slowbody", BODY, chunk_delay=0.01)
    procs = [_spawn(cache, url), _spawn(cache, url)]
    outs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {o[0].strip() for o in outs} == {str(cache.dir / SHA)}
    assert server.count("/slowbody") == 1
    assert_clean(cache)


def test_killed_mid_download_leaves_no_entry(server: TestServer, cache: Cache) -> None:
    url = server.serve("/slowbody", BODY, chunk_delay=0.05)
    proc = _spawn(cache, url)
    deadline = time.monotonic() + 10

    def partial_bytes() -> int:
        return sum(p.stat().st_size for p in cache.dir.glob(".tmp-*")) if cache.dir.is_dir() else 0

    while partial_bytes() < 30_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cache.dir / SHA).exists()
    assert [e.sha256 for e in cache.entries()] == []
    partial = list(cache.dir.glob(".tmp-*"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < len(BODY)
    # prune removes the abandoned partial file (its artifact lock is free)
    assert prune(cache, Lock(0, {})) == partial
    assert not partial[0].exists()
    # and the next fetch succeeds
    assert fetch_artifact(artifact(server.serve("/p", BODY)), cache, settings=FAST).is_file()


def test_interrupted_in_process_removes_partial(server: TestServer, cache: Cache) -> None:
    """A KeyboardInterrupt mid-body (Ctrl-C) removes the temporary file."""
    url = server.serve("/slowbody", BODY, chunk_delay=0.05)  # 25 chunks: over a second
    stop = threading.Event()

    def interrupt_mid_body() -> None:
        # Ctrl-C once part of the body is on disk (not on a clock: a loaded machine may
        # start the download late)
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            if any(p.stat().st_size > 0 for p in cache.dir.glob(".tmp-*")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    # Python turns SIGINT into KeyboardInterrupt only where it was not ignored at start-up,
    # and a background job of a non-interactive shell (CI, nohup ... &) starts with it ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt_mid_body, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch_artifact(artifact(url), cache, settings=FAST)
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    assert [e.sha256 for e in cache.entries()] == []
    assert_clean(cache)


def test_download_trust_on_first_use(server: TestServer, cache: Cache) -> None:
    url = server.serve("/asset", BODY)
    entry = download([url], cache, what="asset", sha256=None)
    assert (entry.sha256, entry.size) == (SHA, len(BODY))


def test_debian_url_resolves_through_mirror_setting(server: TestServer, cache: Cache) -> None:
    server.serve("/debian/pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz", BODY)
    settings = FetchSettings(
        timeout=1.0, attempts=1, mirrors=Mirrors(build=server.url + "/debian/")
    )
    lock_url = "debian:pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz"
    assert resolve_url(lock_url, settings).startswith(server.url + "/debian/pool/")
    assert fetch_artifact(artifact(lock_url), cache, settings=settings).read_bytes() == BODY


# ---------------------------------------------------------------- cache commands


def write_lock(path: Path, *arts: Artifact) -> Lock:
    lock = Lock(1, {}).with_artifacts(arts, now=1)
    lock.write(path)
    return lock


def test_cache_add_for_unpinned_pins_it(tmp_path: Path, cache: Cache) -> None:
    lock_path = tmp_path / "images.lock"
    name = "linkerd-await:0.3.3:arm64"
    write_lock(
        lock_path, Artifact(name, "linkerd-await", "0.3.3", "a", ("http://x/a",), arch="arm64")
    )
    src = tmp_path / "linkerd-await"
    src.write_bytes(BODY)
    [added] = cache_add([src], cache, lock_path=lock_path, for_=name)
    assert added.pinned and added.entry.sha256 == SHA
    pinned = Lock.load(lock_path).entry(name)
    assert (pinned.sha256, pinned.size, pinned.pinned) == (SHA, len(BODY), True)
    # offline fetch now succeeds from the seeded cache
    assert fetch_artifact(pinned, cache, offline=True).read_bytes() == BODY


def test_cache_add_for_pinned_verifies(tmp_path: Path, cache: Cache) -> None:
    lock_path = tmp_path / "images.lock"
    write_lock(lock_path, artifact("http://x/a"))
    bad = tmp_path / "bad"
    bad.write_bytes(b"nope")
    before = lock_path.read_bytes()
    with pytest.raises(
        FetchError, match=r"is not cpython:3.13.15: its sha256 is \w+, images.lock pins"
    ):
        cache_add([bad], cache, lock_path=lock_path, for_="cpython:3.13.15")
    assert cache.entries() == []
    good = tmp_path / "good"
    good.write_bytes(BODY)
    [added] = cache_add([good], cache, lock_path=lock_path, for_="cpython:3.13.15")
    assert not added.pinned
    assert lock_path.read_bytes() == before


def test_cache_add_unknown_artifact(tmp_path: Path, cache: Cache) -> None:
    lock_path = tmp_path / "images.lock"
    write_lock(lock_path, artifact("http://x/a"))
    src = tmp_path / "f"
    src.write_bytes(BODY)
    with pytest.raises(Exception, match=r"no artifact 'cpython:9.9.9'"):
        cache_add([src], cache, lock_path=lock_path, for_="cpython:9.9.9")


def test_cache_ls_verify_prune(tmp_path: Path, cache: Cache) -> None:
    lock_path = tmp_path / "images.lock"
    lock = write_lock(lock_path, artifact("http://x/a"))
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(BODY)
    two.write_bytes(b"unreferenced")
    added = cache_add([one, two], cache, lock_path=lock_path)
    assert [a.artifacts for a in added] == [("cpython:3.13.15",), ()]
    listed = {entry.entry.sha256: entry.artifacts for entry in cache_ls(cache, lock)}
    assert listed[SHA] == ("cpython:3.13.15",)
    other = added[1].entry
    assert listed[other.sha256] == ()
    # tamper with the referenced entry: verify reports it
    path = cache.dir / SHA
    path.chmod(0o644)
    path.write_bytes(b"evil")
    assert [e.sha256 for e in cache_verify(cache)] == [SHA]
    # prune removes only what the lock does not reference; dry run removes nothing
    assert prune(cache, lock, dry_run=True) == [other.path]
    assert other.path.exists()
    assert prune(cache, lock) == [other.path]
    assert not other.path.exists() and path.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_shows_size_and_rate(server: TestServer, cache: Cache) -> None:
    url = server.serve("/slowbody", BODY, chunk_delay=0.02)
    term = _Terminal()
    fetch_artifact(artifact(url), cache, settings=FAST, progress=Progress(term))
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.getvalue())
    assert re.search(r"cpython:3\.13\.15 [\d.]+ KB/200\.0 KB  [\d.]+ [KM]B/s", out), out
    assert "fetched cpython:3.13.15 (200.0 KB" in out


def test_progress_quiet_prints_nothing(server: TestServer, cache: Cache) -> None:
    url = server.serve("/p", BODY)
    stream = io.StringIO()
    fetch_artifact(artifact(url), cache, settings=FAST, progress=Progress(stream, quiet=True))
    assert stream.getvalue() == ""
