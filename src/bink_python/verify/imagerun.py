"""Running commands inside OCI images with buildah (no container engine, no daemon).

:class:`Buildah` drives ``buildah`` against a private storage root (``--root`` /
``--runroot`` in a directory we own), so nothing touches the host's container
storage and everything is removed by :meth:`Buildah.close`. An image is taken
from an OCI layout *by manifest digest*: a throwaway layout whose ``blobs``
directory is a symlink to the real one and whose ``index.json`` names just that
manifest. That works for images that no ref names yet (``build`` verifies before
it moves refs) and for one arch of a multi-arch index, with buildah releases
whose ``oci:`` transport only accepts ref names.

Commands run with ``buildah run --isolation chroot`` (the mode that works on
hosts without a container runtime); foreign-arch images run through qemu-user
via binfmt_misc (:func:`bink_python.host.binfmt.ensure_binfmt`). The container's
root filesystem is also mounted on the host (``buildah mount``) for checks that
read files rather than run programs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError, cleanup
from ..host.mounts import unmount_below
from ..host.proc import require_tool, spawn, tail
from ..oci.rootfs import create_file, make_dir_in_root, read_bounded, resolve_in_root
from ..oci.types import ANNOTATION_REF_NAME, MEDIA_MANIFEST, Descriptor, canonical_json
from .confine import kill_rooted_at

#: The ref name of the single image in a throwaway layout.
_PROBE_REF = "probe"

#: Time limits: ``proc.TIMEOUTS["buildah"]`` for every buildah call
#: (``BINK_PYTHON_TIMEOUT_BUILDAH``) and ``proc.TIMEOUTS["probe"]`` for every command run
#: inside an image (``BINK_PYTHON_TIMEOUT_PROBE``; arm64 runs under emulation).


@dataclass(frozen=True)
class RunResult:
    """Outcome of one command run inside an image."""

    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, interleaved

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self, lines: int = 20) -> str:
        """The command, its exit status and the last lines of its output."""
        status = "timed out" if self.returncode == -1 else f"exit {self.returncode}"
        text = tail(self.output, lines)
        shown = " ".join("<program>" if "\n" in a else a for a in self.argv)
        return f"$ {shown}  ({status})" + (f"\n{text}" if text else "")


#: Lines buildah adds to a failing command's output (not the command's own words).
_NOISE = re.compile(
    r"^(subprocess exited with status \d+|Error: exit status \d+|"
    r"process exited with error: .*|Error: while running runtime: .*)$"
)


_GLUED = re.compile(r"(?<!\n)(process exited with error: |subprocess exited with status \d)")


def _strip_buildah_noise(output: str) -> str:
    """The command's own output: buildah's trailing status lines removed."""
    lines = _GLUED.sub(r"\n\1", output).rstrip("\n").split("\n")
    while lines and _NOISE.match(lines[-1].strip()):
        lines.pop()
    return "\n".join(lines) + ("\n" if lines and lines != [""] else "")


#: A path buildah can turn into an image name (the docker reference path grammar).
_NAME_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def _nameable(path: Path) -> bool:
    parts = path.resolve().parts[1:]
    return all(_NAME_COMPONENT.fullmatch(p) for p in parts)


def _probe_parent(workdir: Path) -> Path:
    """Where throwaway layouts go: buildah names the pulled image after their path,
    so it must fit the image-name grammar (no capitals, no ``-_``...)."""
    for candidate in (workdir, Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        if candidate.is_dir() and _nameable(candidate):
            return candidate
    raise ToolError(
        f"no temporary directory with a plain name (lowercase letters, digits, - . _) for "
        f"buildah: set TMPDIR to one (e.g. /tmp), not {workdir}"
    )


def _named_dir(parent: Path, prefix: str) -> Path:
    """A new directory ``parent/<prefix><hex>`` (hex only: always a valid image name)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir(parents=False)
            return path
        except FileExistsError:
            continue


class Buildah:
    """buildah with a private storage root under ``workdir`` (created if absent)."""

    def __init__(self, workdir: Path) -> None:
        self.buildah = require_tool("buildah")
        self.workdir = Path(workdir)
        self.graphroot = self.workdir / "storage"
        self.runroot = self.workdir / "run"
        # buildah buffers image blobs in $TMPDIR (default /var/tmp) and leaves them there
        # when it is stopped mid-copy: inside the session they go with it
        self.tmpdir = self.workdir / "tmp"
        for path in (self.graphroot, self.runroot, self.tmpdir):
            path.mkdir(parents=True, exist_ok=True)
        self._containers: list[str] = []

    def argv(self, *args: str) -> list[str]:
        return [
            self.buildah,
            "--root",
            str(self.graphroot),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "overlay",
            *args,
        ]

    def call(
        self, *args: str, what: str, timeout: float | None = None, cleanup: bool = False
    ) -> str:
        """Run a buildah subcommand; ToolError with its output when it fails.

        ``cleanup`` calls (rm, rmi) run even while the build is being cancelled."""
        proc = spawn(
            self.argv(*args),
            kind="buildah",
            env={"TMPDIR": str(self.tmpdir)},
            timeout=timeout,
            cleanup=cleanup,
        )
        if proc.timed_out:
            raise ToolError(
                f"buildah {args[0]} ({what}) timed out after {proc.timeout:.0f}s: "
                f"{tail(proc.stderr or proc.stdout, 8)}"
            )
        if proc.returncode != 0:
            raise ToolError(
                f"buildah {args[0]} failed ({what}, exit {proc.returncode}): "
                f"{tail(proc.stderr or proc.stdout, 8)}"
            )
        return proc.stdout

    # -- containers -----------------------------------------------------------------

    def from_manifest(self, layout: Path, manifest: Descriptor, *, what: str) -> str:
        """A working container of the image whose manifest is ``manifest`` in ``layout``."""
        if manifest.media_type != MEDIA_MANIFEST:
            raise ToolError(
                f"{what}: {manifest.digest} is a {manifest.media_type or 'blob'}, "
                "not an image manifest"
            )
        probe = _named_dir(_probe_parent(self.workdir), "bink-probe-")
        try:
            (probe / "blobs").symlink_to(Path(layout).resolve() / "blobs")
            (probe / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
            entry = Descriptor(
                manifest.media_type,
                manifest.digest,
                manifest.size,
                manifest.platform,
                {ANNOTATION_REF_NAME: _PROBE_REF},
            )
            index = {"schemaVersion": 2, "manifests": [entry.to_json()]}
            (probe / "index.json").write_bytes(canonical_json(index))
            out = self.call(
                "from", "--quiet", "--pull-always", f"oci:{probe}:{_PROBE_REF}", what=what
            )
        finally:
            shutil.rmtree(probe, ignore_errors=True)
        ctr = out.strip().splitlines()[-1] if out.strip() else ""
        if not ctr:
            raise ToolError(f"buildah from printed no container name ({what})")
        self._containers.append(ctr)
        return ctr

    def mount(self, ctr: str) -> Path:
        return Path(self.call("mount", ctr, what=f"mounting {ctr}").strip())

    def run(
        self,
        ctr: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Sequence[str] = (),
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``argv`` in ``ctr`` (no shell involved); never raises for a failing command."""
        opts = ["run", "--isolation", "chroot"]
        if user is not None:
            opts += ["--user", user]
        for item in env:
            opts += ["--env", item]
        cmd = self.argv(*opts, ctr, "--", *argv)
        proc = spawn(cmd, kind="probe", stderr=subprocess.STDOUT, timeout=timeout)
        if proc.timed_out:
            out = _strip_buildah_noise(proc.stdout)
            return RunResult(tuple(argv), -1, out + f"\n(timed out after {proc.timeout:.0f}s)")
        return RunResult(tuple(argv), proc.returncode, _strip_buildah_noise(proc.stdout))

    def config(self, ctr: str, *options: str) -> None:
        self.call("config", *options, ctr, what=f"configuring {ctr}")

    def commit(self, ctr: str, dest: str) -> None:
        """Commit ``ctr`` as an OCI image to ``dest`` (e.g. ``oci:/path/layout:ref``)."""
        self.call("commit", "--quiet", "--format", "oci", ctr, dest, what=f"committing to {dest}")

    def rm(self, ctr: str) -> None:
        with contextlib.suppress(ValueError):
            self._containers.remove(ctr)
        self.call("rm", ctr, what=f"removing container {ctr}", cleanup=True)

    def close(self) -> None:
        """Remove every container and image, unmount, and delete the storage root."""
        errors: list[str] = []
        for ctr in list(self._containers):
            try:
                self.rm(ctr)
            except ToolError as exc:
                errors.append(str(exc))
        for args in (("rm", "--all"), ("rmi", "--all", "--force")):
            with contextlib.suppress(ToolError):
                self.call(*args, what="cleaning the verify storage", cleanup=True)
        unmount_below(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.workdir.exists():
            errors.append(f"could not remove {self.workdir}")
        if errors:
            raise ToolError(f"cleaning up buildah storage: {errors[0]}")


_SESSION = re.compile(r"bink-buildah-(\d+)-[0-9a-f]+$")


def remove_dead_sessions(base: Path) -> list[Path]:
    """Remove the buildah storage of sessions whose process is gone; returns them."""
    removed = []
    for path in base.glob("bink-buildah-*"):
        found = _SESSION.match(path.name)
        if found is None or Path(f"/proc/{found.group(1)}").exists():
            continue
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def buildah_session(parent: Path | None = None) -> Iterator[Buildah]:
    """A :class:`Buildah` on fresh private storage, always cleaned up afterwards.

    The storage directory carries the owner's pid; sessions left by a process that
    was killed (SIGKILL: no cleanup ran) are unmounted and removed here first.
    """
    base = parent if parent is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    remove_dead_sessions(base)
    work = _named_dir(base, f"bink-buildah-{os.getpid()}-")
    session = Buildah(work)
    with cleanup(session.close, f"removing the buildah storage {work}"):
        yield session


#: Where a command run in a container writes its output, read back from the host: buildah's
#: chroot isolation relays the command's stdout through a goroutine that it does not wait
#: for before exiting, so under load it drops what it had not yet copied (seen: about one
#: run in 190 with both cores busy, exit status intact, output empty).
OUTPUT_DIR = "/tmp/bink-run-output"

#: At most this much of a run's output is read back.
MAX_OUTPUT = 16 << 20

#: The image's python3 (isolated, no site) puts its stdout and stderr on the file argv[1],
#: then becomes the command argv[2:] (searched on PATH as buildah would; 127 and one line
#: when it cannot, as a shell says).
_RELAY = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)\n"
    "os.dup2(fd, 1)\n"
    "os.dup2(fd, 2)\n"
    "os.close(fd)\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'{sys.argv[2]}: {exc.strerror}\\n')\n"
    "    sys.exit(127)\n"
)

_run_numbers = itertools.count()


def relayed(argv: Sequence[str], output: str) -> list[str]:
    """``argv`` run through the image's python3 with its output on the file ``output``."""
    return ["python3", "-I", "-S", "-c", _RELAY, output, *argv]


@dataclass(frozen=True)
class Container:
    """A running-ready container: its buildah name and its rootfs mounted on the host."""

    buildah: Buildah
    name: str
    rootfs: Path

    def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Sequence[str] = (),
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``argv`` (as ``user``, ``uid:gid``); then nothing it started is left running in
        the container. Its output goes to a file the host made in :data:`OUTPUT_DIR` (owned
        by ``user``) and is read back from there, with what buildah itself printed after it."""
        directory = make_dir_in_root(self.rootfs, OUTPUT_DIR, mode=0o755)
        name = f"{os.getpid()}-{next(_run_numbers)}.out"
        path = create_file(directory, name, b"", mode=0o600)
        uid, _, gid = (user or "0:0").partition(":")
        os.chown(path, int(uid), int(gid or uid))
        inner = f"{OUTPUT_DIR}/{name}"
        try:
            result = self.buildah.run(
                self.name, relayed(argv, inner), user=user, env=env, timeout=timeout
            )
        finally:
            kill_rooted_at(self.rootfs)
        host = resolve_in_root(self.rootfs, inner)
        data = read_bounded(host, limit=MAX_OUTPUT, name=inner) if host is not None else None
        with contextlib.suppress(OSError):
            if host is not None:
                host.unlink()
        own = (data or b"").decode(errors="replace")
        if own and result.output and not own.endswith("\n"):
            own += "\n"
        return RunResult(tuple(argv), result.returncode, own + result.output)


@contextlib.contextmanager
def image_container(
    buildah: Buildah, layout: Path, manifest: Descriptor, *, what: str
) -> Iterator[Container]:
    """A container of one image manifest, mounted; removed on exit (also on failure)."""
    ctr = buildah.from_manifest(layout, manifest, what=what)
    with cleanup(lambda: buildah.rm(ctr), f"removing container {ctr}"):
        yield Container(buildah, ctr, buildah.mount(ctr))
