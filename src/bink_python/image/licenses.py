"""Debian copyright files (DEP-5) to SPDX license expressions, for the SBOM."""

from __future__ import annotations

import re

#: What the SBOM says when no license can be stated.
NOASSERTION = "NOASSERTION"

_DEP5_FORMAT = re.compile(
    r"^Format:\s*https?://(www\.)?debian\.org/doc/packaging-manuals/copyright-format/1\.0/?", re.M
)

#: DEP-5 short names (lower case) that are not already SPDX ids, and SPDX ids we accept.
_LICENSE_MAP: dict[str, str] = {
    "apache-1.0": "Apache-1.0",
    "apache-1.1": "Apache-1.1",
    "apache-2.0": "Apache-2.0",
    "artistic": "Artistic-1.0-Perl",
    "artistic-1.0": "Artistic-1.0",
    "artistic-2.0": "Artistic-2.0",
    "afl-2.1": "AFL-2.1",
    "apache-2": "Apache-2.0",
    "bsd-1-clause": "BSD-1-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "bsl-1.0": "BSL-1.0",
    "cc0-1.0": "CC0-1.0",
    "cc-by-3.0": "CC-BY-3.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "curl": "curl",
    "expat": "MIT",
    "mit": "MIT",
    "x11": "X11",
    "isc": "ISC",
    "zlib": "Zlib",
    "libpng": "Libpng",
    "libpng-2.0": "libpng-2.0",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "openssl": "OpenSSL",
    "openldap-2.8": "OLDAP-2.8",
    "python-2.0": "Python-2.0",
    "psf-2": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
    "ftl": "FTL",
    "fsfap": "FSFAP",
    "fsful": "FSFUL",
    "fsfullr": "FSFULLR",
    "postgresql": "PostgreSQL",
    "unlicense": "Unlicense",
    "wtfpl": "WTFPL",
    "0bsd": "0BSD",
    "bzip2-1.0.6": "bzip2-1.0.6",
    "ncurses": "X11",
    "sleepycat": "Sleepycat",
    "mpl-2.0-no-copyleft-exception": "MPL-2.0-no-copyleft-exception",
}

_GNU = re.compile(r"(?i)^(agpl|gpl|lgpl|gfdl)-?(\d(?:\.\d)?)(\+|-or-later|-only)?$")


def spdx_license_id(name: str) -> str | None:
    """The SPDX id of one DEP-5 license short name, or None when it does not map."""
    name = name.strip()
    gnu = _GNU.match(name)
    if gnu:
        family, version, suffix = gnu.groups()
        if "." not in version:
            version += ".0"
        later = suffix in ("+", "-or-later")
        return f"{family.upper()}-{version}-{'or-later' if later else 'only'}"
    return _LICENSE_MAP.get(name.lower())


def _dep5_terms(value: str) -> list[str] | None:
    """One ``License:`` first line as SPDX AND-terms (``A``, ``(A OR B)``), or None."""
    terms: list[str] = []
    for part in value.split(","):
        words = part.split()
        if not words:
            continue
        lowered = [w.lower() for w in words]
        if "with" in lowered or ("and" in lowered and "or" in lowered):
            return None  # exceptions and mixed precedence: not asserted
        names = [w for w in words if w.lower() not in ("or", "and")]
        ids = [spdx_license_id(n) for n in names]
        if not ids or any(i is None for i in ids):
            return None
        unique = sorted({i for i in ids if i})
        if "or" in lowered and len(unique) > 1:
            terms.append("(" + " OR ".join(unique) + ")")
        else:
            terms.extend(unique)
    return terms or None


def dep5_license(copyright_text: str) -> str:
    """The declared license of a package from its copyright file, or NOASSERTION.

    Only machine-readable (DEP-5) files are read: the ``License:`` short names of the
    header and of every ``Files:`` paragraph are mapped to SPDX ids and joined with
    AND. Anything that does not map (free text, ``public-domain``, ``with ...
    exception``) makes the whole result NOASSERTION rather than a guess.
    """
    if not _DEP5_FORMAT.search(copyright_text):
        return NOASSERTION
    values: set[str] = set()
    for index, paragraph in enumerate(re.split(r"\n[ \t]*\n", copyright_text.strip())):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line[:1] not in (" ", "\t", "#") and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if "license" in fields and (index == 0 or "files" in fields):
            values.add(fields["license"])
    terms: set[str] = set()
    for value in sorted(values):
        found = _dep5_terms(value)
        if found is None:
            return NOASSERTION
        terms.update(found)
    return " AND ".join(sorted(terms)) if terms else NOASSERTION
