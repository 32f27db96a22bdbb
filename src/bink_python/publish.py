"""Publish the OCI layout with skopeo: push to a registry, export to an archive.

Push order (so a registry never shows a tag on incomplete content):

1. every index to publish is copied with ``skopeo copy --all --preserve-digests``
   to a *digest* reference (``REPO@sha256:...``): blobs, per-arch manifests, then
   the index itself, all by digest; no tag moves;
2. only then each tag is written (``REPO:TAG``), which uploads nothing new: the
   registry just stores the index manifest under the tag, one atomic PUT;
3. each moved tag is read back and must name the index digest.

A push that fails anywhere leaves every tag at its previous complete index.
Credentials come from skopeo's usual auth file (``skopeo login``, or
``REGISTRY_AUTH_FILE``); they never appear on a command line or in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import PublishError, UsageError, reported_as
from .layout import MEDIA_INDEX, Layout
from .proc import require_tool
from .progress import SILENT, Progress

ExportFormat = Literal["docker-archive", "oci-archive"]

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPO = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+")
_FATAL_MSG = re.compile(r'level=fatal msg="(.*)"\s*$')


@dataclass(frozen=True)
class TagMove:
    """One tag of a push: where it pointed before and where it points after."""

    tag: str
    old: str | None  # remote digest before the push, None when the tag did not exist
    new: str  # the index digest from the layout

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.tag}: {self.new} (unchanged)"
        return f"{self.tag}: {self.old or '(new tag)'} -> {self.new}"


def parse_destination(destination: str) -> str:
    """``host[:port]/repo[/...]`` (an optional ``docker://`` prefix is dropped)."""
    repo = destination.removeprefix("docker://").rstrip("/")
    if not _REPO.fullmatch(repo) or "@" in repo:
        raise UsageError(
            f"registry destination {destination!r} must be HOST[:PORT]/REPOSITORY "
            "(lowercase repository, no tag or digest), e.g. ghcr.io/org/python"
        )
    return repo


def _one_line(stderr: str) -> str:
    """The useful last line of skopeo's stderr (its fatal message, unwrapped)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "no error output"
    last = lines[-1]
    match = _FATAL_MSG.search(last)
    text = match.group(1) if match else last
    return text.replace('\\"', '"')


def _classify(repo: str, action: str, stderr: str) -> PublishError:
    detail = _one_line(stderr)
    low = detail.lower()
    host = repo.split("/", 1)[0]
    if any(s in low for s in ("unauthorized", "authentication required", "denied", "401", "403")):
        return PublishError(
            f"registry {host} refused authentication while {action}: log in with "
            f"`skopeo login {host}` (or set REGISTRY_AUTH_FILE) and retry"
        )
    if "http response to https client" in low:
        return PublishError(
            f"registry {host} speaks plain HTTP while {action}: disable TLS verification "
            "for it (tls_verify off) if that is intended"
        )
    if any(
        s in low
        for s in (
            "connection refused",
            "no such host",
            "i/o timeout",
            "dial tcp",
            "connection reset",
            "broken pipe",
            "eof",
            "network is unreachable",
            "pinging container registry",
        )
    ):
        reason = detail.rsplit(": ", 1)[-1]
        return PublishError(
            f"registry {host} unreachable while {action} ({reason}): check the address "
            "and network, then retry; tags were not moved"
        )
    return PublishError(f"skopeo failed while {action}: {detail}")


def _skopeo(args: Sequence[str], *, repo: str, action: str, authfile: Path | None) -> str:
    skopeo = require_tool("skopeo")
    argv = [skopeo, *args]
    if authfile is not None:
        # the option belongs to the subcommand: insert right after it
        argv = [skopeo, args[0], "--authfile", os.fspath(authfile), *args[1:]]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise _classify(repo, action, proc.stderr or proc.stdout)
    return proc.stdout


def remote_digest(
    repo: str, tag: str, *, tls_verify: bool = True, authfile: Path | None = None
) -> str | None:
    """The digest a tag names in the registry now, or None when the tag does not exist."""
    skopeo = require_tool("skopeo")
    argv = [skopeo, "inspect", "--raw", f"--tls-verify={str(tls_verify).lower()}"]
    if authfile is not None:
        argv += ["--authfile", os.fspath(authfile)]
    argv.append(f"docker://{repo}:{tag}")
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode == 0:
        return "sha256:" + hashlib.sha256(proc.stdout).hexdigest()
    stderr = proc.stderr.decode(errors="replace")
    low = stderr.lower()
    if "manifest unknown" in low or "name unknown" in low or "not found" in low:
        return None
    raise _classify(repo, f"reading tag {tag}", stderr)


@reported_as(PublishError)
def plan_push(
    layout_path: Path,
    refs: Sequence[str],
    destination: str,
    *,
    tls_verify: bool = True,
    authfile: Path | None = None,
) -> list[TagMove]:
    """What a push would do: each tag, its remote digest now and the digest it would get."""
    repo = parse_destination(destination)
    layout = Layout(layout_path)
    layout.check_marker()
    moves = []
    for ref in refs:
        if not _TAG.fullmatch(ref):
            raise UsageError(f"{ref!r} cannot be a registry tag (letters, digits, . _ -)")
        new = layout.resolve(ref).digest
        old = remote_digest(repo, ref, tls_verify=tls_verify, authfile=authfile)
        moves.append(TagMove(ref, old, new))
    return moves


@reported_as(PublishError)
def push(
    layout_path: Path,
    refs: Sequence[str],
    destination: str,
    *,
    dry_run: bool = False,
    tls_verify: bool = True,
    authfile: Path | None = None,
    retries: int = 2,
    progress: Progress = SILENT,
) -> list[TagMove]:
    """Push refs of the layout to ``destination`` (``host[:port]/repo``) as tags.

    All content goes up by digest first; tags move last. With ``dry_run`` nothing
    is written: the returned moves say what would change.
    """
    if not refs:
        raise UsageError("nothing to push: name at least one tag")
    repo = parse_destination(destination)
    layout = Layout(layout_path)
    moves = plan_push(layout_path, refs, destination, tls_verify=tls_verify, authfile=authfile)
    for move in moves:
        progress.info(f"{'would move' if dry_run else 'will move'} {repo}:{move}")
    if dry_run:
        return moves
    tls = f"--dest-tls-verify={str(tls_verify).lower()}"
    src = os.fspath(layout.path)
    # 1. content by digest, each index once (several tags may share one)
    first_ref: dict[str, str] = {}
    for move in moves:
        if move.changed:
            first_ref.setdefault(move.new, move.tag)
    for digest, ref in first_ref.items():
        desc = layout.resolve(ref)
        layout.check(desc)
        copy_all = ["--all"] if desc.media_type == MEDIA_INDEX else []
        with progress.step("push", f"{repo}@{digest[:19]} ({ref})"):
            _skopeo(
                [
                    "copy",
                    "-q",
                    *copy_all,
                    "--preserve-digests",
                    "--retry-times",
                    str(retries),
                    tls,
                    f"oci:{src}:{ref}",
                    f"docker://{repo}@{digest}",
                ],
                repo=repo,
                action=f"pushing {ref} by digest",
                authfile=authfile,
            )
    # 2. move the tags (no new content: one manifest PUT per tag)
    for move in moves:
        if not move.changed:
            continue
        desc = layout.resolve(move.tag)
        copy_all = ["--all"] if desc.media_type == MEDIA_INDEX else []
        with progress.step("tag", f"{repo}:{move.tag}"):
            _skopeo(
                [
                    "copy",
                    "-q",
                    *copy_all,
                    "--preserve-digests",
                    tls,
                    f"oci:{src}:{move.tag}",
                    f"docker://{repo}:{move.tag}",
                ],
                repo=repo,
                action=f"moving tag {move.tag}",
                authfile=authfile,
            )
    # 3. read every tag back
    for move in moves:
        now = remote_digest(repo, move.tag, tls_verify=tls_verify, authfile=authfile)
        if now != move.new:
            raise PublishError(
                f"tag {repo}:{move.tag} names {now} after the push, expected {move.new}: "
                "another push may have raced this one; push again"
            )
    return moves


@reported_as(PublishError)
def export(
    layout_path: Path,
    ref: str,
    fmt: ExportFormat,
    dest: Path,
    *,
    arch: str | None = None,
    name: str | None = None,
    progress: Progress = SILENT,
) -> None:
    """Write one ref of the layout to an archive for ``docker load`` / ``podman load``.

    ``oci-archive`` keeps the whole index (all arches). ``docker-archive`` holds
    one image: for a multi-arch ref ``arch`` (amd64 or arm64) must be given.
    ``name`` is the image name recorded in a docker archive (default
    ``localhost/bink-python:REF``). The file appears only when complete.
    """
    layout = Layout(layout_path)
    layout.check_marker()
    desc = layout.resolve(ref)
    layout.check(desc)
    global_opts: list[str] = []
    if fmt == "docker-archive":
        if desc.media_type == MEDIA_INDEX:
            arches = sorted(
                str(d.platform.architecture)
                for d in layout.children(desc)
                if d.platform is not None
            )
            if arch is None:
                raise UsageError(
                    f"{ref} is multi-arch ({', '.join(arches)}): a docker archive holds one "
                    "image, choose one with the arch option"
                )
            if arch not in arches:
                raise UsageError(f"{ref} has no {arch} image (it has {', '.join(arches)})")
        if arch is not None:
            global_opts = ["--override-arch", arch, "--override-os", "linux"]
            if arch == "arm64":
                global_opts += ["--override-variant", "v8"]
        target_name = name or f"localhost/bink-python:{ref}"
        copy_opts: list[str] = []
    elif fmt == "oci-archive":
        target_name = ref
        copy_opts = ["--all", "--preserve-digests"] if desc.media_type == MEDIA_INDEX else []
    else:
        raise UsageError(f"export format {fmt!r}: expected docker-archive or oci-archive")
    dest = dest.resolve()
    if dest.is_dir():
        raise UsageError(f"export destination {dest} is a directory: give a file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp = tmpdir / "archive"
    try:
        with progress.step("export", f"{ref} -> {dest} ({fmt})"):
            _skopeo_export(
                [
                    *global_opts,
                    "copy",
                    "-q",
                    *copy_opts,
                    f"oci:{layout.path}:{ref}",
                    f"{fmt}:{tmp}:{target_name}",
                ],
                what=f"exporting {ref} to {dest}",
            )
            os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with contextlib.suppress(OSError):
            tmpdir.rmdir()


def _skopeo_export(args: Sequence[str], *, what: str) -> None:
    skopeo = require_tool("skopeo")
    proc = subprocess.run([skopeo, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = _one_line(proc.stderr or proc.stdout)
        if "no space left" in detail.lower():
            raise PublishError(f"disk full while {what}: free space and retry")
        raise PublishError(f"skopeo failed while {what}: {detail}")
