"""Our OCI layouts read by real tools, pushed to a real registry, exported with skopeo.

Layers are small synthetic trees, so these tests take seconds; the registry is the
CNCF distribution registry started on 127.0.0.1 by the test session.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from bink_python.cli.ci import published_outputs
from bink_python.errors import PublishError, UsageError, VerifyError
from bink_python.host.progress import Progress, Step
from bink_python.image.assemble import (
    ImageSpec,
    LayerFile,
    LayerSource,
    build_image,
    build_index,
    files_layer,
    rfc3339,
)
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.oci.types import Descriptor
from bink_python.publish.publish import TagMove, export, push, remote_digest
from bink_python.store.store import Store
from tests.support.images import synthetic_labels
from tests.support.registry import (
    LocalRegistry,
    free_port,
    free_port_containing,
    htpasswd_line,
    running_registry,
)
from tests.support.tools import requires_tool

EPOCH = 1_767_225_600
REFS = ("3.13", "3.13.15")


def _skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["skopeo", *args], capture_output=True, check=True)


def build_tag(root: Path, *, version: str = "1", payload_bytes: int = 0) -> Descriptor:
    """A two-arch tag (refs 3.13 and 3.13.15) from small synthetic layers."""
    store = Store(root / "cache")
    tree = root / f"tree-{version}"
    (tree / "etc").mkdir(parents=True, exist_ok=True)
    (tree / "etc/os-release").write_text(f"ID=synthetic\nVERSION_ID={version}\n")
    if payload_bytes:
        (tree / "opt").mkdir(exist_ok=True)
        (tree / "opt/payload").write_bytes(os.urandom(payload_bytes))
    tar = root / f"base-{version}.tar"
    sha, _ = tarball.write_tree_tar_file(tree, tar, epoch=EPOCH)
    base = LayerSource(tar, "sha256:" + sha, f"synthetic base {version}")
    layout = Layout(root / "oci")
    images = []
    for arch in ("amd64", "arm64"):
        tool = files_layer(
            [
                LayerFile(
                    "usr/local/bin/linkerd-await", data=f"{arch} {version}".encode(), mode=0o755
                )
            ],
            store,
            epoch=EPOCH,
            created_by=f"linkerd-await {arch}",
        )
        labels = synthetic_labels(
            arch, version=version, summary="synthetic", vendor="test", epoch=EPOCH, revision="0"
        )
        spec = ImageSpec(
            arch,
            (base, tool),
            ("PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"),
            ("python3",),
            "",
            labels,
            rfc3339(EPOCH),
        )
        images.append(build_image(spec, layout, store).descriptor)
    index = build_index(images, {"org.opencontainers.image.version": version}, layout)
    layout.set_refs(dict.fromkeys(REFS, index))
    return index


@pytest.fixture(scope="module")
def tag_v1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Descriptor]:
    root = tmp_path_factory.mktemp("v1")
    return root / "oci", build_tag(root)


def test_skopeo_reads_both_arches_of_the_index(tag_v1: tuple[Path, Descriptor]) -> None:
    oci, index = tag_v1
    raw = _skopeo("inspect", "--raw", f"oci:{oci}:3.13").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == index.digest
    for arch, extra in (("amd64", []), ("arm64", ["--override-variant", "v8"])):
        out = json.loads(
            _skopeo("--override-arch", arch, *extra, "inspect", f"oci:{oci}:3.13").stdout
        )
        assert out["Architecture"] == arch
        assert out["Os"] == "linux"
        assert out["Labels"]["com.bink.python.eol"] == "2029-04-30"
        assert out["Env"] == ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"]
        config = json.loads(
            _skopeo(
                "--override-arch", arch, *extra, "inspect", "--config", f"oci:{oci}:3.13"
            ).stdout
        )
        assert config["config"]["Cmd"] == ["python3"]


def test_umoci_lists_stats_and_unpacks(tag_v1: tuple[Path, Descriptor], tmp_path: Path) -> None:
    oci, index = tag_v1
    listed = subprocess.run(
        ["umoci", "ls", "--layout", str(oci)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(REFS) <= set(listed)
    # umoci handles one image per ref: name each per-arch manifest in a copy
    copy = tmp_path / "oci"
    shutil.copytree(oci, copy)
    layout = Layout(copy)
    per_arch = {f"arch-{d.platform.architecture}": d for d in layout.children(index) if d.platform}
    layout.set_refs(per_arch)
    for ref in per_arch:
        stat = json.loads(
            subprocess.run(
                ["umoci", "stat", "--json", "--image", f"{copy}:{ref}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert [h["created_by"] for h in stat["history"]][1].startswith("linkerd-await")
    bundle = tmp_path / "bundle"
    rootless = [] if os.geteuid() == 0 else ["--rootless"]
    subprocess.run(
        ["umoci", "unpack", *rootless, "--image", f"{copy}:arch-arm64", str(bundle)],
        capture_output=True,
        check=True,
    )
    binary = bundle / "rootfs/usr/local/bin/linkerd-await"
    assert binary.read_bytes() == b"arm64 1"
    assert binary.stat().st_mode & 0o7777 == 0o755
    assert (bundle / "rootfs/etc/os-release").read_text().startswith("ID=synthetic")


def test_buildah_takes_each_arch_from_the_index(tag_v1: tuple[Path, Descriptor]) -> None:
    oci, index = tag_v1
    requires_tool("buildah")
    by_arch = {d.platform.architecture: d.digest for d in Layout(oci).children(index) if d.platform}
    image_ids: list[str] = []
    try:
        for arch, variant in (("amd64", ""), ("arm64", "v8")):
            name = f"bink-test-{arch}-{os.getpid()}"
            opts = ["--arch", arch] + (["--variant", variant] if variant else [])
            subprocess.run(
                ["buildah", "from", "--pull-always", "--name", name, *opts, f"oci:{oci}:3.13"],
                capture_output=True, check=True,
            )  # fmt: skip
            try:
                fmt = "{{.OCIv1.Architecture}} {{.FromImageDigest}} {{.FromImageID}}"
                out = subprocess.run(
                    ["buildah", "inspect", "--format", fmt, name],
                    capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                image_ids.append(out[-1])
                assert out[:2] == [arch, by_arch[arch]]
                mount = subprocess.run(
                    ["buildah", "mount", name], capture_output=True, text=True, check=True
                ).stdout.strip()
                tool = Path(mount) / "usr/local/bin/linkerd-await"
                assert tool.read_bytes() == f"{arch} 1".encode()
            finally:
                subprocess.run(["buildah", "rm", name], capture_output=True, check=False)
    finally:
        for image_id in image_ids:
            subprocess.run(["buildah", "rmi", "-f", image_id], capture_output=True, check=False)


def test_push_then_pull_back_by_digest(
    tag_v1: tuple[Path, Descriptor], registry: LocalRegistry, tmp_path: Path
) -> None:
    oci, index = tag_v1
    repo = f"{registry.host}/bink/pull-back"
    moves = push(oci, list(REFS), repo, tls_verify=False)
    assert moves == [TagMove(ref, None, index.digest) for ref in REFS]
    for ref in REFS:
        assert remote_digest(repo, ref, tls_verify=False) == index.digest
    pulled = tmp_path / "pulled"
    _skopeo(
        "copy",
        "-q",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{repo}@{index.digest}",
        f"oci:{pulled}:back",
    )
    back = Layout(pulled).resolve("back")
    assert back.digest == index.digest
    local = Layout(oci)
    assert [d.digest for d in Layout(pulled).reachable(back)] == [
        d.digest for d in local.reachable(index)
    ]
    # pushing again changes nothing; a dry run says so
    assert not any(m.changed for m in push(oci, list(REFS), repo, tls_verify=False))


def test_dry_run_shows_moves_and_moves_nothing(
    tag_v1: tuple[Path, Descriptor], registry: LocalRegistry, tmp_path: Path
) -> None:
    oci, old = tag_v1
    repo = f"{registry.host}/bink/dry-run"
    push(oci, ["3.13"], repo, tls_verify=False)
    new = build_tag(tmp_path, version="2")
    moves = push(tmp_path / "oci", list(REFS), repo, dry_run=True, tls_verify=False)
    assert moves == [TagMove("3.13", old.digest, new.digest), TagMove("3.13.15", None, new.digest)]
    assert str(moves[0]) == f"3.13: {old.digest} -> {new.digest}"
    assert remote_digest(repo, "3.13", tls_verify=False) == old.digest
    assert remote_digest(repo, "3.13.15", tls_verify=False) is None


def test_interrupted_push_leaves_tags_on_the_previous_index(tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as reg:
        repo = f"{reg.host}/bink/interrupted"
        old = build_tag(tmp_path / "v1")
        push(tmp_path / "v1/oci", list(REFS), repo, tls_verify=False)
        new = build_tag(tmp_path / "v2", version="2", payload_bytes=32 << 20)
        assert not reg.upload_in_progress()
        errors: list[BaseException] = []

        def run_push() -> None:
            try:
                push(tmp_path / "v2/oci", list(REFS), repo, tls_verify=False, retries=0)
            except BaseException as exc:
                errors.append(exc)

        pusher = threading.Thread(target=run_push)
        pusher.start()
        deadline = time.monotonic() + 60
        while not reg.upload_in_progress() and pusher.is_alive():
            assert time.monotonic() < deadline, "no upload started"
            time.sleep(0.002)
        reg.stop()  # the registry dies in the middle of the upload
        pusher.join(timeout=120)
        assert len(errors) == 1, "the push should have failed"
        assert isinstance(errors[0], PublishError), errors[0]
        assert "\n" not in str(errors[0])
        assert "by digest" in str(errors[0])  # it died before any tag could move
        reg.start()  # same port, same storage
        for ref in REFS:
            assert remote_digest(repo, ref, tls_verify=False) == old.digest
        # a later push completes and moves both tags
        push(tmp_path / "v2/oci", list(REFS), repo, tls_verify=False)
        for ref in REFS:
            assert remote_digest(repo, ref, tls_verify=False) == new.digest


class _BuildDuringPush(Progress):
    """When the push starts uploading, a build promotes v2 into the same layout
    (``Layout.set_refs``, what build.py's promote step calls) from another thread."""

    def __init__(self, oci: Path, new: Descriptor) -> None:
        super().__init__(quiet=True)
        self.moved = threading.Event()
        self.writer = threading.Thread(target=self._promote, args=(oci, new))
        self.moved_during_upload: bool | None = None

    def _promote(self, oci: Path, new: Descriptor) -> None:
        Layout(oci).set_refs(dict.fromkeys(REFS, new))
        self.moved.set()

    @contextlib.contextmanager
    def step(self, stage: str, subject: str) -> Iterator[Step]:
        if stage == "push" and not self.writer.is_alive() and not self.moved.is_set():
            self.writer.start()
            self.moved_during_upload = self.moved.wait(timeout=2)
        with super().step(stage, subject) as step:
            yield step


def _two_indexes_in_one_layout(root: Path) -> tuple[Path, Descriptor, Descriptor]:
    """One layout holding v2's blobs and v1 under the refs."""
    v2 = build_tag(root, version="2")
    v1 = build_tag(root, version="1")
    return root / "oci", v1, v2


def test_push_tags_exactly_what_it_resolved_while_a_build_waits(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """A build promoting into the layout mid-push must not change
    what the tags end up naming. The push holds the layout lock, so the build waits,
    and each tag moves to the digest resolved once at the start."""
    oci, v1, v2 = _two_indexes_in_one_layout(tmp_path)
    repo = f"{registry.host}/bink/race"
    progress = _BuildDuringPush(oci, v2)
    moves = push(oci, list(REFS), repo, tls_verify=False, progress=progress)
    progress.writer.join(timeout=30)
    assert progress.moved_during_upload is False  # the build waited for the lock
    assert moves == [TagMove(ref, None, v1.digest) for ref in REFS]
    for ref in REFS:
        assert remote_digest(repo, ref, tls_verify=False) == v1.digest
    assert Layout(oci).resolve("3.13").digest == v2.digest  # the build went through after


def test_push_verifies_the_digests_it_pushes(registry: LocalRegistry, tmp_path: Path) -> None:
    """The verifier sees a snapshot holding exactly the resolved descriptors; a ref
    moved in the layout meanwhile changes nothing; a failing check pushes nothing."""
    oci, v1, v2 = _two_indexes_in_one_layout(tmp_path)
    repo = f"{registry.host}/bink/verified"
    seen: dict[str, str] = {}

    def verifier(snapshot: Path, resolved: Mapping[str, Descriptor]) -> None:
        seen.update({ref: d.digest for ref, d in resolved.items()})
        assert Layout(snapshot).resolve("3.13").digest == resolved["3.13"].digest
        Layout(snapshot).check(resolved["3.13"])
        writer = threading.Thread(target=Layout(oci).set_refs, args=(dict.fromkeys(REFS, v2),))
        writer.start()
        writer.join(timeout=1)
        assert writer.is_alive(), "a build moved the ref while the push was verifying"
        blocked.append(writer)

    blocked: list[threading.Thread] = []
    push(oci, list(REFS), repo, tls_verify=False, verifier=verifier)
    blocked[0].join(timeout=30)
    assert seen == dict.fromkeys(REFS, v1.digest)
    assert remote_digest(repo, "3.13", tls_verify=False) == v1.digest

    def failing(snapshot: Path, resolved: Mapping[str, Descriptor]) -> None:
        raise VerifyError("check python-version failed")

    with pytest.raises(VerifyError):
        push(oci, list(REFS), repo, tls_verify=False, verifier=failing)
    assert remote_digest(repo, "3.13", tls_verify=False) == v1.digest  # v2 never pushed


def test_partial_index_is_never_pushed_or_exported(registry: LocalRegistry, tmp_path: Path) -> None:
    """An index lacking an arch its tag lists is
    refused by push and export, naming what is missing."""
    root = tmp_path / "partial"
    build_tag(root)
    layout = Layout(root / "oci")
    full = layout.resolve("3.13")
    amd64 = [d for d in layout.children(full) if d.platform and d.platform.architecture == "amd64"]
    partial = build_index(amd64, {}, layout)
    layout.set_refs({"3.13": partial})
    both = {"3.13": ("amd64", "arm64")}
    repo = f"{registry.host}/bink/partial"
    with pytest.raises(PublishError, match=r"3\.13 .* partial index \(amd64; .* arm64 missing"):
        push(root / "oci", ["3.13"], repo, tls_verify=False, require_arches=both)
    assert remote_digest(repo, "3.13", tls_verify=False) is None
    with pytest.raises(PublishError, match="partial index"):
        export(
            root / "oci",
            "3.13",
            "oci-archive",
            tmp_path / "p.tar",
            require_arches=both["3.13"],
        )
    assert not (tmp_path / "p.tar").exists()
    # the complete index passes the same requirement
    layout.set_refs({"3.13": full})
    push(root / "oci", ["3.13"], repo, tls_verify=False, require_arches=both)
    assert remote_digest(repo, "3.13", tls_verify=False) == full.digest


def test_ci_published_says_whether_the_registry_has_the_tag(
    tag_v1: tuple[Path, Descriptor], registry: LocalRegistry
) -> None:
    """`ci published` (the publish job's "Digests" step): changed until pushed."""
    oci, index = tag_v1
    repo = f"{registry.host}/bink/published"
    before = published_outputs(oci, repo, "3.13", tls_verify=False)
    assert before == {"index": index.digest, "changed": "true"}
    push(oci, ["3.13"], repo, tls_verify=False)
    after = published_outputs(oci, repo, "3.13", tls_verify=False)
    assert after == {"index": index.digest, "changed": "false"}


@pytest.mark.parametrize("digits", ["", "401", "403"])
def test_unreachable_registry_is_a_one_line_error(
    tag_v1: tuple[Path, Descriptor], digits: str
) -> None:
    """Nothing listens there; a port like 35401 must not read as "refused authentication"."""
    oci, _ = tag_v1
    port = free_port_containing(digits) if digits else free_port()
    with pytest.raises(PublishError, match=rf"^registry 127\.0\.0\.1:{port} unreachable") as info:
        push(oci, ["3.13"], f"127.0.0.1:{port}/bink/x", tls_verify=False)
    assert "\n" not in str(info.value)


def test_refused_auth_is_a_one_line_error_without_the_secret(
    tag_v1: tuple[Path, Descriptor], tmp_path: Path
) -> None:
    oci, index = tag_v1
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(htpasswd_line("pusher", "right-pw"))
    with running_registry(tmp_path / "registry", htpasswd=htpasswd) as reg:
        repo = f"{reg.host}/bink/auth"

        def auth_file(password: str) -> Path:
            token = base64.b64encode(f"pusher:{password}".encode()).decode()
            path = tmp_path / f"auth-{password}.json"
            path.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
            return path

        with pytest.raises(PublishError, match="refused authentication") as info:
            push(oci, ["3.13"], repo, tls_verify=False, authfile=auth_file("wrong-pw"))
        message = str(info.value)
        assert "\n" not in message
        assert "wrong-pw" not in message
        assert base64.b64encode(b"pusher:wrong-pw").decode() not in message
        moves = push(oci, ["3.13"], repo, tls_verify=False, authfile=auth_file("right-pw"))
        assert moves == [TagMove("3.13", None, index.digest)]


def test_export_archives(tag_v1: tuple[Path, Descriptor], tmp_path: Path) -> None:
    oci, index = tag_v1
    archive = tmp_path / "out/python-3.13.oci.tar"
    export(oci, "3.13", "oci-archive", archive)
    raw = _skopeo("inspect", "--raw", f"oci-archive:{archive}:3.13").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == index.digest
    with pytest.raises(UsageError, match="multi-arch"):
        export(oci, "3.13", "docker-archive", tmp_path / "d.tar")
    assert not (tmp_path / "d.tar").exists()
    docker = tmp_path / "d.tar"
    export(oci, "3.13", "docker-archive", docker, arch="arm64")
    out = json.loads(_skopeo("inspect", f"docker-archive:{docker}").stdout)
    assert out["Architecture"] == "arm64"
    with tarfile.open(docker) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        assert json.load(member)[0]["RepoTags"] == ["localhost/bink-python:3.13"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.tar", "out"]  # no temp left
