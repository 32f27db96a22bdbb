"""What a base is: (OS, release, arch, variant, user, extra packages), validated.

Its own module so the builders of both variants (base.py, distroless.py) read it
without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BuildError
from ..family.config import User
from ..host.arch import check_arch
from ..host.distro import Distro

VARIANTS = ("regular", "distroless")


@dataclass(frozen=True)
class BaseSpec:
    distro: Distro
    arch: str  # "amd64" | "arm64"
    variant: str  # "regular" | "distroless"
    user: User  # the family's unprivileged user ([family.user] of images.toml)
    extra_packages: tuple[str, ...] = ()

    def validate(self) -> None:
        check_arch(self.arch, BuildError, "base arch")
        if self.variant not in VARIANTS:
            raise BuildError(
                f"unknown base variant {self.variant!r}: expected one of {', '.join(VARIANTS)}"
            )
        for pkg in self.extra_packages:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", pkg):
                raise BuildError(f"invalid extra package name {pkg!r} for the base")

    @property
    def packages(self) -> tuple[str, ...]:
        """The packages requested on top of minbase, sorted and unique."""
        return tuple(sorted({*self.distro.runtime_packages, *self.extra_packages}))

    @property
    def label(self) -> str:
        return f"{self.distro.name} {self.arch} {self.variant}"
