"""The check machinery: what a check sees (:class:`Probe`), how it fails, the registry.

A check is a function ``(Probe) -> str`` registered with :func:`check` under a name
and a one-paragraph doc (the README lists them). It returns a one-line detail on
success, raises :class:`CheckFailed` with the evidence, or :class:`NotApplicable`.
*Static* checks only read the image's files; the others run programs in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from ..host.binfmt import emulation_env
from ..image.description import ImageDescription
from ..oci.layout import Layout
from ..oci.rootfs import resolve_in_root
from ..oci.types import Descriptor
from . import probes
from .confine import symlinked_setup_paths
from .imagerun import Container, RunResult


class CheckFailed(Exception):
    """Raised by a check: ``detail`` is the one-line reason, ``output`` the evidence."""

    def __init__(self, detail: str, output: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.output = output


class NotApplicable(Exception):
    """Raised by a check that does not apply to this image (reported as ``skip``)."""


#: Where the probes' Python writes bytecode (``PYTHONPYCACHEPREFIX``), created world-
#: writable from the host: never into the image's own tree (which is checked for
#: ``*.pyc``), and compiled once, not per run -- under qemu, recompiling pip's modules
#: from source on every run costs minutes.
PYCACHE = "/tmp/bink-verify-pycache"


class PythonOptions(TypedDict, total=False):
    """How :meth:`Probe.python` and :meth:`Probe.probe` run a program (see :meth:`Probe.run`)."""

    user: str | None  # default: the family's unprivileged user
    interpreter: str  # default: python3
    own_bytecode: bool  # default: bytecode goes to PYCACHE


@dataclass
class Probe:
    """What a check sees: the expectation, the container, the image config and manifest."""

    expect: ImageDescription
    container: Container
    config: dict[str, Any]
    manifest: dict[str, Any]
    scratch: str = "/tmp/bink-verify"  # a root-owned directory written from the host
    layout: Layout | None = None  # where the image is (None: a probe made by hand)
    #: the platform's other instances in the index (another layer compression of the
    #: same image); the checks run on this one, and ``compression-instances`` proves
    #: each of those unpacks to exactly its file system
    instances: tuple[Descriptor, ...] = ()

    @property
    def root(self) -> Path:
        return self.container.rootfs

    @property
    def unprivileged(self) -> str:
        """``uid:gid`` of the family's user: what every program of the image runs as."""
        return f"{self.expect.user.uid}:{self.expect.user.gid}"

    def run(
        self, argv: Sequence[str], *, user: str | None = None, own_bytecode: bool = False
    ) -> RunResult:
        """Run ``argv`` in the image, as the family's unprivileged user unless ``user``.

        No check needs root (each writes only to ``/tmp`` and the scratch and bytecode
        directories, which the host makes for it), so the image's code never runs as
        root: it cannot change the root-owned directories the host writes into, nor
        anything else of the tree the host reads after it ran. Python's bytecode goes to
        :data:`PYCACHE` unless ``own_bytecode`` (the image's own ``__pycache__``, for the
        checks that test it)."""
        unsafe = symlinked_setup_paths(self.root)
        if unsafe:
            raise CheckFailed(
                f"not run: {unsafe[0]} is a symlink in the image, and buildah would follow "
                "it on the host to set up the container",
                "\n".join(unsafe),
            )
        env = [] if own_bytecode else [f"PYTHONPYCACHEPREFIX={PYCACHE}"]
        env += [f"{k}={v}" for k, v in emulation_env(self.expect.arch).items()]
        return self.container.run(argv, user=user or self.unprivileged, env=tuple(env))

    def python(self, program: str, *args: str, **options: Unpack[PythonOptions]) -> dict[str, Any]:
        """Run ``program`` with the image's python3; it must print one JSON object last."""
        interpreter = options.get("interpreter", "python3")
        argv = [interpreter, "-c", program, *args]
        own_bytecode = options.get("own_bytecode", False)
        result = self.run(argv, user=options.get("user"), own_bytecode=own_bytecode)
        if not result.ok:
            raise CheckFailed(
                f"{interpreter} exited {result.returncode}: {last_line(result.output)}",
                result.describe(),
            )
        try:
            data = json.loads(result.output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise CheckFailed("the probe printed no JSON result", result.describe()) from None
        if not isinstance(data, dict):
            raise CheckFailed("the probe printed no JSON object", result.describe())
        return data

    def probe(self, name: str, *args: str, **options: Unpack[PythonOptions]) -> dict[str, Any]:
        """Run the probe ``name`` (:mod:`~bink_python.verify.probes`) with the image's python3."""
        return self.python(probes.source(name), *args, **options)

    def host_path(self, inner: str) -> Path | None:
        return resolve_in_root(self.root, inner)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


CheckFunc = Callable[[Probe], str]


@dataclass(frozen=True)
class Check:
    name: str
    doc: str
    func: CheckFunc
    static: bool  # reads files only (runs before anything runs in the image)


REGISTRY: dict[str, Check] = {}


def check(name: str, doc: str, *, static: bool = False) -> Callable[[CheckFunc], CheckFunc]:
    def register(func: CheckFunc) -> CheckFunc:
        REGISTRY[name] = Check(name, doc, func, static)
        return func

    return register


def listing(paths: Sequence[str], limit: int = 20) -> str:
    shown = "\n".join(paths[:limit])
    more = len(paths) - limit
    return shown + (f"\n... and {more} more" if more > 0 else "")


def fail_on(found: Sequence[str], what: str) -> None:
    """Fail the check when anything was ``found``: ``N WHAT: first``, every item the evidence."""
    if found:
        raise CheckFailed(f"{len(found)} {what}: {found[0]}", listing(found))
