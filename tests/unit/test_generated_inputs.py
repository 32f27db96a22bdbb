"""Over ten thousand generated bad inputs, through the commands that read them.

images.toml, images.lock, the README and an OCI layout's documents, each fed to the tool
as raw bytes, as mutations of the real file (bytes flipped, cut, inserted) and, for the
two TOML/JSON files, as every field set to each of a table of bad values. Every run
must end within its time limit, never with exit 70 (an internal error) or a traceback,
and a failure is one line that names the file it read.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bink_python.__main__ import main
from tests.support.images import BASE, make_image

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"
SEED = 35
#: Seconds one command may take on one input.
LIMIT = 10

#: Values every ``key = value`` line of images.toml is set to in turn (TOML source text).
BAD_TOML_VALUES = (
    '""',
    '" "',
    '"\\n"',
    '"a\\nb"',
    '"\\u0000"',
    '"\\t"',
    '"x" "y"',
    "0",
    "-1",
    "1e309",
    "99999999999999999999999",
    "true",
    "[]",
    "[[]]",
    "{}",
    '["a"]',
    '"../../etc"',
    '"/"',
    '"0000-01"',
    '"9999-12"',
    '"2029-13"',
    '"2029-4"',
    '"3.13"',
    '"3.13.15rc1"',
    '"3.13.15\\n"',
    '"3.99.1"',
    '"debian"',
    '"ubuntu"',
    '"alpine"',
    '"distroless"',
    '"evaluation"',
    '"amd64"',
    '"s390x"',
    '"apps:x"',
    '"-1"',
    '"' + "x" * 5000 + '"',
    "1979-05-27T07:32:00Z",
    "nan",
    "inf",
    '"\\u202e"',
    "'raw\\nstring'",
)
#: Values every field of every images.lock artifact (and the top level) is set to (JSON).
BAD_JSON_VALUES: tuple[object, ...] = (
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    " ",
    "\n",
    "x\ny",
    "\u0000",
    [],
    [None],
    {},
    {"a": 1},
    "cpython:3.13.15",
    "f" * 64,
    "F" * 64,
    "sha256:" + "f" * 64,
    "../../etc/passwd",
    "http://[::1",
    "debian:pool/../../x",
    "9" * 5000,
)


@dataclass(frozen=True)
class Outcome:
    code: int
    err: str


class Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


@contextlib.contextmanager
def _limit(seconds: int) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run(argv: list[str]) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _limit(LIMIT):
        code = main(argv)
    return Outcome(code, err.getvalue())


def _mutations(rng: random.Random, good: bytes, count: int) -> Iterator[bytes]:
    """Raw bytes, and the real file with bytes flipped, cut, inserted or repeated."""
    for i in range(count):
        kind = i % 6
        if kind == 0:
            yield rng.randbytes(rng.randint(0, 4096))
        elif kind == 1:
            data = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif kind == 2:
            yield good[: rng.randrange(len(good))]
        elif kind == 3:
            at = rng.randrange(len(good))
            yield (
                good[:at]
                + rng.choice([b"\xff", b"\x00", b"\xef\xbb\xbf", b"[", b"{", b'"'])
                + good[at:]
            )
        elif kind == 4:
            start = rng.randrange(len(good))
            end = min(len(good), start + rng.randint(1, 200))
            yield good[:start] + good[end:]
        else:
            at = rng.randrange(len(good))
            yield good[:at] + good[at : at + 64] * rng.randint(2, 50) + good[at:]


def _toml_fields(good: str) -> Iterator[bytes]:
    """images.toml with each ``key = value`` line set to each bad value in turn."""
    lines = good.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*[\w.-]+\s*=\s*)(.+)$", line)
        if match is None:
            continue
        for value in BAD_TOML_VALUES:
            yield "".join([*lines[:i], f"{match.group(1)}{value}\n", *lines[i + 1 :]]).encode()


def _lock_fields(good: dict[str, object]) -> Iterator[bytes]:
    """images.lock with each field (top level and of each artifact) set to each bad value,
    and each field removed."""

    def variants(doc: dict[str, object], path: tuple[str, ...]) -> Iterator[dict[str, object]]:
        for key in list(doc):
            for value in (*BAD_JSON_VALUES, ...):
                new = json.loads(json.dumps(good))
                target = new
                for step in path:
                    target = target[step]
                if value is ...:
                    del target[key]
                else:
                    target[key] = value
                yield new

    yield from (json.dumps(v).encode() for v in variants(good, ()))
    artifacts = good["artifacts"]
    assert isinstance(artifacts, dict)
    for name in artifacts:
        yield from (json.dumps(v).encode() for v in variants(artifacts[name], ("artifacts", name)))


def _check(kind: str, outcome: Outcome, named: Path, failures: list[str]) -> None:
    err = outcome.err
    if outcome.code == 70 or "Traceback" in err:
        failures.append(f"{kind}: exit {outcome.code}: {err[-300:]!r}")
    elif outcome.code not in (0, 1) and (err.count("\n") != 1 or str(named) not in err):
        failures.append(f"{kind}: exit {outcome.code}, not one line naming {named}: {err!r}")


def _feed(
    kind: str,
    inputs: Iterator[bytes],
    path: Path,
    argv: list[str],
    failures: list[str],
    named: Path | None = None,
) -> int:
    """Write each input to ``path`` and run ``argv``; its errors must name ``named``
    (default ``path``: the file; the layout for a document inside one)."""
    count = 0
    for data in inputs:
        path.write_bytes(data)
        try:
            outcome = _run(argv)
        except Hang:
            failures.append(f"{kind}: no answer within {LIMIT} s for {data[:80]!r}")
            continue
        _check(kind, outcome, named or path, failures)
        count += 1
    return count


def test_ten_thousand_bad_inputs_each_get_one_line_and_their_own_code(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    failures: list[str] = []
    counted = 0

    config = tmp_path / "family" / "images.toml"
    config.parent.mkdir()
    good_toml = (EXAMPLE / "images.toml").read_bytes()
    good_lock = (EXAMPLE / "images.lock").read_bytes()
    (config.parent / "images.lock").write_bytes(good_lock)
    matrix = ["matrix", "--config", str(config)]
    counted += _feed("images.toml", _mutations(rng, good_toml, 2800), config, matrix, failures)
    counted += _feed("images.toml", _toml_fields(good_toml.decode()), config, matrix, failures)

    config.write_bytes(good_toml)
    lock = config.parent / "images.lock"
    check = ["lock", "--check", "--config", str(config)]
    counted += _feed("images.lock", _mutations(rng, good_lock, 2800), lock, check, failures)
    fields = _lock_fields(json.loads(good_lock))
    counted += _feed("images.lock", fields, lock, check, failures)
    lock.write_bytes(good_lock)

    readme = tmp_path / "README.md"
    good_readme = (REPO / "README.md").read_bytes()
    argv = ["readme", "--check", "--readme", str(readme), "--config", str(config)]
    counted += _feed("README", _mutations(rng, good_readme, 1200), readme, argv, failures)

    ref = make_image(tmp_path, "oci", packages=BASE)
    layout = Path(ref.split(":")[1])
    index = layout / "index.json"
    good_index = index.read_bytes()
    argv = ["layers", "3.13", "--arch", "amd64", "--layout", str(layout), "--config", str(config)]
    inputs = _mutations(rng, good_index, 1500)
    counted += _feed("index.json", inputs, index, argv, failures, named=layout)

    assert counted >= 10_000, counted
    assert failures == [], f"{len(failures)} of {counted}:\n" + "\n".join(failures[:20])
