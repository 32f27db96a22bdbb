"""What each supported distribution release is: suite, keyring, and package sets.

This is the one place that names distribution packages. The base stage installs
``runtime_packages`` (the shared libraries CPython's extension modules link);
the runtime stage installs ``build_packages`` in its build root. The runtime
record (ELF ``NEEDED`` mapped to packages) is checked against
``runtime_packages`` so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ..errors import BinkError, ConfigError

#: Names of distribution packages.
Packages: TypeAlias = tuple[str, ...]


@dataclass(frozen=True)
class Distro:
    os: str  # "debian" | "ubuntu"
    release: str  # "13", "12", "22.04"
    suite: str  # "trixie", "bookworm", "jammy"
    keyring: str  # path of the archive keyring on the host
    components: tuple[str, ...]
    runtime_packages: Packages
    build_packages: Packages
    #: llvm-bolt and merge-fdata in the build root (from ``build_packages``), or none
    bolt_tools: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Human name, e.g. ``Debian 13`` or ``Ubuntu 22.04``."""
        return f"{self.os.capitalize()} {self.release}"

    @property
    def ident(self) -> str:
        """Short identifier used in cache keys and file names, e.g. ``debian13``."""
        return f"{self.os}{self.release}"


_COMMON_BASE = ("ca-certificates", "tzdata", "netbase")

# Build dependencies of CPython's stdlib extension modules (docker-library/python's
# list without tk: the images ship no GUI toolkit).
_BUILD_COMMON = (
    "build-essential",
    "pkg-config",
    "dpkg-dev",
    "file",
    "xz-utils",
    "ca-certificates",
    "libbz2-dev",
    "libffi-dev",
    "libgdbm-dev",
    "libgdbm-compat-dev",
    "liblzma-dev",
    "libncurses-dev",
    "libreadline-dev",
    "libsqlite3-dev",
    "libssl-dev",
    "uuid-dev",
    "libexpat1-dev",
    "zlib1g-dev",
    "libzstd-dev",
)

# Runtime libraries under their pre-64-bit-time_t names (Debian 12, Ubuntu 22.04).
_RUNTIME_PRE_T64 = (
    "libbz2-1.0",
    "libexpat1",
    "libffi8",
    "libgdbm6",
    "libgdbm-compat4",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libtinfo6",
    "libuuid1",
    "libzstd1",
    "zlib1g",
    *_COMMON_BASE,
)

#: What every release of a distribution shares: the host's keyring for its archive and
#: the archive components the bases and build roots install from.
_ARCHIVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "debian": ("/usr/share/keyrings/debian-archive-keyring.gpg", ("main",)),
    "ubuntu": ("/usr/share/keyrings/ubuntu-archive-keyring.gpg", ("main", "universe")),
}


def _release(
    os: str,
    release: str,
    suite: str,
    runtime: Packages,
    build: Packages,
    bolt: tuple[str, ...] = (),
) -> Distro:
    keyring, components = _ARCHIVES[os]
    return Distro(os, release, suite, keyring, components, runtime, build, bolt)


DISTROS: dict[tuple[str, str], Distro] = {
    (distro.os, distro.release): distro
    for distro in (
        _release(
            "debian",
            "13",
            "trixie",
            runtime=(
                "libbz2-1.0",
                "libexpat1",
                "libffi8",
                "libgdbm6t64",
                "libgdbm-compat4t64",
                "liblzma5",
                "libncursesw6",
                "libreadline8t64",
                "libsqlite3-0",
                "libssl3t64",
                "libtinfo6",
                "libuuid1",
                "libzstd1",
                "zlib1g",
                *_COMMON_BASE,
            ),
            # llvm-bolt and merge-fdata for --enable-bolt (amd64 release builds of 3.12+), by
            # their real paths: llvm-bolt finds its instrumentation runtime next to itself
            # (<its dir>/../lib/libbolt_rt_instr.a), so called as the /usr/bin/llvm-bolt-19
            # symlink it looks in /usr/lib and the instrumented build fails
            build=(*_BUILD_COMMON, "bolt-19"),
            bolt=("/usr/lib/llvm-19/bin/llvm-bolt", "/usr/lib/llvm-19/bin/merge-fdata"),
        ),
        _release("debian", "12", "bookworm", _RUNTIME_PRE_T64, _BUILD_COMMON),
        _release("ubuntu", "22.04", "jammy", _RUNTIME_PRE_T64, _BUILD_COMMON),
    )
}


def get_distro(os_name: str, release: str, *, error: type[BinkError] = ConfigError) -> Distro:
    """The distribution release; ``error`` is what an unknown one is (images.toml's
    error by default, a usage error for a command line's ``--os``/``--release``)."""
    try:
        return DISTROS[(os_name, release)]
    except KeyError:
        known = ", ".join(f"{o} {r}" for o, r in DISTROS)
        raise error(
            f"unsupported base OS {os_name!r} release {release!r}: expected one of {known}"
        ) from None


#: The dynamic loader's cache tool in every image we build (Debian and Ubuntu, merged /usr).
LDCONFIG = "/usr/sbin/ldconfig"
