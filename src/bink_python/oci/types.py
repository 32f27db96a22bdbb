"""The OCI data types: media types, annotations, descriptors, platforms and canonical JSON."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BuildError
from ..host.arch import ARCHES

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"

#: OCI 1.1 artifacts: the empty config blob and its media type; an SPDX document.
MEDIA_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
MEDIA_SPDX = "application/spdx+json"

#: Docker's image list and manifest, which skopeo may leave in a copied layout.
MEDIA_DOCKER_INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def canonical_json(data: Any) -> bytes:
    """The one serialization of OCI JSON documents: sorted keys, no spaces, no newline."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` is a sha256 written as 64 lowercase hex digits, and nothing else."""
    return _SHA256_HEX.fullmatch(value) is not None


def is_sha256_digest(value: str) -> bool:
    """Whether ``value`` is a ``sha256:<64 lowercase hex digits>`` digest."""
    algo, _, hexpart = value.partition(":")
    return algo == "sha256" and is_sha256_hex(hexpart)


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on (descriptor ``platform`` and config fields)."""

    architecture: str
    os: str = "linux"
    variant: str = ""

    @classmethod
    def for_arch(cls, arch: str) -> Platform:
        """The platform of one of our arches: ``amd64`` or ``arm64`` (= ``arm64/v8``)."""
        if arch not in ARCHES:
            known = " or ".join(ARCHES)
            raise BuildError(f"unsupported architecture {arch!r}: expected {known}")
        return cls(ARCHES[arch].oci, variant=ARCHES[arch].oci_variant)

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (mediaType, digest, size, optional platform/annotations)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        try:
            plat = data.get("platform")
            platform = (
                Platform(plat["architecture"], plat["os"], plat.get("variant", ""))
                if plat
                else None
            )
            return cls(
                media_type=str(data["mediaType"]),
                digest=str(data["digest"]),
                size=int(data["size"]),
                platform=platform,
                annotations=dict(data.get("annotations") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BuildError(f"malformed OCI descriptor {dict(data)!r}: {exc}") from exc

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, self.platform, annotations)


def _descriptor_problem(value: Any, what: str) -> str | None:
    if not isinstance(value, dict):
        return f"{what} is not an object"
    for key, kind in (("mediaType", str), ("digest", str), ("size", int)):
        if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool):
            return f"{what} has no {kind.__name__} {key!r}"
    platform = value.get("platform")
    if platform is not None and not (
        isinstance(platform, dict)
        and isinstance(platform.get("architecture"), str)
        and isinstance(platform.get("os"), str)
    ):
        return f"{what}'s platform is not an object with architecture and os"
    if not isinstance(value.get("annotations", {}), dict):
        return f"{what}'s annotations are not an object"
    return None


def _list_problem(data: dict[str, Any], key: str) -> str | None:
    """What is wrong with ``data[key]`` as a list of descriptors, if anything."""
    entries = data[key]
    if not isinstance(entries, list):
        return f"{key!r} is not a list"
    for i, entry in enumerate(entries):
        problem = _descriptor_problem(entry, f"{key}[{i}]")
        if problem:
            return problem
    return None


def shape_problem(data: Any) -> str | None:
    """What is wrong with the shape of an OCI index or image manifest (None when it is
    sound, or when ``data`` is neither: an image config, an SBOM)."""
    if not isinstance(data, dict):
        return None
    if "manifests" in data:
        problem = _list_problem(data, "manifests")
        if problem:
            return problem
    if "layers" in data:
        return _list_problem(data, "layers") or _descriptor_problem(data.get("config"), "config")
    return None


def digest_hex(digest: str) -> str:
    """The hex of a ``sha256:`` digest; BuildError for anything else."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not is_sha256_hex(hexpart):
        raise BuildError(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex digits>")
    return hexpart
