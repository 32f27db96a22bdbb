"""What the bases leave out beyond the official ``-slim`` images, and why: one list.

The official slim images drop documentation, man pages, info and locales (dpkg filters,
:data:`bink_python.base.base.SLIM_DPKG_OPTIONS`). The bases here also leave out the paths
of :data:`REMOVALS`, found by going through the Debian 13 bases file by file, largest
first (``bink-python layers``). Each entry names the package the files come from, the
variants it applies to and why no workload of these images needs them. Everything a
user would miss stays: copyright files, tzdata, the CA store, the C.UTF-8 locale, apt
and dpkg in regular images (so derived images can ``apt-get install``), libc's math
and vector libraries (``-lm`` links against libmvec), the OpenSSL library and its
configuration.

Regular images leave files out with dpkg ``path-exclude`` filters (like the slim
images' documentation filters), so dpkg knows, the rules also hold for packages
installed later, and ``rm /etc/dpkg/dpkg.cfg.d/99mmdebstrap`` followed by ``apt-get
install --reinstall PKG`` brings the files back. Distroless images (no dpkg) remove
them from the copied tree, and their ``status.d/<pkg>.md5sums`` list only files that
are in the image. The README's "What the images leave out" section is generated from
:data:`REMOVALS`; tests check every entry against the built bases.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..host.text import table_lines


@dataclass(frozen=True)
class Removal:
    what: str
    package: str
    variants: tuple[str, ...]  # "regular" and/or "distroless"
    paths: tuple[str, ...]  # absolute fnmatch patterns, as dpkg's path-exclude takes them
    why: str


#: glibc's EBCDIC (IBM host) double-byte converters for Japanese, Korean and Chinese.
_EBCDIC_DBCS = tuple(
    f"/usr/lib/*/gconv/IBM{n}.so"
    for n in ("930", "933", "935", "937", "939", "1364", "1371", "1388", "1390", "1399")
)

REMOVALS: tuple[Removal, ...] = (
    Removal(
        what="glibc's EBCDIC double-byte converters (IBM930, 933, 935, 937, 939, 1364, "
        "1371, 1388, 1390, 1399)",
        package="libc6",
        variants=("regular", "distroless"),
        paths=_EBCDIC_DBCS,
        why="iconv converters for IBM mainframe host code pages (1.5 MB, 0.9 MB "
        "compressed); Python's codecs never use glibc's converters and carry their own "
        "EBCDIC code pages (cp037, cp500, cp1140 ...); every other converter stays in "
        "regular images",
    ),
    Removal(
        what="every glibc iconv converter (`/usr/lib/<triplet>/gconv`)",
        package="libc6",
        variants=("distroless",),
        paths=("/usr/lib/*/gconv",),
        why="8 MB (2.7 MB compressed, a quarter of the distroless base); Python never "
        "loads them (UTF-8, UTF-16/32 and ISO-8859-1 are built into glibc); Chainguard's "
        "glibc images leave them out the same way (a separate glibc-iconv package)",
    ),
    Removal(
        what="the `openssl` command-line tool (`/usr/bin/openssl`, `c_rehash`, "
        "`/usr/lib/ssl/misc`)",
        package="openssl",
        variants=("distroless",),
        paths=("/usr/bin/openssl", "/usr/bin/c_rehash", "/usr/lib/ssl/misc"),
        why="1.1 MB (0.4 MB compressed); with no shell nothing runs it; the package's "
        "`/usr/lib/ssl/certs` and `cert.pem` links that Python's `ssl` finds the CA store "
        "through, and `openssl.cnf`, stay",
    ),
)


def for_variant(variant: str) -> tuple[Removal, ...]:
    return tuple(r for r in REMOVALS if variant in r.variants)


def dpkg_options() -> tuple[str, ...]:
    """``path-exclude`` dpkg options of the removals that regular images make."""
    return tuple(f"path-exclude={path}" for r in for_variant("regular") for path in r.paths)


def _matches(rel: str, removal: Removal) -> bool:
    return any(fnmatch.fnmatchcase("/" + rel, pattern) for pattern in removal.paths)


def remove_from_tree(root: Path, variant: str) -> list[str]:
    """Remove the paths of ``variant``'s removals from ``root``; the removed paths, sorted.

    A matching directory goes with everything below it. Symlinked directories are not
    followed (paths are matched as they are in the tree).
    """
    removals = for_variant(variant)
    removed: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for name in list(dirnames):
            rel = rel_dir + name
            full = Path(dirpath, name)
            if any(_matches(rel, r) for r in removals):
                if full.is_symlink():
                    full.unlink()
                else:
                    shutil.rmtree(full)
                dirnames.remove(name)
                removed.append(rel)
        for name in filenames:
            rel = rel_dir + name
            if any(_matches(rel, r) for r in removals):
                Path(dirpath, name).unlink()
                removed.append(rel)
    return sorted(removed)


def present_md5sums(text: str, root: Path) -> str:
    """A dpkg ``md5sums`` file with only the lines of files present under ``root``."""
    kept = []
    for line in text.splitlines():
        _, _, path = line.partition("  ")
        if path and os.path.lexists(root / path):
            kept.append(line)
    return "".join(f"{line}\n" for line in kept)


def readme_section() -> str:
    """The README's table of what the bases leave out (generated from :data:`REMOVALS`)."""
    header = ("left out", "package", "images", "why")
    rows = [(r.what, f"`{r.package}`", ", ".join(r.variants), r.why) for r in REMOVALS]
    return "\n".join(table_lines([header, *rows], markdown=True))
