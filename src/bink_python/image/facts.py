"""What ``diff`` compares of one image: packages, Python, components, config and layers."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import dpkg
from ..oci.layers import COMPONENT_HISTORY, apply_whiteout, layer_roles, layer_tar, member_path
from ..oci.layout import Layout
from ..oci.types import Descriptor
from ..store.store import sha256_stream
from . import referrer

_STATUS = "var/lib/dpkg/status"
_STATUS_D = "var/lib/dpkg/status.d/"


@dataclass(frozen=True)
class LayerFacts:
    digest: str
    size: int
    role: str  # "base", "runtime", "component linkerd-await", or "layer"


@dataclass(frozen=True)
class ComponentFacts:
    version: str
    files: Mapping[str, str] = field(default_factory=dict)  # path -> sha256
    sha256: str = ""  # the SBOM's checksum of the component's source or binary


@dataclass(frozen=True)
class ImageFacts:
    """Everything the diff compares of one image (one platform)."""

    platform: str
    digest: str
    python: str
    packages: Mapping[str, str]  # "name" (or "name:arch" for foreign ones) -> version
    packages_from: str  # "sbom" or "dpkg status"
    components: Mapping[str, ComponentFacts]
    config: Mapping[str, str]  # "env PATH", "user", "cmd", "label org...." -> value
    layers: tuple[LayerFacts, ...]


def _platform_of(desc: Descriptor, config: Mapping[str, Any]) -> str:
    if desc.platform is not None:
        return str(desc.platform)
    parts = [config.get("os", "linux"), config.get("architecture", "?"), config.get("variant")]
    return "/".join(str(p) for p in parts if p)


def _scan_layers(
    layout: Layout, layers: Sequence[Descriptor], roles: Sequence[str], *, dpkg: bool
) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """dpkg status files (with ``dpkg``) and the files of component layers, whiteouts applied.

    Returns ``({status path: bytes}, {component: {"/path": sha256}})``.
    """
    status: dict[str, bytes] = {}
    components: dict[str, dict[str, str]] = {}
    for desc, role in zip(layers, roles, strict=True):
        component = role.removeprefix("component ") if role.startswith("component ") else None
        if component is None and not dpkg:
            continue
        files: dict[str, str] = {}
        with layer_tar(layout.blob_path(desc.digest), desc.media_type) as tar:
            for member in tar:
                name = member_path(member.name)
                if apply_whiteout(name, status):
                    continue
                wanted = name == _STATUS or (
                    name.startswith(_STATUS_D) and not name.endswith(".md5sums")
                )
                if dpkg and wanted and member.isfile():
                    handle = tar.extractfile(member)
                    status[name] = handle.read() if handle is not None else b""
                elif component is not None and member.isfile():
                    handle = tar.extractfile(member) or io.BytesIO()
                    files["/" + name] = sha256_stream(handle)[0]
        if component is not None:
            components[component] = files
    return status, components


def _packages_from_status(status: Mapping[str, bytes]) -> dict[str, str]:
    stanzas = []
    for path in sorted(status):
        stanzas += dpkg.parse_stanzas(status[path].decode("utf-8", "replace"))
    return _package_map(
        (s["Package"], s.get("Architecture", ""), s.get("Version", "")) for s in stanzas
    )


def _package_map(
    items: Iterator[tuple[str, str, str]] | list[tuple[str, str, str]],
) -> dict[str, str]:
    """``{name: version}``; a package installed for several arches is keyed ``name:arch``."""
    rows = list(items)
    counts: dict[str, int] = {}
    for name, _, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return {
        (f"{name}:{arch}" if counts[name] > 1 else name): version for name, arch, version in rows
    }


def image_facts(layout: Layout, desc: Descriptor) -> ImageFacts:
    """What :func:`diff_images` compares, read from one image manifest of a layout."""
    manifest = layout.read_json(desc.digest)
    config = layout.read_json(manifest["config"]["digest"])
    inner = config.get("config") or {}
    layers = [Descriptor.from_json(x) for x in manifest.get("layers", [])]
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    roles = layer_roles(history, len(layers))
    found = referrer.find_sbom(layout, desc.digest)
    status, component_files = _scan_layers(layout, layers, roles, dpkg=found is None)
    if found is not None:
        rows, checksums = referrer.spdx_packages(found)
        packages = _package_map(rows)
        packages_from = "sbom"
    else:
        packages, checksums = _packages_from_status(status), {}
        packages_from = "dpkg status"
    env = dict(item.partition("=")[::2] for item in inner.get("Env") or [])
    labels = inner.get("Labels") or {}
    python = env.get("PYTHON_VERSION") or labels.get("org.opencontainers.image.version", "")
    components: dict[str, ComponentFacts] = {}
    for h in history:
        match = COMPONENT_HISTORY.match(str(h.get("created_by", "")))
        if match:
            components[match[1]] = ComponentFacts(
                match[2], component_files.get(match[1], {}), checksums.get(match[1], "")
            )
    if "cpython" in checksums or python:
        components["cpython"] = ComponentFacts(python, {}, checksums.get("cpython", ""))
    settings: dict[str, str] = {f"env {k}": v for k, v in env.items()}
    settings["user"] = str(inner.get("User", "") or "")
    for key in ("Entrypoint", "Cmd", "WorkingDir"):
        if inner.get(key):
            settings[key.lower()] = json.dumps(inner[key])
    settings.update({f"label {k}": str(v) for k, v in labels.items()})
    return ImageFacts(
        platform=_platform_of(desc, config),
        digest=desc.digest,
        python=python,
        packages=packages,
        packages_from=packages_from,
        components=components,
        config=settings,
        layers=tuple(LayerFacts(x.digest, x.size, r) for x, r in zip(layers, roles, strict=True)),
    )
