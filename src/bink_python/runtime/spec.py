"""What a runtime is: the spec of one CPython build, its profiles, and the built result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..family.versions import parse_cpython_version
from ..host.arch import check_arch
from ..host.distro import Distro
from ..oci.types import is_sha256_hex
from ..store.store import Built

PROFILES = ("release", "fast")


@dataclass(frozen=True)
class RuntimeSpec:
    version: str  # "3.13.15"
    source_sha256: str
    distro: Distro
    arch: str  # "amd64" | "arm64"
    profile: str = "release"  # "release" | "fast"
    pgo: bool | None = None  # None: PGO for release builds (the cross builds' profile under qemu)
    #: BOLT after PGO (amd64 release builds of 3.12+ with llvm-bolt): off, as it measured slower.
    bolt: bool = False

    def minor(self) -> str:
        """``3.13`` for ``3.13.15``."""
        return ".".join(self.version.split(".")[:2])

    def version_tuple(self) -> tuple[int, int, int]:
        parsed = parse_cpython_version(self.version)
        if parsed is None:
            raise UsageError(f"bad CPython version {self.version!r}: expected X.Y.Z, e.g. 3.13.15")
        return parsed.major, parsed.minor, parsed.patch

    def validate(self) -> None:
        self.version_tuple()
        check_arch(self.arch, UsageError)
        if self.profile not in PROFILES:
            raise UsageError(
                f"unknown runtime profile {self.profile!r}: expected one of {', '.join(PROFILES)}"
            )
        if self.profile == "fast" and (self.pgo or self.bolt):
            raise UsageError(
                "the fast profile builds without PGO or BOLT: use --profile release for them"
            )
        if not is_sha256_hex(self.source_sha256):
            raise UsageError(f"bad source sha256 {self.source_sha256!r}: expected 64 hex digits")


@dataclass(frozen=True)
class RuntimeResult(Built):
    spec: RuntimeSpec
    tarball: Path
