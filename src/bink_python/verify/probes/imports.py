"""Standard-library modules that need system libraries: each imports and works.

``argv[0]`` is a JSON object of options: ``find_library`` (bool) makes
``ctypes.util.find_library("c")`` returning anything but ``libc.so.6`` a failure.
Result: ``{module: [ok, detail]}``.

Each probe names the modules it needs and receives them imported: the import is part of
what a probe tests, so it happens inside that probe's own ``try`` and a module that fails
to import fails its own probe only.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

WANT: dict[str, object] = {}

#: a probe gets its modules by name and returns a one-line detail
Probe = Callable[[dict[str, Any]], str]


def t_ssl(m: dict[str, Any]) -> str:
    return str(m["ssl"].OPENSSL_VERSION)


def t_sqlite3(m: dict[str, Any]) -> str:
    con = m["sqlite3"].connect(":memory:")
    assert con.execute("select 40 + 2").fetchone() == (42,)
    return "SQLite " + str(m["sqlite3"].sqlite_version)


def t_ctypes(m: dict[str, Any]) -> str:
    libc = m["ctypes"].CDLL("libc.so.6")
    assert libc.strlen(b"bink") == 4
    found = m["ctypes.util"].find_library("c")
    if WANT.get("find_library") and found != "libc.so.6":
        raise AssertionError(f"ctypes.util.find_library('c') returned {found!r}")
    return f"find_library('c') -> {found}"


def _round_trip(codec: ModuleType) -> str:
    assert codec.decompress(codec.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"


def t_zlib(m: dict[str, Any]) -> str:
    _round_trip(m["zlib"])
    return str(m["zlib"].ZLIB_RUNTIME_VERSION)


def t_readline(m: dict[str, Any]) -> str:
    return str(getattr(m["readline"], "_READLINE_LIBRARY_VERSION", "ok"))


def t_pyexpat(m: dict[str, Any]) -> str:
    return str(m["pyexpat"].EXPAT_VERSION)


def t_uuid(m: dict[str, Any]) -> str:
    uuid = m["uuid"]
    assert uuid.uuid1().version == 1 and uuid.uuid4().version == 4
    return "ok"


def t_decimal(m: dict[str, Any]) -> str:
    decimal = m["decimal"]
    assert decimal.Decimal("1.1") + decimal.Decimal("2.2") == decimal.Decimal("3.3")
    return str(decimal.__libmpdec_version__)


def t_zoneinfo(m: dict[str, Any]) -> str:
    zone = m["zoneinfo"].ZoneInfo("America/New_York")
    datetime = m["datetime"]
    offset = datetime.datetime(2024, 1, 15, 12, tzinfo=zone).utcoffset()
    assert offset == datetime.timedelta(hours=-5), offset
    return "America/New_York -05:00 in January"


def t_hashlib(m: dict[str, Any]) -> str:
    hashlib = m["hashlib"]
    names = ["md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "shake_128"]
    missing = [n for n in names if n not in hashlib.algorithms_available]
    assert not missing, f"missing algorithms {missing}"
    for n in names:
        hashlib.new(n, b"bink")
    return ", ".join(names)


def imported(m: dict[str, Any]) -> str:
    """For modules whose successful import is the whole test."""
    del m
    return "ok"


def round_trip(m: dict[str, Any]) -> str:
    """For a compression module (a probe's only one): it compresses and decompresses."""
    (codec,) = m.values()
    return _round_trip(codec)


#: (result name, modules to import in order, probe)
TESTS: list[tuple[str, tuple[str, ...], Probe]] = [
    ("ssl", ("ssl",), t_ssl),
    ("sqlite3", ("sqlite3",), t_sqlite3),
    ("ctypes", ("ctypes", "ctypes.util"), t_ctypes),
    ("lzma", ("lzma",), round_trip),
    ("bz2", ("bz2",), round_trip),
    ("zlib", ("zlib",), t_zlib),
    ("readline", ("readline",), t_readline),
    ("curses", ("curses",), imported),
    ("dbm.gnu", ("dbm.gnu",), imported),
    ("pyexpat", ("pyexpat",), t_pyexpat),
    ("uuid", ("_uuid", "uuid"), t_uuid),
    ("decimal", ("_decimal", "decimal"), t_decimal),
    ("zoneinfo", ("datetime", "zoneinfo"), t_zoneinfo),
    ("hashlib", ("hashlib", "_hashlib"), t_hashlib),
]

#: from 3.14 the standard library has zstd, built against libzstd
ZSTD = ("_zstd", ("compression.zstd",), round_trip)


def main(argv: list[str]) -> dict[str, object]:
    WANT.update(json.loads(argv[0]) if argv else {})
    tests = list(TESTS)
    if sys.version_info >= (3, 14):
        tests.append(ZSTD)
    results: dict[str, object] = {}
    for name, modules, probe in tests:
        try:
            loaded = {module: importlib.import_module(module) for module in modules}
            results[name] = [True, str(probe(loaded))]
        except BaseException as exc:
            results[name] = [False, f"{type(exc).__name__}: {exc}"]
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
