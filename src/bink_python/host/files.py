"""Reading a file a user hands the tool: a regular file of bounded size, decoded and
parsed with errors that name the file and the line, or one clear refusal.

images.toml, images.lock, the README and the OCI layout's JSON documents are all read
here, so a FIFO never blocks, ``/dev/zero`` is never read without end, a byte that is not
UTF-8 is located by line and column, and a parser's recursion, number-size or shape
failure becomes the input's own error (``error``: the exit code of that kind of input)
rather than an internal error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from ..errors import BinkError

#: The largest text document read (images.toml, images.lock, a README, an OCI JSON blob).
MAX_TEXT = 16 << 20

_BOM = b"\xef\xbb\xbf"


def _where(data: bytes, offset: int) -> str:
    """``line L, column C`` of the byte ``offset`` in ``data`` (both counted from 1)."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def read_bytes(path: Path, *, what: str, error: type[BinkError], limit: int = MAX_TEXT) -> bytes:
    """The bytes of the regular file ``path`` (``what`` it should be, for messages)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: not found (expected {what})") from None
    except OSError as exc:
        reason = "a directory" if exc.errno == errno.EISDIR else exc.strerror
        raise error(f"{path}: cannot be read ({reason}; expected {what})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise error(f"{path}: {kind} (expected {what})")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot be read ({exc.strerror}; expected {what})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit >> 20} MiB (expected {what})")
    return data


def decode(data: bytes, path: Path, *, error: type[BinkError]) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped)."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise error(f"{path}: {_where(data, exc.start)}: byte 0x{bad:02x} is not UTF-8") from None


def read_text(path: Path, *, what: str, error: type[BinkError], limit: int = MAX_TEXT) -> str:
    """The UTF-8 text of the regular file ``path``."""
    return decode(read_bytes(path, what=what, error=error, limit=limit), path, error=error)


def _no_duplicates(path: Path, error: type[BinkError]) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise error(f"{path}: the key {key!r} appears twice in one object")
            out[key] = value
        return out

    return pairs


def parse_json(text: str, path: Path, *, error: type[BinkError]) -> Any:
    """JSON ``text`` of ``path``: duplicate keys refused; every failure one line."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(path, error))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be {path.name}") from None
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        raise error(f"{path}: {str(exc).splitlines()[0]}") from None


def parse_toml(text: str, path: Path, *, error: type[BinkError]) -> dict[str, Any]:
    """TOML ``text`` of ``path``; every failure one line that names where."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).splitlines()[0]
        if message.endswith(")") and " (at " in message:
            message, _, at = message[:-1].rpartition(" (at ")
            raise error(f"{path}: {at}: invalid TOML ({message})") from None
        raise error(f"{path}: invalid TOML ({message})") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be {path.name}") from None
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        raise error(f"{path}: {str(exc).splitlines()[0]}") from None
