"""Every file the tool reads: a regular file of bounded size, UTF-8 located by line, parse
failures of any kind (syntax, recursion, number size, duplicate keys) one line naming the
file, with the input's own exit code; a FIFO or /dev/zero never hangs the reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bink_python.errors import ConfigError
from bink_python.host.files import MAX_TEXT, parse_json, parse_toml, read_text
from bink_python.inputs.lockfile import Lock
from bink_python.oci.layout import Layout
from bink_python.oci.types import ANNOTATION_REF_NAME, MEDIA_INDEX, Descriptor
from tests.support.images import BASE, make_image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"


def _lock(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "images.lock"
    path.write_bytes(data)
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        Lock.load(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_a_lock_that_is_not_utf8_is_located_by_line(tmp_path: Path) -> None:
    good = (EXAMPLE / "images.lock").read_bytes()
    line3 = good.index(b"\n", good.index(b"\n") + 1) + 1
    bad = good[: line3 + 4] + b"\xe9" + good[line3 + 4 :]  # one latin-1 byte on line 3
    assert "line 3, column 5: byte 0xe9 is not UTF-8" in _refused(_lock(tmp_path, bad))
    assert "is not UTF-8" in _refused(_lock(tmp_path, bytes(range(256)) * 4))


def test_json_nested_too_deeply_or_numbers_too_long_are_config_errors(tmp_path: Path) -> None:
    assert "nested too deeply" in _refused(_lock(tmp_path, b"[" * 100_000 + b"]" * 100_000))
    huge = b'{"lock_version": 1, "source_date_epoch": ' + b"9" * 5000 + b', "artifacts": {}}'
    assert "digits" in _refused(_lock(tmp_path, huge))


def test_duplicate_keys_are_refused_not_last_one_wins(tmp_path: Path) -> None:
    text = b'{"lock_version": 1, "lock_version": 1, "source_date_epoch": 0, "artifacts": {}}'
    assert "the key 'lock_version' appears twice" in _refused(_lock(tmp_path, text))


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    lock = Lock.load(_lock(tmp_path, b"\xef\xbb\xbf" + (EXAMPLE / "images.lock").read_bytes()))
    assert lock.source_date_epoch == 1767225600


def test_a_directory_fifo_or_device_is_refused_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "dir.lock").mkdir()
    assert "a directory" in _refused(tmp_path / "dir.lock")
    fifo = tmp_path / "fifo.lock"
    os.mkfifo(fifo)
    done: list[str] = []
    reader = threading.Thread(target=lambda: done.append(_refused(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert done and "not a regular file" in done[0]
    assert "not a regular file" in _refused(Path("/dev/zero"))


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "images.lock"
    with open(big, "wb") as handle:
        handle.truncate(MAX_TEXT + 1)  # sparse: nothing to write, nothing read past the limit
    assert "larger than 16 MiB" in _refused(big)


def test_toml_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "images.toml"
    with pytest.raises(ConfigError, match=r"images.toml: line 2, column 3: "):
        parse_toml("a = 1\nb c\n", path, error=ConfigError)
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_toml("a = " + "[" * 100_000 + "]" * 100_000, path, error=ConfigError)
    with pytest.raises(ConfigError, match="digits"):
        parse_toml("a = " + "9" * 5000, path, error=ConfigError)
    with pytest.raises(ConfigError, match="line 1, column 1"):
        parse_json("nope", path, error=ConfigError)
    assert read_text(_lock(tmp_path, b"\xef\xbb\xbfx = 1\n"), what="x", error=ConfigError) == (
        "x = 1\n"
    )


def test_the_cli_refuses_a_fifo_lock_in_one_line_with_code_3(tmp_path: Path) -> None:
    config = tmp_path / "images.toml"
    config.write_bytes((EXAMPLE / "images.toml").read_bytes())
    os.mkfifo(tmp_path / "images.lock")
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "lock", "--offline", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr


@pytest.mark.parametrize("command", [["cache", "du"], ["cache", "ls"], ["cache", "verify"]])
def test_a_cache_dir_that_is_a_file_is_refused_with_code_2(
    tmp_path: Path, command: list[str]
) -> None:
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("a file\n")
    options = ["--config", str(EXAMPLE / "images.toml"), "--cache-dir", str(not_a_dir)]
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", *command, *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "not a directory" in proc.stderr


def test_a_lock_entry_whose_name_and_fields_disagree_is_refused(tmp_path: Path) -> None:
    text = (EXAMPLE / "images.lock").read_text()
    wrong = text.replace('"version": "3.13.15"', '"version": "3.12.15"', 1)
    assert wrong != text
    message = _refused(_lock(tmp_path, wrong.encode()))
    assert "'cpython:3.12.15', not 'cpython:3.13.15'" in message
    arch = text.replace('"arch": "amd64"', '"arch": "arm64"', 1)
    assert "'linkerd-await:0.3.3:arm64', not 'linkerd-await:0.3.3:amd64'" in _refused(
        _lock(tmp_path, arch.encode())
    )


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bink_python", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.write_bytes(b"\xef\xbb\xbf" + b"[family\n"), "line 1, column 8: invalid TOML"),
        (lambda p: p.write_bytes(b'[family]\ntitle = "caf\xe9"\n'), "line 2, column 13"),
        (lambda p: p.write_bytes(b"a = " + b"[" * 50_000 + b"]" * 50_000), "nested too deeply"),
    ],
    ids=["fifo", "bom", "latin-1", "nested"],
)
def test_images_toml_faults_are_one_line_with_code_3(
    tmp_path: Path, make: object, says: str
) -> None:
    config = tmp_path / "images.toml"
    make(config)  # type: ignore[operator]
    proc = _cli("matrix", "--config", str(config))
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and str(config) in proc.stderr and says in proc.stderr


def test_images_toml_from_dev_zero_is_refused_unread() -> None:
    proc = _cli("matrix", "--config", "/dev/zero")
    assert proc.returncode == 3 and "not a regular file" in proc.stderr


def test_a_readme_that_is_not_text_is_one_line_with_code_3(tmp_path: Path) -> None:
    binary = tmp_path / "README.md"
    binary.write_bytes(bytes(range(256)))
    proc = _cli(
        "readme", "--check", "--readme", str(binary), "--config", str(EXAMPLE / "images.toml")
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "is not UTF-8" in proc.stderr


def _hostile_layout(tmp_path: Path, document: dict[str, object]) -> Path:
    """A layout whose ref 3.13 names a blob with a valid digest and the wrong shape."""
    ref = make_image(tmp_path, "oci", packages=BASE)
    layout = Layout(Path(ref.split(":")[1]))
    blob = layout.write_blob(json.dumps(document).encode())
    entry = Descriptor(
        MEDIA_INDEX, blob.digest, blob.size, annotations={ANNOTATION_REF_NAME: "3.13"}
    )
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry.to_json()]}
    layout.index_path.write_text(json.dumps(index))  # as a hostile writer would, unchecked
    return layout.path


@pytest.mark.parametrize(
    "document",
    [
        {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": "nope"},
        {"schemaVersion": 2, "manifests": [{"mediaType": 1, "digest": "x", "size": 1}]},
        {"schemaVersion": 2, "manifests": [{"digest": "sha256:00", "size": "big"}]},
    ],
    ids=["manifests-not-a-list", "media-type-not-a-string", "size-not-an-int"],
)
def test_a_layout_document_of_the_wrong_shape_is_one_line_in_every_command(
    tmp_path: Path, document: dict[str, object]
) -> None:
    layout = str(_hostile_layout(tmp_path, document))
    config = ["--config", str(EXAMPLE / "images.toml")]
    for argv in (
        ["verify", "3.13", "--layout", layout],
        ["layers", "3.13", "--arch", "amd64", "--layout", layout],
        ["sbom", "3.13", "--arch", "amd64", "--layout", layout],
        ["export", "3.13", "--format", "oci-archive", str(tmp_path / "x.tar"), "--layout", layout],
        ["push", "127.0.0.1:9/x", "3.13", "--dry-run", "--layout", layout],
        ["diff", f"oci:{layout}:3.13", f"oci:{layout}:3.13"],
    ):
        proc = _cli(*argv, *config)
        assert proc.returncode not in (0, 70), (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, (argv, proc.stderr)
