"""The OCI image layout: content-addressed blobs, refs in index.json, atomic updates."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bink_python.errors import BuildError, NoSuchLayout, NoSuchTag
from bink_python.oci.layout import Layout
from bink_python.oci.types import (
    ANNOTATION_REF_NAME,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Descriptor,
    Platform,
    canonical_json,
)


def _manifest(layout: Layout, payload: bytes) -> Descriptor:
    """A minimal manifest (config only) stored in the layout."""
    config = layout.write_blob(payload)
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": Descriptor(MEDIA_CONFIG, config.digest, config.size).to_json(),
        "layers": [],
    }
    blob = layout.write_blob(canonical_json(body))
    return Descriptor(MEDIA_MANIFEST, blob.digest, blob.size)


def test_init_writes_marker_and_empty_index(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    assert (tmp_path / "oci/oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    index = json.loads((tmp_path / "oci/index.json").read_text())
    assert index == {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}
    assert (tmp_path / "oci/blobs/sha256").is_dir()
    assert layout.refs() == {}
    layout.check_marker()


def test_canonical_json_is_sorted_compact_without_newline() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "x"}]}) == (
        b'{"a":[1,{"c":"x","d":2}],"b":1}'
    )


def test_write_blob_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    first = layout.write_blob(b"hello")
    again = layout.write_blob(b"hello")
    assert first == again
    assert first.digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert layout.blob_path(first.digest).read_bytes() == b"hello"
    assert [p.name for p in layout.blobs_dir.iterdir()] == [first.digest[7:]]


def test_write_blob_file_refuses_content_that_does_not_match(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    src = tmp_path / "blob"
    src.write_bytes(b"actual content")
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(BuildError, match="does not match its recorded digest"):
        layout.write_blob_file(src, wrong, src.stat().st_size)
    assert list(layout.blobs_dir.iterdir()) == []  # nothing half-written, no temp file
    right = "sha256:" + hashlib.sha256(b"actual content").hexdigest()
    layout.write_blob_file(src, right, src.stat().st_size)
    assert layout.read_blob(right) == b"actual content"


def test_set_refs_keeps_other_refs_and_replaces_same_name(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    one = _manifest(layout, b"{}")
    two = _manifest(layout, b'{"x":1}')
    layout.set_refs({"3.13": one, "3.13.15": one})
    layout.set_refs({"3.14": two})
    assert layout.refs() == {"3.13": one, "3.13.15": one, "3.14": two}
    layout.set_refs({"3.13": two})
    assert layout.refs() == {"3.13": two, "3.13.15": one, "3.14": two}
    raw = (tmp_path / "index.json").read_bytes()
    assert raw == canonical_json(json.loads(raw))  # canonical on disk
    names = [m["annotations"][ANNOTATION_REF_NAME] for m in json.loads(raw)["manifests"]]
    assert names == sorted(names)


def test_set_refs_refuses_content_missing_from_the_layout(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    good = _manifest(layout, b"{}")
    layout.set_refs({"3.13": good})
    before = (tmp_path / "index.json").read_bytes()
    ghost = Descriptor(MEDIA_MANIFEST, "sha256:" + "0" * 64, 10)
    with pytest.raises(BuildError, match="missing from"):
        layout.set_refs({"3.14": ghost})
    assert (tmp_path / "index.json").read_bytes() == before


@pytest.mark.parametrize("name", ["", "-x", "a b", "3.13/", "x..y/", "a\nb"])
def test_invalid_ref_names_are_refused(tmp_path: Path, name: str) -> None:
    layout = Layout(tmp_path).init()
    desc = _manifest(layout, b"{}")
    with pytest.raises(BuildError, match="invalid ref name"):
        layout.set_refs({name: desc})


def test_interrupted_update_leaves_previous_index_valid(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    old = _manifest(layout, b'{"v":1}')
    layout.set_refs({"3.13": old})
    before = (tmp_path / "index.json").read_bytes()

    class Interrupted(Exception):
        pass

    def build_v2() -> None:
        _manifest(layout, b'{"v":2}')  # new blobs are written...
        raise Interrupted  # ...and the build dies before set_refs

    with pytest.raises(Interrupted):
        build_v2()
    assert (tmp_path / "index.json").read_bytes() == before
    assert layout.resolve("3.13") == old
    layout.check(old)
    assert layout.prune() == 2  # the orphan config and manifest
    layout.check(old)


def test_failure_while_writing_index_keeps_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout(tmp_path).init()
    old = _manifest(layout, b'{"v":1}')
    layout.set_refs({"3.13": old})
    before = (tmp_path / "index.json").read_bytes()
    new = _manifest(layout, b'{"v":2}')
    real_replace = os.replace

    def full_disk(src: str, dst: str | Path) -> None:
        if str(dst).endswith("index.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(BuildError, match=r"^disk full while writing .*index\.json: free space"):
        layout.set_refs({"3.13": new})
    monkeypatch.undo()
    assert (tmp_path / "index.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".bink-lock",
        "blobs",
        "index.json",
        "oci-layout",
    ]


def test_resolve_unknown_ref_names_the_known_ones(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    layout.set_refs({"3.13": _manifest(layout, b"{}")})
    with pytest.raises(NoSuchTag, match=r"ref '3\.12' not in the OCI layout .*refs: 3\.13\)"):
        layout.resolve("3.12")


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(NoSuchLayout, match="not an OCI image layout"):
        Layout(tmp_path).check_marker()


def test_descriptor_json_round_trip() -> None:
    desc = Descriptor(
        MEDIA_MANIFEST, "sha256:" + "a" * 64, 12, Platform.for_arch("arm64"), {"k": "v"}
    )
    data = desc.to_json()
    assert data["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert Descriptor.from_json(data) == desc
    assert "variant" not in Platform.for_arch("amd64").to_json()
    with pytest.raises(BuildError, match="unsupported architecture"):
        Platform.for_arch("riscv64")


def test_copy_refs_links_blobs_then_names_them(tmp_path: Path) -> None:
    staging = Layout(tmp_path / "staging").init()
    output = Layout(tmp_path / "out").init()
    kept = _manifest(output, b'{"keep":1}')
    output.set_refs({"3.12": kept})
    new = _manifest(staging, b'{"v":2}')
    output.copy_refs(staging, {"3.13": new})
    assert output.refs() == {"3.12": kept, "3.13": new}
    output.check(new)
    config = output.read_json(new.digest)["config"]["digest"]
    assert output.blob_path(config).stat().st_ino == staging.blob_path(config).stat().st_ino


def test_a_corrupt_blob_of_the_right_size_is_not_reused(tmp_path: Path) -> None:
    staging = Layout(tmp_path / "staging").init()
    output = Layout(tmp_path / "out").init()
    new = _manifest(staging, b'{"v":2}')
    config = staging.read_json(new.digest)["config"]["digest"]
    # the output already holds a blob of that name and size, with other content
    good = staging.blob_path(config).read_bytes()
    output.blob_path(config).write_bytes(b"X" * len(good))
    assert output.has_blob(config, len(good))  # presence and size alone would reuse it
    assert not output.blob_ok(config, len(good))
    output.copy_refs(staging, {"3.13": new})
    assert output.read_blob(config) == good  # replaced, not trusted
    assert output.blob_ok(config, len(good))
    # the same for bytes written directly
    output.blob_path(config).unlink()
    output.blob_path(config).write_bytes(b"Y" * len(good))
    output.write_blob(good)
    assert output.read_blob(config) == good


def test_copy_refs_holds_the_lock_from_the_first_blob_to_index_json(tmp_path: Path) -> None:
    """A prune in another process cannot remove blobs between their write and set_refs."""
    staging = Layout(tmp_path / "staging").init()
    out_dir = tmp_path / "out"
    pruner: list[subprocess.Popen[str]] = []

    class Racing(Layout):
        def write_blob_file(self, source: Path, digest: str, size: int) -> None:
            super().write_blob_file(source, digest, size)
            if not pruner:  # right after the first blob lands, a prune starts
                pruner.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            "import sys; from bink_python.oci.layout import Layout; "
                            "print(Layout(sys.argv[1]).prune())",
                            str(out_dir),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
                time.sleep(1.0)  # time enough for an unlocked prune to remove the blob
                assert pruner[0].poll() is None  # it waits for the lock

    new = _manifest(staging, b'{"v":2}')
    output = Racing(out_dir)
    output.copy_refs(staging, {"3.13": new})
    out, _ = pruner[0].communicate(timeout=30)
    assert out.strip() == "0"  # everything it saw was named by then
    output.check(new)
    assert output.resolve("3.13") == new


def test_temp_files_of_dead_writers_are_removed_under_the_lock(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = layout.blobs_dir / f".tmp-{gone.pid}-abc-123"
    stale.write_bytes(b"half")
    mine = layout.blobs_dir / f".tmp-{os.getpid()}-def-456"
    mine.write_bytes(b"in progress")
    assert layout.prune() == 0
    assert not stale.exists()
    assert mine.exists()


def test_locked_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    layout = Layout(tmp_path).init()
    desc = _manifest(layout, b"{}")
    with layout.locked(), Layout(tmp_path).locked():  # a second object, same path
        layout.set_refs({"3.13": desc})
    assert layout.resolve("3.13") == desc
