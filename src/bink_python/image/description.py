"""The image description: what one image of the family is, made once from images.toml.

Like apko's ``ImageConfiguration``: :func:`describe_image` turns a tag of the
:class:`~bink_python.family.config.Family` and an architecture into one frozen
:class:`ImageDescription`, and every stage reads it instead of knowing the answers
itself:

- **base** builds the user (name, UID, GID, home) it names, and the user is part of
  the base's cache key (:attr:`ImageDescription.base_spec`);
- **assemble** writes its ``env``, ``cmd``, ``default_user`` and :meth:`labels` into the
  image config (``build.py``);
- **base** writes the apt sources it names (:meth:`ImageDescription.apt_sources`,
  from the build's mirror settings: ``--mirror``, the mirror and image archive
  variables);
- **verify** expects exactly those (``bink_python.verify``).

Changing ``[family.user]`` in images.toml therefore changes the built base, its key,
the image config and what verify expects, together. What images.toml does not set
(``PATH``, ``LANG``, ``Cmd``) is settled here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base.spec import BaseSpec
from ..errors import BinkError, ConfigError
from ..family.config import Family, Tag, User
from ..host.apt import image_apt_sources
from ..host.arch import ARCHES, check_arch
from ..host.distro import Distro
from ..oci.types import Platform
from ..settings import Mirrors
from .assemble import LABEL_EOL, LABEL_STATUS, rfc3339

#: The image's ``PATH`` (the reference images' order).
IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The image's locale: C.UTF-8 exists in every base without locale packages.
IMAGE_LANG = "C.UTF-8"
#: What a container runs by default.
IMAGE_CMD = ("python3",)

#: Labels whose value comes from the build (time, VCS revision), not from images.toml.
BUILD_LABELS = ("org.opencontainers.image.created", "org.opencontainers.image.revision")


@dataclass(frozen=True)
class ImageDescription:
    """One image (one tag, one arch) as images.toml describes it."""

    tag: str
    version: str  # exact CPython version, "3.13.15"
    arch: str  # "amd64" | "arm64"
    variant: str  # "regular" | "distroless"
    distro: Distro
    user: User  # the family's unprivileged user
    eol: str  # "YYYY-MM", "" when the tag has none
    status: str
    components: tuple[tuple[str, str], ...]  # (name, path in the image)
    title: str  # label inputs from [family]
    summary: str
    source: str
    licenses: str
    vendor: str
    #: the build's archive mirrors (``--mirror``, the environment's, else apt's) and the
    #: image archive settings
    mirrors: Mirrors

    @property
    def distroless(self) -> bool:
        return self.variant == "distroless"

    @property
    def env(self) -> tuple[str, ...]:
        """The config ``Env``."""
        return (f"PATH={IMAGE_PATH}", f"LANG={IMAGE_LANG}", f"PYTHON_VERSION={self.version}")

    @property
    def cmd(self) -> tuple[str, ...]:
        return IMAGE_CMD

    @property
    def default_user(self) -> str:
        """The config ``User``: root (empty) for regular images, so derived images can
        install packages; ``uid:gid`` of the family's user for distroless."""
        return f"{self.user.uid}:{self.user.gid}" if self.distroless else ""

    @property
    def multiarch(self) -> str:
        return ARCHES[self.arch].gnu

    @property
    def machine(self) -> int:
        return ARCHES[self.arch].elf_machine

    @property
    def platform(self) -> Platform:
        return Platform.for_arch(self.arch)

    @property
    def base_spec(self) -> BaseSpec:
        """The base this image is built on (the user is part of it and of its key)."""
        return BaseSpec(distro=self.distro, arch=self.arch, variant=self.variant, user=self.user)

    def apt_sources(self) -> str:
        """The ``/etc/apt/sources.list`` of a regular image (image archive settings, else
        the build mirror, ``--mirror`` included): what the base writes, what verify expects."""
        return image_apt_sources(self.distro, self.arch, self.mirrors)

    def labels(self, *, epoch: int, revision: str) -> dict[str, str]:
        """The labels (and manifest annotations) of the image built at ``epoch``."""
        flavour = " (distroless, evaluation)" if self.distroless else ""
        prefix = "org.opencontainers.image."
        return {
            prefix + "title": f"{self.title} {self.tag}",
            prefix + "description": (
                f"{self.summary}: CPython {self.version} on {self.distro.name}{flavour}"
            ),
            prefix + "version": self.version,
            prefix + "created": rfc3339(epoch),
            prefix + "source": self.source,
            prefix + "revision": revision,
            prefix + "licenses": self.licenses,
            prefix + "vendor": self.vendor,
            prefix + "base.name": f"{self.distro.os}:{self.distro.suite}",
            LABEL_EOL: self.eol,
            LABEL_STATUS: self.status,
        }

    def fixed_labels(self) -> dict[str, str]:
        """The labels that depend on images.toml only (what verify can expect)."""
        labels = self.labels(epoch=0, revision="")
        return {k: v for k, v in labels.items() if k not in BUILD_LABELS}


def describe_image(
    family: Family,
    tag: Tag,
    arch: str,
    *,
    error: type[BinkError] = ConfigError,
    mirrors: Mirrors,
) -> ImageDescription:
    """The description of ``tag``'s ``arch`` image (``error`` for an unknown arch), built
    with the archive ``mirrors``."""
    check_arch(arch, error)
    return ImageDescription(
        tag=tag.name,
        version=tag.version,
        arch=arch,
        variant=tag.variant,
        distro=tag.distro,
        user=family.user,
        eol=str(tag.eol) if tag.eol is not None else "",
        status=tag.status,
        components=tuple((c, family.component(c).path) for c in tag.components),
        title=family.title,
        summary=family.description,
        source=family.source,
        licenses=family.licenses,
        vendor=family.vendor,
        mirrors=mirrors,
    )
