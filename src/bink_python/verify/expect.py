"""What one image must be: the expectation every check compares the image with."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Family, Tag
from ..distro import ARCHES, check_arch
from ..errors import VerifyError
from ..layout import Platform


@dataclass(frozen=True)
class Expectation:
    """What one image (one tag, one arch) must be, derived from images.toml."""

    tag: str
    version: str  # exact CPython version, "3.13.15"
    arch: str  # "amd64" | "arm64"
    variant: str  # "regular" | "distroless"
    user_name: str  # the apps user
    uid: int
    gid: int
    home: str
    eol: str  # "YYYY-MM", "" when the tag has none
    status: str
    components: tuple[tuple[str, str], ...] = ()  # (name, path in the image)

    @classmethod
    def for_tag(cls, family: Family, tag: Tag, arch: str) -> Expectation:
        check_arch(arch, VerifyError)
        return cls(
            tag=tag.name,
            version=tag.version,
            arch=arch,
            variant=tag.variant,
            user_name=family.user.name,
            uid=family.user.uid,
            gid=family.user.gid,
            home=family.user.home,
            eol=str(tag.eol) if tag.eol is not None else "",
            status=tag.status,
            components=tuple((c, family.component(c).path) for c in tag.components),
        )

    @property
    def distroless(self) -> bool:
        return self.variant == "distroless"

    @property
    def default_user(self) -> str:
        """The config ``User``: root (empty) for regular images, ``uid:gid`` for distroless."""
        return f"{self.uid}:{self.gid}" if self.distroless else ""

    @property
    def multiarch(self) -> str:
        return ARCHES[self.arch]["gnu"]

    @property
    def machine(self) -> int:
        return int(ARCHES[self.arch]["elf_machine"])

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def platform(self) -> Platform:
        return Platform.for_arch(self.arch)
