"""``bink-python diff OLD NEW``: what changed between two builds of a tag.

OLD and NEW are image references in skopeo's transport syntax: ``oci:DIR:REF`` (an OCI
layout, read in place), ``docker://HOST/REPO:TAG`` or any other transport skopeo knows
(copied with ``skopeo copy`` into a temporary OCI layout first; an image in Docker's
manifest format is converted to OCI by skopeo, so its digests are the converted ones).

Per platform the report compares:

* the Debian packages (added, removed, upgraded or downgraded, with versions): from the
  SBOM referrer an OCI layout carries (``referrer.find_sbom``), else from the dpkg status in
  the image's layers (``var/lib/dpkg/status``, or ``var/lib/dpkg/status.d/*`` in
  distroless images), read layer by layer with whiteouts applied;
* the Python version (``PYTHON_VERSION``, else the ``org.opencontainers.image.version``
  label);
* the components (layers whose history says ``bink-python component NAME VERSION``):
  version and the sha256 of each file; CPython's source sha256 when an SBOM says it;
* the image config: environment, user, entrypoint/cmd, labels;
* the layers: digest and compressed size, position by position, with their role (base,
  runtime, component) from the image history.

:func:`diff_images` returns a :class:`DiffReport` (``text()`` for people, ``to_json()``
for tools); the CLI exits 0 when nothing changed and 1 when something did.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.dpkg import compare_debian_versions
from ..errors import FetchError, NoSuchLayout, NoSuchTag, UsageError
from ..host.proc import require_tool, run
from ..host.text import human
from ..oci.layout import Layout
from ..oci.types import (
    MEDIA_DOCKER_INDEX,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Descriptor,
)
from . import sbom
from .facts import ImageFacts, image_facts

# --------------------------------------------------------------------------- reaching images


def open_image(
    ref: str, scratch: Path, *, arch: str | None = None, tls_verify: bool = True
) -> tuple[Layout, Descriptor]:
    """The layout and top descriptor (index or manifest) of an image reference.

    ``oci:DIR[:REF]`` is read in place; any other transport is copied with ``skopeo
    copy`` into an OCI layout under ``scratch`` (only ``arch`` when given).
    """
    if ref.startswith("oci:"):
        path, _, name = ref.removeprefix("oci:").partition(":")
        layout = Layout(Path(path))
        if not (layout.path / "index.json").is_file():
            raise NoSuchLayout(f"{ref}: {path} is not an OCI layout (no index.json)")
        refs = {k: v for k, v in layout.refs().items() if not sbom.is_sbom_ref(k)}
        if not name:
            if len(refs) != 1:
                raise UsageError(f"{ref}: name the image (oci:{path}:TAG); refs: {sorted(refs)}")
            name = next(iter(refs))
        if name not in refs:
            raise NoSuchTag(f"{ref}: no ref {name!r} in {path} (refs: {', '.join(sorted(refs))})")
        return layout, refs[name]
    if ":" not in ref:
        raise UsageError(f"{ref}: expected a skopeo image reference, e.g. docker://HOST/REPO:TAG")
    dest = scratch / hashlib.sha256(ref.encode()).hexdigest()[:16]
    args = ["copy", "--quiet", f"--src-tls-verify={str(tls_verify).lower()}"]
    args += [f"--override-arch={arch}"] if arch else ["--all"]
    run(
        [require_tool("skopeo"), *args, ref, f"oci:{dest}:image"],
        error=FetchError,
        what=f"skopeo copy {ref}",
    )
    layout = Layout(dest)
    return layout, layout.resolve("image")


def _images(layout: Layout, top: Descriptor) -> list[Descriptor]:
    if top.media_type in (MEDIA_INDEX, MEDIA_DOCKER_INDEX):
        return [
            d
            for d in layout.children(top)
            if d.media_type in (MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST)
            and (d.platform is None or d.platform.os != "unknown")  # attestation manifests
        ]
    return [top]


# --------------------------------------------------------------------------- the diff


@dataclass(frozen=True)
class Change:
    what: str  # "package", "python", "component", "config", "layer"
    name: str
    old: str | None  # None: added
    new: str | None  # None: removed
    note: str = ""  # "upgraded" / "downgraded" for packages, a layer's role

    def to_json(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {"name": self.name, "old": self.old, "new": self.new}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class PlatformDiff:
    platform: str
    old: ImageFacts | None
    new: ImageFacts | None
    changes: tuple[Change, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.old is None or self.new is None


def _mapping_changes(what: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a != b:
            note = ""
            if what == "package" and a is not None and b is not None:
                note = "upgraded" if compare_debian_versions(a, b) < 0 else "downgraded"
            out.append(Change(what, key, a, b, note))
    return out


def compare(old: ImageFacts, new: ImageFacts) -> tuple[Change, ...]:
    changes: list[Change] = []
    if old.python != new.python:
        changes.append(Change("python", "python", old.python, new.python))
    changes += _mapping_changes("package", old.packages, new.packages)
    for name in sorted(old.components.keys() | new.components.keys()):
        a, b = old.components.get(name), new.components.get(name)
        if a is None or b is None or a.version != b.version:
            changes.append(
                Change("component", name, a.version if a else None, b.version if b else None)
            )
        if a is not None and b is not None and a.sha256 and b.sha256 and a.sha256 != b.sha256:
            changes.append(Change("component", f"{name} sha256", a.sha256, b.sha256))
        files = _mapping_changes("component", a.files if a else {}, b.files if b else {})
        changes += [Change("component", f"{name} {c.name}", c.old, c.new) for c in files]
    changes += _mapping_changes("config", old.config, new.config)
    for i in range(max(len(old.layers), len(new.layers))):
        a_l = old.layers[i] if i < len(old.layers) else None
        b_l = new.layers[i] if i < len(new.layers) else None
        if a_l is None or b_l is None or a_l.digest != b_l.digest:
            either = b_l or a_l
            role = either.role if either is not None else "layer"
            changes.append(
                Change(
                    "layer",
                    f"{i} {role}",
                    f"{a_l.digest} {a_l.size}" if a_l else None,
                    f"{b_l.digest} {b_l.size}" if b_l else None,
                )
            )
    return tuple(changes)


@dataclass(frozen=True)
class DiffReport:
    old_ref: str
    new_ref: str
    platforms: tuple[PlatformDiff, ...]

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.platforms)

    def to_json(self) -> dict[str, Any]:
        out = []
        for p in self.platforms:
            entry: dict[str, Any] = {
                "platform": p.platform,
                "changed": p.changed,
                "old_digest": p.old.digest if p.old else None,
                "new_digest": p.new.digest if p.new else None,
                "python": {
                    "old": p.old.python if p.old else None,
                    "new": p.new.python if p.new else None,
                },
                "packages_from": {
                    "old": p.old.packages_from if p.old else None,
                    "new": p.new.packages_from if p.new else None,
                },
            }
            pk = [c for c in p.changes if c.what == "package"]
            entry["packages"] = {
                "added": [{"name": c.name, "version": c.new} for c in pk if c.old is None],
                "removed": [{"name": c.name, "version": c.old} for c in pk if c.new is None],
                "upgraded": [c.to_json() for c in pk if c.note == "upgraded"],
                "downgraded": [c.to_json() for c in pk if c.note == "downgraded"],
            }
            for what, key in (("component", "components"), ("config", "config")):
                entry[key] = [c.to_json() for c in p.changes if c.what == what]
            entry["layers"] = [
                {
                    "layer": c.name,
                    "old": _layer_json(c.old),
                    "new": _layer_json(c.new),
                }
                for c in p.changes
                if c.what == "layer"
            ]
            out.append(entry)
        return {"old": self.old_ref, "new": self.new_ref, "changed": self.changed, "platforms": out}

    def text(self) -> str:
        lines = [f"diff {self.old_ref} {self.new_ref}"]
        for p in self.platforms:
            if p.old is None or p.new is None:
                side = "only in NEW" if p.old is None else "only in OLD"
                lines.append(f"{p.platform}: {side} ({(p.new or p.old).digest})")  # type: ignore[union-attr]
                continue
            if not p.changes:
                lines.append(f"{p.platform}: no change ({p.new.digest})")
                continue
            lines.append(f"{p.platform}: {p.old.digest} -> {p.new.digest}")
            if p.old.python != p.new.python:
                lines.append(f"  python: {p.old.python} -> {p.new.python}")
            pk = [c for c in p.changes if c.what == "package"]
            counts = (
                f"{sum(c.old is None for c in pk)} added, {sum(c.new is None for c in pk)} "
                f"removed, {sum(c.note == 'upgraded' for c in pk)} upgraded, "
                f"{sum(c.note == 'downgraded' for c in pk)} downgraded"
            )
            lines.append(f"  packages ({p.new.packages_from}): {counts}")
            for c in pk:
                if c.old is None:
                    lines.append(f"    + {c.name} {c.new}")
                elif c.new is None:
                    lines.append(f"    - {c.name} {c.old}")
                else:
                    lines.append(f"    ~ {c.name} {c.old} -> {c.new} ({c.note})")
            for what, title in (("component", "components"), ("config", "config")):
                items = [c for c in p.changes if c.what == what]
                if items:
                    lines.append(f"  {title}:")
                    lines += [f"    {_line(c)}" for c in items]
            layers = [c for c in p.changes if c.what == "layer"]
            same = len(p.new.layers) - sum(c.new is not None for c in layers)
            lines.append(f"  layers: {len(layers)} changed, {same} unchanged")
            for c in layers:
                lines.append(f"    {c.name}: {_layer_text(c.old)} -> {_layer_text(c.new)}")
        verdict = "changed" if self.changed else "no change"
        lines.append(verdict)
        return "\n".join(lines) + "\n"


def _line(c: Change) -> str:
    if c.old is None:
        return f"+ {c.name} {c.new}"
    if c.new is None:
        return f"- {c.name} {c.old}"
    return f"~ {c.name}: {c.old} -> {c.new}"


def _layer_json(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    digest, size = value.split()
    return {"digest": digest, "size": int(size)}


def _layer_text(value: str | None) -> str:
    if value is None:
        return "(none)"
    digest, size = value.split()
    n = int(size)
    return f"{digest[:19]} {human(n, decimal=True, unit='MB' if n >= 100_000 else 'B')}"


def diff_images(
    old_ref: str,
    new_ref: str,
    *,
    arch: str | None = None,
    tls_verify: bool = True,
) -> DiffReport:
    """Compare two images (every platform, or only ``arch``)."""
    with tempfile.TemporaryDirectory(prefix="bink-python-diff-") as tmp:
        facts: list[dict[str, ImageFacts]] = []
        for ref in (old_ref, new_ref):
            layout, top = open_image(ref, Path(tmp), arch=arch, tls_verify=tls_verify)
            found = {}
            for desc in _images(layout, top):
                image = image_facts(layout, desc)
                if arch is None or image.platform.split("/")[1] == arch:
                    found[image.platform] = image
            if not found:
                raise UsageError(f"{ref} has no image for {arch or 'any platform'}")
            facts.append(found)
    platforms = []
    for name in sorted(facts[0].keys() | facts[1].keys()):
        a, b = facts[0].get(name), facts[1].get(name)
        changes = compare(a, b) if a is not None and b is not None else ()
        platforms.append(PlatformDiff(name, a, b, changes))
    return DiffReport(old_ref, new_ref, tuple(platforms))
