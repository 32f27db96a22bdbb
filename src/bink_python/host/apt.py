"""Apt sources: the archive suites a base or build root is built from, the list regular
images get, and the state of the archive (the ``InRelease`` each suite serves).

The build reads the archive where this machine reaches it (``--mirror``, else the
configured mirror, see :mod:`bink_python.host.mirrors`); the images name the image
archive settings, else that same build mirror. Base, build root, the image
description and verify all read these functions, so they agree on one list.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..errors import BuildError
from ..settings import Mirrors
from . import mirrors
from .distro import Distro

_URL_TIMEOUT = 20.0


@dataclass(frozen=True)
class ArchiveSource:
    """One apt source line for the build: URI and suite."""

    uri: str
    suite: str


def archive_sources(distro: Distro, arch: str, settings: Mirrors) -> list[ArchiveSource]:
    """The three suites a base is built from (release, updates, security)."""
    if distro.os == "debian":
        main = mirrors.debian_mirror(settings)
        security = mirrors.debian_security_mirror(settings)
        return [
            ArchiveSource(main, distro.suite),
            ArchiveSource(main, f"{distro.suite}-updates"),
            ArchiveSource(security, f"{distro.suite}-security"),
        ]
    if distro.os == "ubuntu":
        if arch == "amd64":
            main = mirrors.ubuntu_mirror(settings)
        else:
            main = mirrors.ubuntu_ports_mirror(settings)
        return [
            ArchiveSource(main, s)
            for s in (distro.suite, f"{distro.suite}-updates", f"{distro.suite}-security")
        ]
    raise BuildError(f"no base recipe for OS {distro.os!r}")


def image_sources(
    distro: Distro, arch: str, build: list[ArchiveSource], settings: Mirrors
) -> tuple[list[ArchiveSource], tuple[str, ...]]:
    """The apt sources written into a regular image, and the settings left unset.

    Same suites as the build (release, updates, security), at the image archive
    addresses (:func:`bink_python.host.mirrors.image_archive`); a suite whose setting is unset keeps
    the build mirror, and its variable is returned so the caller can warn.
    """
    out: list[ArchiveSource] = []
    unset: set[str] = set()
    for source in build:
        security = source.suite.endswith("-security")
        uri = mirrors.image_archive(settings, distro.os, arch, security=security)
        if uri is None:
            unset.add(mirrors.image_archive_variable(distro.os, arch, security=security))
            uri = source.uri
        out.append(ArchiveSource(uri, source.suite))
    return out, tuple(sorted(unset))


def image_apt_sources(distro: Distro, arch: str, settings: Mirrors) -> str:
    """The ``/etc/apt/sources.list`` a regular image of (distro, arch) built with the
    mirror ``settings`` gets (image archive settings, else the build mirror): what the
    base writes and what verify's ``apt-sources`` check expects."""
    return image_apt_list(distro, arch, archive_sources(distro, arch, settings), settings)[0]


def image_apt_list(
    distro: Distro, arch: str, build: list[ArchiveSource], settings: Mirrors
) -> tuple[str, tuple[str, ...]]:
    """The image's sources.list for the ``build`` sources, and the settings left unset."""
    in_image, unset = image_sources(distro, arch, build, settings)
    return sources_list(distro, in_image), unset


def sources_list(distro: Distro, sources: list[ArchiveSource]) -> str:
    """``/etc/apt/sources.list`` naming ``sources`` (one-line format)."""
    components = " ".join(distro.components)
    return "".join(f"deb {s.uri} {s.suite} {components}\n" for s in sources)


def mirror_state(sources: list[ArchiveSource]) -> dict[str, str]:
    """sha256 of each suite's ``InRelease`` (what apt will resolve against), by suite."""
    state: dict[str, str] = {}
    for source in sources:
        url = f"{source.uri}/dists/{source.suite}/InRelease"
        try:
            with urllib.request.urlopen(url, timeout=_URL_TIMEOUT) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BuildError(
                f"archive unreachable: cannot fetch {url} ({reason}); check the mirror "
                f"configuration (apt sources or BINK_PYTHON_*_MIRROR) and the network"
            ) from exc
        state[source.suite] = hashlib.sha256(data).hexdigest()
    return state
