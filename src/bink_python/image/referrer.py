"""The SBOM in a layout: an OCI 1.1 artifact attached to its image, found and read back."""

from __future__ import annotations

import json
import re

from ..errors import BuildError, UsageError
from ..oci.layout import Layout
from ..oci.types import (
    ANNOTATION_TITLE,
    EMPTY_BLOB,
    MEDIA_EMPTY,
    MEDIA_MANIFEST,
    MEDIA_SPDX,
    Descriptor,
    canonical_json,
)


def attach_sbom(
    layout: Layout,
    image_manifest: Descriptor,
    data: bytes,
    *,
    ref: str | None = None,
) -> Descriptor:
    """Store ``data`` as an OCI 1.1 SBOM artifact whose subject is ``image_manifest``.

    Writes the empty config blob, the SPDX blob and the artifact manifest; with ``ref``
    (normally :func:`sbom_ref`) the manifest is also named in ``index.json``. Returns
    the artifact manifest's descriptor.
    """
    if image_manifest.media_type != MEDIA_MANIFEST:
        raise BuildError(
            f"an SBOM's subject must be an image manifest, got {image_manifest.media_type}"
        )
    with layout.locked():  # the blobs written here must not be pruned before set_refs
        if not layout.has_blob(image_manifest.digest, image_manifest.size):
            raise BuildError(
                f"image manifest {image_manifest.digest} is not in {layout.path}: build it first"
            )
        empty = layout.write_blob(EMPTY_BLOB)
        blob = layout.write_blob(data)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "artifactType": MEDIA_SPDX,
            "config": {"mediaType": MEDIA_EMPTY, "digest": empty.digest, "size": empty.size},
            "layers": [
                {
                    "mediaType": MEDIA_SPDX,
                    "digest": blob.digest,
                    "size": blob.size,
                    "annotations": {ANNOTATION_TITLE: "sbom.spdx.json"},
                }
            ],
            "subject": {
                "mediaType": image_manifest.media_type,
                "digest": image_manifest.digest,
                "size": image_manifest.size,
            },
        }
        written = layout.write_blob(canonical_json(manifest))
        desc = Descriptor(MEDIA_MANIFEST, written.digest, written.size)
        if ref is not None:
            layout.set_refs({ref: desc})
    return desc


def find_sbom(layout: Layout, subject_digest: str) -> bytes | None:
    """The SBOM stored in the layout for the image manifest ``subject_digest``, if any."""
    for desc in sorted(layout.refs().values(), key=lambda d: d.digest):
        if desc.media_type != MEDIA_MANIFEST:
            continue
        manifest = layout.read_json(desc.digest)
        if manifest.get("artifactType") != MEDIA_SPDX:
            continue
        if (manifest.get("subject") or {}).get("digest") != subject_digest:
            continue
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == MEDIA_SPDX:
                return layout.read_blob(str(layer["digest"]))
    return None


def image_manifest_for(layout: Layout, tag: str, arch: str) -> Descriptor:
    """The manifest of ``arch`` in the index the layout names ``tag``."""
    found = layout.platform_manifests(layout.resolve(tag), arch)
    if not found:
        raise UsageError(
            f"tag {tag} in {layout.path} has no {arch} image: build it with --arch {arch}"
        )
    return found[0]


def read_sbom(layout: Layout, tag: str, arch: str) -> bytes:
    """The SBOM of (tag, arch) from the layout, or a one-line error saying what to run."""
    layout.check_marker()
    manifest = image_manifest_for(layout, tag, arch)
    data = find_sbom(layout, manifest.digest)
    if data is None:
        raise BuildError(
            f"no SBOM for {tag} {arch} in {layout.path}: rebuild with `bink-python build {tag}`"
        )
    return data


def spdx_packages(data: bytes) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Debian packages ``(name, arch, version)`` and component checksums ``{name: sha256}``."""
    doc = json.loads(data)
    rows: list[tuple[str, str, str]] = []
    checksums: dict[str, str] = {}
    for pkg in doc.get("packages", []):
        purls = [
            ref.get("referenceLocator", "")
            for ref in pkg.get("externalRefs", [])
            if ref.get("referenceType") == "purl"
        ]
        purl = purls[0] if purls else ""
        if purl.startswith("pkg:deb/"):
            arch = re.search(r"[?&]arch=([^&]+)", purl)
            rows.append((pkg["name"], arch[1] if arch else "", pkg.get("versionInfo", "")))
        elif pkg.get("primaryPackagePurpose") != "CONTAINER":
            sums = [c["checksumValue"] for c in pkg.get("checksums", [])]
            checksums[pkg["name"]] = sums[0] if sums else ""
    return rows, checksums
