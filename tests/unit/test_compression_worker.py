"""Large gzip layers are compressed in a child process: the same bytes as libdeflate in
this process, and a SIGTERM or Ctrl-C mid-compression is handled at once (libdeflate holds
the GIL for the whole buffer, so in-process compression delayed it by seconds)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import deflate

from bink_python.oci.compression import GZIP, GZIP_IN_PROCESS, GZIP_LEVEL, compress_file
from bink_python.store.store import sha256_file


def _text(path: Path, size: int) -> Path:
    """``size`` bytes of text that compresses like a layer (slowly, at level 12)."""
    rng = random.Random(7)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 12))) for _ in range(5000)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=1000)) + b"\n"
    path.write_bytes(bytes(out[:size]))
    return path


def test_the_worker_writes_the_bytes_libdeflate_writes_in_process(tmp_path: Path) -> None:
    source = _text(tmp_path / "layer.tar", GZIP_IN_PROCESS + 123_457)
    digest, size, source_digest = compress_file(source, tmp_path / "layer.gz", GZIP)
    expected = bytes(deflate.gzip_compress(source.read_bytes(), GZIP_LEVEL))
    assert (tmp_path / "layer.gz").read_bytes() == expected
    assert (digest, size) == ("sha256:" + sha256_file(tmp_path / "layer.gz"), len(expected))
    assert source_digest == "sha256:" + sha256_file(source)


DRIVER = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    from bink_python.host import proc
    from bink_python.oci.compression import compress_file

    def stop(signum, frame):
        if not proc.hold_interrupt():
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        compress_file(Path(sys.argv[1]), Path(sys.argv[2]), "gzip")
    except KeyboardInterrupt:
        sys.exit(143)
    """
)


def _workers(source: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and str(source) in cmdline and "deflate" in cmdline:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def test_sigterm_mid_compression_ends_within_two_seconds(tmp_path: Path) -> None:
    source = _text(tmp_path / "layer.tar", 48 << 20)
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(source), str(tmp_path / "layer.gz")],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not _workers(source) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _workers(source), "the compression never started in a worker"
    time.sleep(0.5)  # well inside the compression
    sent = time.monotonic()
    child.terminate()
    code = child.wait(timeout=30)
    took = time.monotonic() - sent
    assert code == 143, child.stderr.read() if child.stderr else ""
    assert took < 2.0, f"stopped {took:.1f} s after SIGTERM"
    assert _workers(source) == []
