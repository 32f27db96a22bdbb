"""Distribution archive mirrors, read from the machine's own apt configuration.

No archive host name is written in this repository: the Debian mirror comes from
``--mirror``/``$BINK_PYTHON_DEBIAN_MIRROR`` (the settings'
:class:`~bink_python.settings.Mirrors`) or from apt's sources (deb822 ``*.sources``
files and one-line ``*.list`` files); likewise for Ubuntu with
``$BINK_PYTHON_UBUNTU_MIRROR``. Trust never rests on the host: packages are
verified by apt against the distribution keyring, tarballs by sha256.

The *build* mirror is where this machine fetches packages (often a proxy or a local
mirror). The *image archive* is what regular images name in their own apt sources for
the users who ``apt-get install`` in derived images: a separate setting
(:func:`image_archive`), from the environment only, since no archive host may be
written into this repository. Unset, images name the build mirror and the build warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError
from ..settings import IMAGE_ARCHIVE_ENV, Mirrors

APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _parse_deb822(text: str) -> list[AptSource]:
    sources: list[AptSource] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(uri.rstrip("/"), suites, components))
    return sources


def _parse_one_line(text: str) -> list[AptSource]:
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words.pop(0) if words else None
        if len(words) >= 2:
            sources.append(AptSource(words[0].rstrip("/"), (words[1],), tuple(words[2:])))
    return sources


def apt_sources(
    sources_list: Path = APT_SOURCES, sources_dir: Path = APT_SOURCES_DIR
) -> list[AptSource]:
    """Every enabled binary ``deb`` source apt is configured with, in apt's order."""
    found: list[AptSource] = []
    if sources_list.is_file():
        found += _parse_one_line(sources_list.read_text(errors="replace"))
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".list":
                found += _parse_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += _parse_deb822(path.read_text(errors="replace"))
    return found


_DEBIAN_SUITES = {
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "unstable",
    "testing",
    "stable",
}
_UBUNTU_SUITES = {"focal", "jammy", "noble", "oracular", "plucky", "questing"}


def _is_security(source: AptSource) -> bool:
    return any(s.endswith("-security") or "/updates" in s for s in source.suites)


def _find(suite_names: set[str], security: bool) -> str | None:
    for source in apt_sources():
        bases = {s.split("-")[0].split("/")[0] for s in source.suites}
        if bases & suite_names and _is_security(source) == security:
            return source.uri
    return None


def _configured(value: str | None, missing: str) -> str:
    """A mirror's URL without its trailing slash; ToolError(``missing``) when none is set."""
    if not value:
        raise ToolError(missing)
    return value.rstrip("/")


def debian_mirror(settings: Mirrors) -> str:
    """The Debian archive mirror (``.../debian``): option, env, then apt's config."""
    return _configured(
        settings.build or settings.debian or _find(_DEBIAN_SUITES, False),
        "no Debian archive mirror configured: add one to apt's sources or set "
        "BINK_PYTHON_DEBIAN_MIRROR (e.g. the URL apt uses for Debian)",
    )


def debian_security_mirror(settings: Mirrors) -> str:
    """The Debian security mirror: env, apt's config, else ``<mirror>-security`` (of the
    configured mirror: ``--mirror`` names the main archive only)."""
    value = settings.debian_security or _find(_DEBIAN_SUITES, True)
    return (value or debian_mirror(settings.machine()) + "-security").rstrip("/")


def ubuntu_mirror(settings: Mirrors) -> str:
    """The Ubuntu archive mirror: option, env, then apt's config."""
    return _configured(
        settings.build or settings.ubuntu or _find(_UBUNTU_SUITES, False),
        "no Ubuntu archive mirror configured on this machine: set "
        "BINK_PYTHON_UBUNTU_MIRROR to an Ubuntu archive URL (amd64) and "
        "BINK_PYTHON_UBUNTU_PORTS_MIRROR for arm64",
    )


def ubuntu_ports_mirror(settings: Mirrors) -> str:
    """The Ubuntu ports mirror (arm64): option, env; there is no safe default."""
    return _configured(
        settings.build or settings.ubuntu_ports,
        "no Ubuntu ports mirror configured (arm64 packages): set "
        "BINK_PYTHON_UBUNTU_PORTS_MIRROR to an Ubuntu ports archive URL",
    )


def image_archive_variable(os_name: str, arch: str, *, security: bool) -> str:
    """The variable that names the archive images of (OS, arch) use for a suite."""
    group = "any" if os_name == "debian" else ("amd64" if arch == "amd64" else "ports")
    try:
        return IMAGE_ARCHIVE_ENV[(os_name, group, security)]
    except KeyError:
        raise ToolError(f"no image archive setting for OS {os_name!r}") from None


def image_archive(settings: Mirrors, os_name: str, arch: str, *, security: bool) -> str | None:
    """The archive URL regular images of (OS, arch) name for a suite; None when unset."""
    variable = image_archive_variable(os_name, arch, security=security)
    value = settings.image_archive(variable)
    if value and "://" not in value:
        raise ToolError(
            f"{variable}={value!r} is not a "
            "URL: expected the archive's address, e.g. http://HOST/debian"
        )
    return value.rstrip("/") or None
