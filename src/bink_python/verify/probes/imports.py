"""Standard-library modules that need system libraries: each imports and works.

``argv[0]`` is a JSON object of options: ``find_library`` (bool) makes
``ctypes.util.find_library("c")`` returning anything but ``libc.so.6`` a failure.
Result: ``{module: [ok, detail]}``.

Each probe imports its module inside itself: a module that fails to import must fail its
own probe only, and that import is what the probe tests.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

WANT: dict[str, object] = {}


def t_ssl() -> str:
    import ssl

    return ssl.OPENSSL_VERSION


def t_sqlite3() -> str:
    import sqlite3

    con = sqlite3.connect(":memory:")
    assert con.execute("select 40 + 2").fetchone() == (42,)
    return "SQLite " + sqlite3.sqlite_version


def t_ctypes() -> str:
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL("libc.so.6")
    assert libc.strlen(b"bink") == 4
    found = ctypes.util.find_library("c")
    if WANT.get("find_library") and found != "libc.so.6":
        raise AssertionError(f"ctypes.util.find_library('c') returned {found!r}")
    return f"find_library('c') -> {found}"


def t_lzma() -> str:
    import lzma

    assert lzma.decompress(lzma.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"


def t_bz2() -> str:
    import bz2

    assert bz2.decompress(bz2.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"


def t_zlib() -> str:
    import zlib

    assert zlib.decompress(zlib.compress(b"bink" * 100)) == b"bink" * 100
    return zlib.ZLIB_RUNTIME_VERSION


def t_readline() -> str:
    import readline

    return str(getattr(readline, "_READLINE_LIBRARY_VERSION", "ok"))


def t_curses() -> str:
    import curses

    del curses
    return "ok"


def t_dbm() -> str:
    import dbm.gnu

    del dbm
    return "ok"


def t_pyexpat() -> str:
    import pyexpat

    return pyexpat.EXPAT_VERSION


def t_uuid() -> str:
    import _uuid  # type: ignore[import-not-found]
    import uuid

    del _uuid
    assert uuid.uuid1().version == 1 and uuid.uuid4().version == 4
    return "ok"


def t_decimal() -> str:
    import _decimal
    import decimal

    del _decimal
    assert decimal.Decimal("1.1") + decimal.Decimal("2.2") == decimal.Decimal("3.3")
    return str(decimal.__libmpdec_version__)


def t_zoneinfo() -> str:
    import datetime
    import zoneinfo

    zone = zoneinfo.ZoneInfo("America/New_York")
    offset = datetime.datetime(2024, 1, 15, 12, tzinfo=zone).utcoffset()
    assert offset == datetime.timedelta(hours=-5), offset
    return "America/New_York -05:00 in January"


def t_hashlib() -> str:
    import hashlib

    names = ["md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "shake_128"]
    missing = [n for n in names if n not in hashlib.algorithms_available]
    assert not missing, f"missing algorithms {missing}"
    for n in names:
        hashlib.new(n, b"bink")
    import _hashlib

    del _hashlib
    return ", ".join(names)


def t_zstd() -> str:
    from compression import zstd  # type: ignore[import-not-found]

    data: bytes = zstd.decompress(zstd.compress(b"bink" * 100))
    assert data == b"bink" * 100
    return "ok"


TESTS: list[tuple[str, Callable[[], str]]] = [
    ("ssl", t_ssl),
    ("sqlite3", t_sqlite3),
    ("ctypes", t_ctypes),
    ("lzma", t_lzma),
    ("bz2", t_bz2),
    ("zlib", t_zlib),
    ("readline", t_readline),
    ("curses", t_curses),
    ("dbm.gnu", t_dbm),
    ("pyexpat", t_pyexpat),
    ("uuid", t_uuid),
    ("decimal", t_decimal),
    ("zoneinfo", t_zoneinfo),
    ("hashlib", t_hashlib),
]


def main(argv: list[str]) -> dict[str, object]:
    WANT.update(json.loads(argv[0]) if argv else {})
    tests = list(TESTS)
    if sys.version_info >= (3, 14):
        tests.append(("_zstd", t_zstd))
    results: dict[str, object] = {}
    for name, fn in tests:
        try:
            results[name] = [True, str(fn())]
        except BaseException as exc:
            results[name] = [False, f"{type(exc).__name__}: {exc}"]
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
