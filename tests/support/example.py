"""The offline example family (examples/offline), built in-process by the real pipeline:
the one builder behind the verify, hostile-image and diff fixtures.

:func:`build_example` copies the example's images.toml and images.lock, compiles the
stand-in linkerd-await for each arch and pins it (``cache add --for``), optionally
changes the family (another CPython, one more base package), and runs ``build_family``
(fast profile, :data:`~tests.support.runtimes.TEST_EPOCH`, no verify) into
``work/oci``: every stage is cached in the store, so only the first build compiles.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bink_python.family.config import Family, load_family
from bink_python.host.progress import Progress
from bink_python.inputs.cache import cache_add
from bink_python.inputs.lockfile import Lock, cpython_artifact
from bink_python.oci.layout import Layout
from bink_python.oci.types import Descriptor
from bink_python.pipeline.build import BuildSummary, build_family
from bink_python.settings import Upstream
from bink_python.store.store import Store

from .runtimes import fast_build_options

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"
COMPILERS = {"amd64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}


@dataclass(frozen=True)
class ExampleBuild:
    """An OCI layout with the example family's images, and what built them."""

    layout: Layout
    family: Family
    standins: dict[str, Path]  # arch -> stand-in linkerd-await binary
    summary: BuildSummary

    def manifest(self, tag: str, arch: str) -> Descriptor:
        for child in self.layout.children(self.layout.resolve(tag)):
            if child.platform is not None and child.platform.architecture == arch:
                return child
        raise AssertionError(f"{tag} has no {arch} image")


@dataclass(frozen=True)
class OtherPython:
    """Another CPython for the family: its version, sha256 and source tarball."""

    version: str
    sha256: str
    source: Path


def _write_config(
    config: Path, python: OtherPython | None, compression: tuple[str, ...] | None
) -> None:
    config.mkdir(parents=True)
    if python is None and compression is None:
        for name in ("images.toml", "images.lock"):
            shutil.copyfile(EXAMPLE / name, config / name)
        return
    text = (EXAMPLE / "images.toml").read_text()
    lock = json.loads((EXAMPLE / "images.lock").read_text())
    if compression is not None:
        listed = ", ".join(f'"{c}"' for c in compression)
        text = text.replace("[family]\n", f"[family]\ncompression = [{listed}]\n", 1)
    if python is not None:
        _other_python(python, lock)
        text = text.replace('python = "3.13.15"', f'python = "{python.version}"')
    (config / "images.toml").write_text(text)
    (config / "images.lock").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")


def _other_python(python: OtherPython, lock: dict[str, Any]) -> None:
    """The lock's CPython 3.13.15 entry replaced by ``python``'s, pinned to its sha256."""
    del lock["artifacts"]["cpython:3.13.15"]
    artifact = replace(cpython_artifact(python.version, Upstream()), sha256=python.sha256)
    lock["artifacts"][artifact.name] = artifact.to_json()


def build_example(
    work: Path,
    store: Store,
    *,
    arches: tuple[str, ...] = ("amd64",),
    tags: tuple[str, ...] | None = None,
    python: OtherPython | None = None,
    extra_package: str | None = None,
    compression: tuple[str, ...] | None = None,
) -> ExampleBuild:
    """The example family's ``tags`` (None: all) for ``arches``, built into ``work/oci``;
    ``compression`` sets ``[family] compression``."""
    config = work / "config"
    _write_config(config, python, compression)
    family = load_family(config / "images.toml")
    version = family.component("linkerd-await").version
    standins: dict[str, Path] = {}
    for arch in arches:
        binary = work / f"linkerd-await-{arch}"
        source = EXAMPLE / "linkerd-await-standin.c"
        subprocess.run(
            [COMPILERS[arch], "-static", "-O2", "-o", str(binary), str(source)], check=True
        )
        cache_add(
            [binary], store.root, lock_path=family.lock_path, for_=f"linkerd-await:{version}:{arch}"
        )
        standins[arch] = binary
    if python is not None:
        cache_add(
            [python.source],
            store.root,
            lock_path=family.lock_path,
            for_=f"cpython:{python.version}",
        )
    family = load_family(config / "images.toml")
    # every arch of the family is a whole layout, not a partial one
    options = fast_build_options(work / "oci", arches if set(arches) != set(family.arches) else ())
    if extra_package is not None:
        options = dataclasses.replace(options, extra_packages=(extra_package,))
    chosen = family.tags if tags is None else tuple(family.tag(t) for t in tags)
    lock = Lock.load(family.lock_path)
    summary = build_family(family, chosen, lock, store, options, progress=Progress())
    return ExampleBuild(Layout(work / "oci"), family, standins, summary)
