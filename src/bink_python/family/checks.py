"""images.toml checks: value and key checks whose errors name the file and where in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..host.arch import ARCHES
from ..oci.compression import ALGORITHMS

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Checker:
    """Builds one-line error messages that name the file and where in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {type(value).__name__}")
        return value

    def keys(
        self, table: dict[str, Any], where: str, required: set[str], optional: set[str]
    ) -> None:
        unknown = sorted(set(table) - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise self.fail(where, f"unknown key {unknown[0]!r} (allowed: {allowed})")
        missing = sorted(required - set(table))
        if missing:
            raise self.fail(where, f"missing required key {missing[0]!r}")

    def string(self, table: dict[str, Any], key: str, where: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.fail(
                f"{where}: field {key!r}", f"expected a non-empty string, got {value!r}"
            )
        control = _CONTROL.search(value)
        if control:
            # every string reaches a label, a README cell, a message or a path
            raise self.fail(
                f"{where}: field {key!r}",
                f"control character {control.group()!r} in {value!r} (expected one line of text)",
            )
        return value

    def absolute_path(self, table: dict[str, Any], key: str, where: str) -> str:
        value = self.string(table, key, where)
        if not value.startswith("/"):
            raise self.fail(f"{where}: field {key!r}", f"expected an absolute path, got {value!r}")
        return value

    def integer(self, table: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int:
        value = table[key]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise self.fail(
                f"{where}: field {key!r}", f"expected an integer {lo}-{hi}, got {value!r}"
            )
        return value

    def strings(self, table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}: field {key!r}", f"expected a list of strings, got {value!r}")
        if len(set(value)) != len(value):
            raise self.fail(f"{where}: field {key!r}", f"duplicate entries in {value!r}")
        return tuple(value)

    def arches(self, table: dict[str, Any], where: str) -> tuple[str, ...]:
        """A field listing architectures: at least one, each one we build."""
        arches = self.strings(table, "arches", where)
        if not arches:
            raise self.fail(f"{where}: field 'arches'", "expected at least one architecture")
        for arch in arches:
            if arch not in ARCHES:
                raise self.fail(
                    f"{where}: field 'arches'",
                    f"unknown architecture {arch!r} (expected one of {', '.join(ARCHES)})",
                )
        return arches

    def compression(self, fam: dict[str, Any]) -> tuple[str, ...]:
        """``compression = ["gzip"]`` (default), ``["zstd"]`` or ``["gzip", "zstd"]``."""
        where = "[family]: field 'compression'"
        value = self.strings(fam, "compression", "[family]")
        if not value:
            raise self.fail(where, 'expected at least one of "gzip", "zstd"')
        for name in value:
            if name not in ALGORITHMS:
                raise self.fail(where, f"unknown compression {name!r} (expected gzip or zstd)")
        if len(value) > 1 and value[0] != "gzip":
            raise self.fail(
                where,
                "list gzip first: clients that cannot choose by compression take the first "
                'instance of their platform (expected ["gzip", "zstd"])',
            )
        return value
