"""SBOMs: one SPDX 2.3 JSON document per image (tag, arch), beside the layout and in it.

What a document lists (:func:`make_sbom`):

* the image itself, the described package (``primaryPackagePurpose: CONTAINER``,
  purl ``pkg:oci/python@sha256%3A...?arch=...&repository_url=ghcr.io/binkhq/python``,
  SHA256 checksum = the manifest digest);
* every Debian/Ubuntu package dpkg records in the image's root filesystem
  (:func:`packages_from_rootfs`: ``var/lib/dpkg/status``, or for distroless
  ``var/lib/dpkg/status.d/<pkg>``), with purl ``pkg:deb/<os>/<name>@<version>?arch=..
  &distro=<os>-<release>`` and the declared license when the package's
  ``/usr/share/doc/<pkg>/copyright`` is machine-readable (DEP-5) and every ``License:``
  in it maps to an SPDX id (:func:`dep5_license`); otherwise ``NOASSERTION``;
* CPython (version, source URL, SHA256 of the source tarball, generic purl) and the
  other components (linkerd-await: version, URL, SHA256, ``pkg:github`` purl);
* relationships: the document DESCRIBES the image, the image CONTAINS each package.

The document is deterministic: same inputs, same bytes (sorted packages, sorted JSON
keys, ``created`` from SOURCE_DATE_EPOCH, ``documentNamespace`` derived from the
repository, tag, arch and image digest, never random).

In the OCI layout the SBOM is an OCI 1.1 artifact (:func:`.referrer.attach_sbom`): a manifest
with ``artifactType: application/spdx+json``, the empty config, one
``application/spdx+json`` layer and ``subject`` = the image manifest, named by the ref
``sbom/<tag>/<arch>`` so :meth:`Layout.prune` keeps it and no registry tag can be
mistaken for it. :func:`.referrer.find_sbom` looks it up by subject (the layout's referrers).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..base.dpkg import parse_stanzas
from ..errors import BuildError
from ..host.arch import ARCHES
from ..host.distro import Distro
from ..oci.layers import member_path
from ..oci.layout import Layout, add_layout_option
from ..oci.rootfs import walk
from ..oci.types import Descriptor, is_sha256_digest, is_sha256_hex
from ..store.store import atomic_write_bytes
from .licenses import NOASSERTION, dep5_license
from .referrer import attach_sbom, read_sbom

DEFAULT_REPOSITORY = "ghcr.io/binkhq/python"

_SPDX_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DebPackage:
    """One installed Debian/Ubuntu package as dpkg records it in the image."""

    name: str
    version: str
    architecture: str  # "amd64", "arm64" or "all"
    source: str  # source package name (== name when dpkg records none)
    license: str = NOASSERTION  # SPDX license expression or NOASSERTION


@dataclass(frozen=True)
class Component:
    """A non-dpkg part of the image: CPython or a component binary (linkerd-await)."""

    name: str
    version: str
    url: str
    sha256: str
    purl: str = ""  # default: pkg:generic/<name>@<version>?checksum=..&download_url=..
    purpose: str = "APPLICATION"

    def package_url(self) -> str:
        if self.purl:
            return self.purl
        return (
            f"pkg:generic/{quote(self.name, safe='')}@{quote(self.version, safe='')}"
            f"?checksum=sha256:{self.sha256}&download_url={quote(self.url, safe=':/')}"
        )


def cpython_component(version: str, url: str, sha256: str) -> Component:
    """CPython from its verified source tarball."""
    return Component("cpython", version, url, sha256)


def linkerd_await_component(version: str, url: str, sha256: str) -> Component:
    """The linkerd-await release binary (purl of the upstream GitHub project)."""
    tag = version if version.startswith("v") else f"v{version}"
    purl = f"pkg:github/linkerd/linkerd-await@{tag}?checksum=sha256:{sha256}"
    return Component("linkerd-await", version.removeprefix("v"), url, sha256, purl)


def component_for(name: str, version: str, url: str, sha256: str) -> Component:
    """The SBOM entry of an image component by name (linkerd-await gets its GitHub purl)."""
    if name == "linkerd-await":
        return linkerd_await_component(version, url, sha256)
    return Component(name, version, url, sha256)


# --------------------------------------------------------------------------- packages


def _package_from_stanza(fields: Mapping[str, str], license_expr: str) -> DebPackage:
    source = fields.get("Source", "").split(" ", 1)[0] or fields["Package"]
    return DebPackage(
        name=fields["Package"],
        version=fields.get("Version", ""),
        architecture=fields.get("Architecture", ""),
        source=source,
        license=license_expr,
    )


# --------------------------------------------------------------------------- rootfs


def packages_from_rootfs(rootfs_tar: Path) -> tuple[DebPackage, ...]:
    """Every package dpkg records in a root filesystem tar, with its license.

    Reads ``var/lib/dpkg/status`` (regular images) or ``var/lib/dpkg/status.d/*``
    (distroless, ``*.md5sums`` ignored), and ``usr/share/doc/<pkg>/copyright``
    (following symlinked doc directories inside the tree).
    """
    status_texts: list[str] = []
    copyrights: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(rootfs_tar) as tar:
            for member in tar:
                name = member_path(member.name)
                if name == "var/lib/dpkg/status" or (
                    name.startswith("var/lib/dpkg/status.d/")
                    and not name.endswith(".md5sums")
                    and member.isfile()
                ):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        status_texts.append(handle.read().decode("utf-8", "replace"))
                elif name.startswith("usr/share/doc/"):
                    if member.issym():
                        links[name] = member.linkname
                    elif member.isfile() and name.endswith("/copyright") and member.size < 4 << 20:
                        handle = tar.extractfile(member)
                        if handle is not None:
                            copyrights[name] = handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise BuildError(f"cannot read the root filesystem {rootfs_tar}: {exc}") from exc
    if not status_texts:
        raise BuildError(
            f"{rootfs_tar} has no dpkg status (var/lib/dpkg/status or status.d): "
            "is it a base root filesystem?"
        )
    packages: dict[tuple[str, str], DebPackage] = {}
    for text in status_texts:
        for fields in parse_stanzas(text):
            path = _resolve(f"usr/share/doc/{fields['Package']}/copyright", links)
            data = copyrights.get(path)
            license_expr = dep5_license(data.decode("utf-8", "replace")) if data else NOASSERTION
            pkg = _package_from_stanza(fields, license_expr)
            packages[(pkg.name, pkg.architecture)] = pkg
    return tuple(packages[k] for k in sorted(packages))


def _resolve(path: str, links: Mapping[str, str]) -> str:
    """``path`` with symlinks (recorded in ``links``) resolved inside the tree."""
    parts = walk(path, links.get, max_links=10)
    return path if parts is None else "/".join(parts)


# --------------------------------------------------------------------------- document


def deb_purl(pkg: DebPackage, distro: Distro) -> str:
    """``pkg:deb/<os>/<name>@<version>?arch=<arch>&distro=<os>-<release>[&upstream=..]``."""
    qualifiers = [
        f"arch={quote(pkg.architecture, safe='')}",
        f"distro={distro.os}-{distro.release}",
    ]
    if pkg.source and pkg.source != pkg.name:
        qualifiers.append(f"upstream={quote(pkg.source, safe='')}")
    return (
        f"pkg:deb/{distro.os}/{quote(pkg.name, safe='')}@{quote(pkg.version, safe='')}"
        f"?{'&'.join(qualifiers)}"
    )


def image_purl(repository: str, digest: str, arch: str, tag: str) -> str:
    """``pkg:oci/<name>@sha256%3A<hex>?arch=..&repository_url=..&tag=..``."""
    name = repository.rsplit("/", 1)[-1]
    return (
        f"pkg:oci/{quote(name, safe='')}@{quote(digest, safe='')}"
        f"?arch={arch}&repository_url={quote(repository, safe='/:')}&tag={quote(tag, safe='')}"
    )


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spdx_id(prefix: str, name: str, taken: set[str]) -> str:
    base = f"SPDXRef-{prefix}-" + _SPDX_ID_CHARS.sub("-", name.replace("+", "plus"))
    ident = base
    n = 2
    while ident in taken:
        ident = f"{base}-{n}"
        n += 1
    taken.add(ident)
    return ident


def _purl_ref(purl: str) -> list[dict[str, str]]:
    return [
        {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
    ]


def _component_entry(comp: Component, taken: set[str]) -> dict[str, Any]:
    return {
        "SPDXID": _spdx_id("component", comp.name, taken),
        "name": comp.name,
        "versionInfo": comp.version,
        "primaryPackagePurpose": comp.purpose,
        "downloadLocation": comp.url,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": comp.sha256}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": _purl_ref(comp.package_url()),
    }


def _deb_entry(pkg: DebPackage, distro: Distro, taken: set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "SPDXID": _spdx_id("deb", f"{pkg.name}-{pkg.architecture}", taken),
        "name": pkg.name,
        "versionInfo": pkg.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": pkg.license or NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": _purl_ref(deb_purl(pkg, distro)),
    }
    if pkg.source != pkg.name:
        entry["sourceInfo"] = f"built from the {distro.os} source package {pkg.source}"
    return entry


def make_sbom(
    *,
    tag: str,
    arch: str,
    image_digest: str,
    packages: Iterable[DebPackage],
    distro: Distro,
    cpython: Component,
    components: Sequence[Component] = (),
    created_epoch: int,
    repository: str = DEFAULT_REPOSITORY,
) -> dict[str, Any]:
    """The SPDX 2.3 document (as JSON data) of one image; see the module docstring."""
    if not is_sha256_digest(image_digest):
        raise BuildError(f"image digest {image_digest!r} is not sha256:<64 hex digits>")
    for comp in (cpython, *components):
        if not is_sha256_hex(comp.sha256):
            raise BuildError(f"{comp.name} {comp.version}: sha256 {comp.sha256!r} is not 64 hex")
    hexdigest = image_digest.split(":", 1)[1]
    taken: set[str] = {"SPDXRef-DOCUMENT"}
    image_id = _spdx_id("image", arch, taken)
    image_pkg: dict[str, Any] = {
        "SPDXID": image_id,
        "name": f"{repository}:{tag}",
        "versionInfo": image_digest,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": hexdigest}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "supplier": "Organization: Bink",
        "comment": f"OCI image manifest of {repository}:{tag} for linux/{arch}",
        "externalRefs": _purl_ref(image_purl(repository, image_digest, arch, tag)),
    }
    listed: list[dict[str, Any]] = []
    for comp in sorted((cpython, *components), key=lambda c: c.name):
        listed.append(_component_entry(comp, taken))
    for pkg in sorted(packages, key=lambda p: (p.name, p.architecture)):
        listed.append(_deb_entry(pkg, distro, taken))
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image_id,
        }
    ] + [
        {
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": p["SPDXID"],
        }
        for p in listed
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{repository}:{tag} linux/{arch}",
        "documentNamespace": (
            f"https://{repository}/spdx/{quote(tag, safe='')}/{arch}/sha256-{hexdigest}"
        ),
        "creationInfo": {
            "created": _rfc3339(created_epoch),
            "creators": [f"Tool: bink-python-{__version__}"],
        },
        "packages": [image_pkg, *listed],
        "relationships": relationships,
    }


def sbom_bytes(document: Mapping[str, Any]) -> bytes:
    """The one serialization of a document: indented, sorted keys, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def sbom_path(out_dir: Path, tag: str, arch: str) -> Path:
    return out_dir / f"{tag}-{arch}.spdx.json"


def write_sbom_file(out_dir: Path, tag: str, arch: str, data: bytes) -> Path:
    """Write ``<out_dir>/<tag>-<arch>.spdx.json`` atomically; returns its path."""
    path = sbom_path(out_dir, tag, arch)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise BuildError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


# --------------------------------------------------------------------------- OCI artifact


SBOM_REF_PREFIX = "sbom/"


def sbom_ref(tag: str, arch: str) -> str:
    """The layout ref naming the SBOM artifact of (tag, arch): ``sbom/<tag>/<arch>``."""
    return f"{SBOM_REF_PREFIX}{tag}/{arch}"


def is_sbom_ref(name: str) -> bool:
    """Whether a layout ref names an SBOM artifact (never a tag to verify or push)."""
    return name.startswith(SBOM_REF_PREFIX)


def image_sbom(
    layout: Layout,
    *,
    tag: str,
    arch: str,
    manifest: Descriptor,
    base_rootfs: Path,
    distro: Distro,
    cpython: Component,
    components: Sequence[Component],
    epoch: int,
    repository: str = DEFAULT_REPOSITORY,
    out_dir: Path | None = None,
) -> tuple[Descriptor, bytes]:
    """The whole SBOM step of one image, for ``build``.

    Reads the packages from the image's base root filesystem, makes the document,
    stores it in ``layout`` as the referrer artifact of ``manifest`` (not named: the
    caller adds ``{sbom_ref(tag, arch): descriptor}`` to the refs it sets), and, with
    ``out_dir``, writes ``<out_dir>/<tag>-<arch>.spdx.json``. Returns the artifact
    descriptor and the document bytes.
    """
    document = make_sbom(
        tag=tag,
        arch=arch,
        image_digest=manifest.digest,
        packages=packages_from_rootfs(base_rootfs),
        distro=distro,
        cpython=cpython,
        components=components,
        created_epoch=epoch,
        repository=repository,
    )
    data = sbom_bytes(document)
    desc = attach_sbom(layout, manifest, data)
    if out_dir is not None:
        write_sbom_file(out_dir, tag, arch, data)
    return desc, data


# --------------------------------------------------------------------------- CLI


def _cmd_sbom(args: argparse.Namespace) -> int:
    data = read_sbom(Layout(Path(args.layout)), args.tag, args.arch)
    sys.stdout.write(data.decode())
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Registrar for :mod:`bink_python.cli.commands`: ``bink-python sbom TAG --arch ARCH``."""
    p = sub.add_parser(
        "sbom", parents=[common], help="print the SPDX SBOM of one image from the layout"
    )
    p.add_argument("tag", metavar="TAG", help="image tag, e.g. 3.13")
    p.add_argument("--arch", required=True, choices=tuple(ARCHES), help="architecture")
    add_layout_option(p)
    p.set_defaults(func=_cmd_sbom)
