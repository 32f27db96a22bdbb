"""Publish the OCI layout with skopeo: push to a registry, export to an archive.

A push holds the layout's lock throughout (no build moves a ref) and resolves refs once:

1. every ref is resolved **once**; each must name a complete index (every arch
   images.toml lists for its tag, see :func:`check_complete`);
2. those exact descriptors are hard-linked into a private snapshot layout, where
   each index is also named by its digest; the verifier (``bink-python verify``'s
   checks) runs on the snapshot, so it sees exactly the bytes that will be pushed;
3. each index is copied from the snapshot with ``skopeo copy --all
   --preserve-digests`` to a *digest* reference (``REPO@sha256:...``): blobs,
   per-arch manifests, then the index itself; no tag moves;
4. only then each tag is written (``REPO:TAG``) from the same snapshot entry, which
   uploads nothing new: the registry stores that index manifest under the tag;
5. each moved tag is read back and must name the verified digest.

A push that fails anywhere leaves every tag at its previous complete index. Credentials
come from skopeo's auth file (``skopeo login``, ``REGISTRY_AUTH_FILE``), never an argument.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import PublishError, UsageError, reported_as
from ..host.proc import require_tool, spawn, tail
from ..host.progress import SILENT, Progress
from ..oci.layout import Layout
from ..oci.partial import partial_arches
from ..oci.types import MEDIA_INDEX, Descriptor

ExportFormat = Literal["docker-archive", "oci-archive"]

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPO = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+")
_FATAL_MSG = re.compile(r'level=fatal msg="(.*)"\s*$')
_AUTH_REFUSED = re.compile(r"unauthorized|authentication required|denied|\b40[13]\b")
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|dial tcp|connection reset|broken pipe"
    r"|\beof\b|network is unreachable|pinging container registry"
)


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
    host = repo.split("/", 1)[0]
    # the address is taken out first: a port such as 35401 must not read as a status code
    low = detail.lower().replace(host.lower(), "<registry>")
    if _AUTH_REFUSED.search(low):
        return PublishError(
            f"registry {host} refused authentication while {action}: log in with "
            f"`skopeo login {host}` (or set REGISTRY_AUTH_FILE) and retry"
        )
    if "http response to https client" in low:
        return PublishError(
            f"registry {host} speaks plain HTTP while {action}: disable TLS verification "
            "for it (tls_verify off) if that is intended"
        )
    if _UNREACHABLE.search(low):
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
    proc = spawn(argv, kind="skopeo")
    if proc.timed_out:
        raise PublishError(
            f"skopeo timed out after {proc.timeout:.0f}s while {action} "
            f"(BINK_PYTHON_TIMEOUT_SKOPEO); tags were not moved: {tail(proc.stderr, 5)}"
        )
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
    proc = spawn(argv, kind="skopeo")
    if proc.ok:
        return "sha256:" + hashlib.sha256(proc.out).hexdigest()
    stderr = proc.stderr
    if proc.timed_out:
        raise PublishError(
            f"skopeo timed out after {proc.timeout:.0f}s while reading tag {tag} "
            f"(BINK_PYTHON_TIMEOUT_SKOPEO): {tail(stderr, 5)}"
        )
    low = stderr.lower()
    if "manifest unknown" in low or "name unknown" in low or "not found" in low:
        return None
    raise _classify(repo, f"reading tag {tag}", stderr)


#: Runs the checks on a snapshot layout holding exactly the refs about to be pushed
#: (ref -> the descriptor resolved once); raises when a check fails.
Verifier = Callable[[Path, Mapping[str, Descriptor]], None]


def index_arches(layout: Layout, desc: Descriptor) -> tuple[str, ...]:
    """The architectures of the images a ref names (one for a single image manifest)."""
    if desc.media_type != MEDIA_INDEX:
        config = layout.read_json(layout.read_json(desc.digest)["config"]["digest"])
        return (str(config.get("architecture", "?")),)
    return tuple(sorted(str(d.platform.architecture) for d in layout.children(desc) if d.platform))


def check_complete(layout: Layout, ref: str, desc: Descriptor, arches: Sequence[str]) -> None:
    """Refuse a ref whose index lacks an arch images.toml lists for its tag.

    A single-arch build writes a layout marked partial (build.py), refused before
    this; this trips on a layout written otherwise (an older bink-python, a
    hand-made index): publishing it would ship a one-platform tag.
    """
    have = index_arches(layout, desc)
    missing = sorted(set(arches) - set(have))
    if missing:
        raise PublishError(
            f"{ref} in {layout.path} is a partial index ({', '.join(have) or 'no image'}; "
            f"images.toml lists {', '.join(sorted(arches))} for it, {', '.join(missing)} "
            f"missing): build every arch (`bink-python build {ref}`) before publishing it"
        )


def digest_ref(digest: str) -> str:
    """The snapshot's name for an index: its digest as a ref name."""
    return "sha256-" + digest.removeprefix("sha256:")


@contextlib.contextmanager
def resolved_snapshot(
    layout: Layout, refs: Sequence[str], require_arches: Mapping[str, Sequence[str]]
) -> Iterator[tuple[Layout, dict[str, Descriptor]]]:
    """Hold the layout lock; resolve ``refs`` once into a private snapshot layout.

    Yields the snapshot (each ref, and each distinct index by :func:`digest_ref`)
    and the resolution. The lock is held until the caller is done, so a build
    promoting into the layout waits; the snapshot is removed afterwards.
    """
    layout.check_marker()
    partial = partial_arches(layout.path)
    if partial:
        raise PublishError(
            f"{layout.path} is a partial layout ({'+'.join(partial)} only, from `build "
            "--arch`): push and export take a layout built for every arch (`bink-python "
            "build` without --arch)"
        )
    with layout.locked():
        known = layout.refs()
        resolved: dict[str, Descriptor] = {}
        for ref in refs:
            if ref not in known:
                layout.resolve(ref)  # raises with the list of refs
            resolved[ref] = known[ref]
            layout.check(known[ref])
            if ref in require_arches:
                check_complete(layout, ref, known[ref], require_arches[ref])
        parent = layout.path.resolve().parent
        snap_dir = Path(tempfile.mkdtemp(prefix=f".{layout.path.name}-push-", dir=parent))
        try:
            snapshot = Layout(snap_dir)
            named = dict(resolved)
            for desc in resolved.values():
                named[digest_ref(desc.digest)] = desc
            snapshot.copy_refs(layout, named)
            yield snapshot, resolved
        finally:
            shutil.rmtree(snap_dir, ignore_errors=True)


def _moves(
    repo: str,
    resolved: Mapping[str, Descriptor],
    *,
    tls_verify: bool,
    authfile: Path | None,
) -> list[TagMove]:
    return [
        TagMove(ref, remote_digest(repo, ref, tls_verify=tls_verify, authfile=authfile), d.digest)
        for ref, d in resolved.items()
    ]


def _check_tags(refs: Sequence[str]) -> None:
    for ref in refs:
        if not _TAG.fullmatch(ref):
            raise UsageError(f"{ref!r} cannot be a registry tag (letters, digits, . _ -)")


@reported_as(PublishError)
def plan_push(
    layout_path: Path,
    refs: Sequence[str],
    destination: str,
    *,
    tls_verify: bool = True,
    authfile: Path | None = None,
    require_arches: Mapping[str, Sequence[str]] | None = None,
) -> list[TagMove]:
    """What a push would do: each tag, its remote digest now and the digest it would get."""
    repo = parse_destination(destination)
    _check_tags(refs)
    with resolved_snapshot(Layout(layout_path), refs, require_arches or {}) as (_, resolved):
        return _moves(repo, resolved, tls_verify=tls_verify, authfile=authfile)


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
    verifier: Verifier | None = None,
    require_arches: Mapping[str, Sequence[str]] | None = None,
) -> list[TagMove]:
    """Push refs of the layout to ``destination`` (``host[:port]/repo``) as tags.

    Under the layout lock: refs resolved once, ``verifier`` run on exactly those
    descriptors, content pushed by digest, then each tag moved to exactly that
    digest and read back. ``require_arches`` (ref -> the arches images.toml lists
    for its tag) refuses partial indexes. With ``dry_run`` nothing is written and
    nothing verified: the returned moves say what would change.
    """
    if not refs:
        raise UsageError("nothing to push: name at least one tag")
    repo = parse_destination(destination)
    _check_tags(refs)
    layout = Layout(layout_path)
    with resolved_snapshot(layout, refs, require_arches or {}) as (snapshot, resolved):
        if verifier is not None and not dry_run:
            verifier(snapshot.path, resolved)
        moves = _moves(repo, resolved, tls_verify=tls_verify, authfile=authfile)
        for move in moves:
            progress.info(f"{'would move' if dry_run else 'will move'} {repo}:{move}")
        if dry_run:
            return moves
        tls = f"--dest-tls-verify={str(tls_verify).lower()}"
        src = os.fspath(snapshot.path)

        def copy(desc: Descriptor, target: str, action: str, retry_times: int) -> None:
            """The snapshot's entry for ``desc`` (by its digest) to ``docker://target``."""
            copy_all = ["--all"] if desc.media_type == MEDIA_INDEX else []
            retry = ["--retry-times", str(retry_times)] if retry_times else []
            argv = ["copy", "-q", *copy_all, "--preserve-digests", *retry, tls]
            argv += [f"oci:{src}:{digest_ref(desc.digest)}", f"docker://{target}"]
            _skopeo(argv, repo=repo, action=action, authfile=authfile)

        # 1. content by digest, each index once (several tags may share one)
        first_ref: dict[str, str] = {}
        for move in moves:
            if move.changed:
                first_ref.setdefault(move.new, move.tag)
        for digest, ref in first_ref.items():
            with progress.step("push", f"{repo}@{digest[:19]} ({ref})"):
                copy(resolved[ref], f"{repo}@{digest}", f"pushing {ref} by digest", retries)
        # 2. move each tag to exactly the pushed digest (no new content: one manifest PUT)
        for move in moves:
            if move.changed:
                with progress.step("tag", f"{repo}:{move.tag} -> {move.new[:19]}"):
                    copy(resolved[move.tag], f"{repo}:{move.tag}", f"moving tag {move.tag}", 0)
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
    require_arches: Sequence[str] | None = None,
) -> None:
    """Write one ref of the layout to an archive for ``docker load`` / ``podman load``.

    ``oci-archive`` keeps the whole index (all arches). ``docker-archive`` holds
    one image: for a multi-arch ref ``arch`` (amd64 or arm64) must be given.
    ``name`` is the image name recorded in a docker archive (default
    ``localhost/bink-python:REF``). The file appears only when complete.
    ``require_arches`` (the arches images.toml lists for the ref's tag) refuses a
    partial index. The ref is resolved once, under the layout lock, and exactly
    that index is exported.
    """
    requirement = {ref: require_arches} if require_arches is not None else {}
    with resolved_snapshot(Layout(layout_path), [ref], requirement) as (snapshot, resolved):
        _export(snapshot, ref, resolved[ref], fmt, dest, arch=arch, name=name, progress=progress)


def _export(
    layout: Layout,
    ref: str,
    desc: Descriptor,
    fmt: ExportFormat,
    dest: Path,
    *,
    arch: str | None,
    name: str | None,
    progress: Progress,
) -> None:
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
                    f"oci:{layout.path}:{digest_ref(desc.digest)}",
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
    proc = spawn([skopeo, *args], kind="skopeo")
    if proc.timed_out:
        raise PublishError(
            f"skopeo timed out after {proc.timeout:.0f}s while {what} "
            f"(BINK_PYTHON_TIMEOUT_SKOPEO): {tail(proc.stderr, 5)}"
        )
    if proc.returncode != 0:
        detail = _one_line(proc.stderr or proc.stdout)
        if "no space left" in detail.lower():
            raise PublishError(f"disk full while {what}: free space and retry")
        raise PublishError(f"skopeo failed while {what}: {detail}")
