"""The suite's own machinery: its cache pruning, and its host-tool requirement."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bink_python.store.store import Store
from tests.support.tools import requires_tool

from ..conftest import UNUSED_DAYS, prune_test_cache

DAY = 86400


def _aged(path: Path, days: float) -> Path:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def _entry(store: Path, kind: str, key: str, days: float) -> Path:
    entry = store / kind / key
    entry.mkdir(parents=True)
    (entry / "record.json").write_text("{}")
    return _aged(entry, days)


def test_prune_removes_the_unused_and_the_leftovers_only(tmp_path: Path) -> None:
    store = tmp_path / "store"
    old_used = _entry(store, "runtimes", "a" * 32, UNUSED_DAYS + 30)
    old_idle = _entry(store, "runtimes", "b" * 32, UNUSED_DAYS + 1)
    recent = _entry(store, "bases", "c" * 32, 1)
    ubuntu_idle = _entry(tmp_path / "ubuntu-sim" / "store", "bases", "d" * 32, UNUSED_DAYS + 1)
    partial = store / "runtimes" / f".tmp-{'e' * 32}-x1"
    partial.mkdir()
    work = store / "work" / f"runtime-{'f' * 32}-20261207T000000-1"
    work.mkdir(parents=True)
    (tmp_path / "sources").mkdir()
    old_source = tmp_path / "sources" / "python3.13_3.13.5.orig.tar.xz"
    old_source.touch()
    _aged(old_source, UNUSED_DAYS + 1)
    new_source = tmp_path / "sources" / "python3.13_3.13.15.orig.tar.xz"
    new_source.touch()
    used = Store(store)
    assert used.lookup("runtimes", old_used.name) == old_used  # a run used it today
    used.close()

    removed = set(prune_test_cache(tmp_path))

    assert removed == {old_idle, ubuntu_idle, partial, work, old_source}
    assert old_used.is_dir() and recent.is_dir() and new_source.is_file()


def test_prune_never_removes_what_a_running_build_holds(tmp_path: Path) -> None:
    store = tmp_path / "store"
    entry = _entry(store, "runtimes", "a" * 32, UNUSED_DAYS + 1)
    holder = Store(store)
    assert holder.lookup("runtimes", entry.name) == entry  # pinned until close()
    _aged(entry.parent / f".use-{entry.name}", UNUSED_DAYS + 1)
    try:
        assert prune_test_cache(tmp_path) == []
    finally:
        holder.close()
    assert prune_test_cache(tmp_path) == [entry]


def test_a_missing_tool_skips_or_fails_when_every_tool_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert requires_tool("sh").endswith("/sh")
    monkeypatch.delenv("BINK_PYTHON_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install bink-nothing"):
        requires_tool("bink-no-such-tool", "bink-nothing")
    monkeypatch.setenv("BINK_PYTHON_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="requires every tool"):
        requires_tool("bink-no-such-tool", "bink-nothing")
