"""End to end: examples/offline/build.sh builds 3.13 (CPython 3.13.15, fast profile)
for amd64 and arm64, regular and distroless; the layout is read by real tools,
rebuilt to identical digests, pushed to a local registry and pulled back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bink_python.oci.layout import Layout
from bink_python.oci.partial import partial_arches
from bink_python.publish.publish import push, remote_digest
from tests.support.cli import fast_build, run_ok
from tests.support.registry import LocalRegistry
from tests.support.runtimes import TEST_EPOCH

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"


def _env(store_root: Path) -> dict[str, str]:
    """build.sh as a user runs it: no SOURCE_DATE_EPOCH, the epoch comes from the lock."""
    env = dict(os.environ)
    env["BINK_PYTHON_CACHE"] = str(store_root)
    env.pop("SOURCE_DATE_EPOCH", None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def offline_build(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's output dir after build.sh (the build verifies every image), fast."""
    out = tmp_path_factory.mktemp("offline")
    env = _env(test_cache_root / "store")
    run_ok([str(EXAMPLE / "build.sh"), str(out), "--profile", "fast"], env)
    return out


def _index(layout: Path, ref: str) -> dict[str, Any]:
    desc = Layout(layout).resolve(ref)
    data: dict[str, Any] = json.loads(Layout(layout).read_blob(desc.digest))
    return data


def test_index_has_both_arches(offline_build: Path) -> None:
    layout = offline_build / "oci"
    refs = Layout(layout).refs()
    assert {"3.13", "3.13.15", "3.13-distroless", "3.13.15-distroless"} <= set(refs)
    assert refs["3.13"].digest == refs["3.13.15"].digest
    for ref in ("3.13", "3.13-distroless"):
        index = _index(layout, ref)
        platforms = sorted(
            (m["platform"]["architecture"], m["platform"].get("variant", ""))
            for m in index["manifests"]
        )
        assert platforms == [("amd64", ""), ("arm64", "v8")]


def test_real_tools_read_the_layout(offline_build: Path, tmp_path: Path) -> None:
    layout = offline_build / "oci"
    env = dict(os.environ)
    for arch in ("amd64", "arm64"):
        proc = subprocess.run(
            ["skopeo", "--override-arch", arch, "inspect", f"oci:{layout}:3.13"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["Architecture"] == arch
        assert data["Labels"]["org.opencontainers.image.version"] == "3.13.15"
        assert data["Labels"]["com.bink.python.eol"] == "2029-04"
        assert "PYTHON_VERSION=3.13.15" in data["Env"]
    # umoci unpacks a platform image by its manifest's ref; ours are indexes, so
    # check the layout's structure with umoci's own listing.
    proc = subprocess.run(
        ["umoci", "ls", "--layout", str(layout)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3.13-distroless" in proc.stdout.split()


def test_rebuild_gives_identical_digests(offline_build: Path, test_cache_root: Path) -> None:
    env = _env(test_cache_root / "store")
    config = offline_build / "config" / "images.toml"
    second = offline_build / "oci-again"
    proc = fast_build(config, second, env)
    summary = json.loads(proc.stdout)
    first = {ref: d.digest for ref, d in Layout(offline_build / "oci").refs().items()}
    assert summary["indexes"] == first
    assert all(not img["built"] or img["built"] == [] for img in summary["images"]), summary


def test_build_sh_twice_gives_identical_digests(
    offline_build: Path, test_cache_root: Path, tmp_path: Path
) -> None:
    """Two separate runs of build.sh (fresh output dirs, shared cache): pinning the
    stand-ins in each fresh copy of the lock keeps the example's epoch, so the locks
    and every index digest are identical. The first run verified these images already."""
    committed = json.loads((EXAMPLE / "images.lock").read_text())["source_date_epoch"]
    assert committed == TEST_EPOCH  # the fixtures' base/runtime caches were built at it
    second = tmp_path / "again"
    run_ok(
        [str(EXAMPLE / "build.sh"), str(second), "--profile", "fast", "--no-verify"],
        _env(test_cache_root / "store"),
    )
    first_lock = (offline_build / "config" / "images.lock").read_text()
    assert (second / "config" / "images.lock").read_text() == first_lock
    assert json.loads(first_lock)["source_date_epoch"] == committed
    first = {ref: d.digest for ref, d in Layout(offline_build / "oci").refs().items()}
    again = {ref: d.digest for ref, d in Layout(second / "oci").refs().items()}
    assert again == first


def test_single_arch_build_never_moves_a_multi_arch_tag(
    offline_build: Path, test_cache_root: Path, registry: LocalRegistry, tmp_path: Path
) -> None:
    """`build 3.13 --arch amd64` (what ci.yml runs) into the layout
    holding the complete 3.13 is refused and moves nothing; by default it writes its
    own partial layout (dist/oci-amd64), which push and export refuse."""
    env = _env(test_cache_root / "store")
    config = offline_build / "config" / "images.toml"
    layout = offline_build / "oci"
    before = {ref: d.digest for ref, d in Layout(layout).refs().items()}
    build = [sys.executable, "-m", "bink_python", "build", "3.13", "--config", str(config)]
    build += ["--arch", "amd64", "--profile", "fast", "--no-verify"]
    proc = subprocess.run(
        [*build, "--output", str(layout)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode != 0, proc.stdout
    assert "amd64-only build" in proc.stderr and f"--output {layout}-amd64" in proc.stderr
    assert {ref: d.digest for ref, d in Layout(layout).refs().items()} == before
    # the default output of a single-arch build is a partial layout of its own
    run_ok(build, env, cwd=tmp_path)
    partial = tmp_path / "dist" / "oci-amd64"
    assert partial_arches(partial) == ("amd64",)
    platforms = [m["platform"]["architecture"] for m in _index(partial, "3.13")["manifests"]]
    assert platforms == ["amd64"]
    cli = [sys.executable, "-m", "bink_python"]
    dest = f"{registry.host}/binkhq/python-partial"
    for cmd in (
        ["push", dest, "3.13", "--layout", str(partial), "--insecure", "--no-verify"],
        ["export", "3.13", "--format", "oci-archive", str(tmp_path / "x.tar")],
    ):
        refused = subprocess.run(
            [*cli, *cmd, "--config", str(config)]
            + (["--layout", str(partial)] * (cmd[0] == "export")),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert refused.returncode != 0, refused.stdout
        assert "partial layout (amd64 only" in refused.stderr, refused.stderr
    assert remote_digest(dest, "3.13", tls_verify=False) is None
    assert not (tmp_path / "x.tar").exists()


def test_the_release_job_graph_end_to_end_twice(
    offline_build: Path, test_cache_root: Path, registry: LocalRegistry, tmp_path: Path
) -> None:
    """As release.yml runs it, job by job: `ci plan`; one runtime job per arch,
    which prints its key on its own runner and saves its native build under it; one image
    job per tag (amd64 runner), which restores those directories by key and builds with
    --cached-runtimes, verifying every arch before its refs move; one publish job per tag
    pushing the verified layout into a local registry. Then the whole graph again: a
    no-op. We have no arm64 machine: the arm64 runner's bytes are stood in for by this
    session's arm64 runtime, filed under the key a native arm64 build has."""
    env = _env(test_cache_root / "store")
    config = offline_build / "config" / "images.toml"
    cli = [sys.executable, "-m", "bink_python"]

    # plan: the matrices the workflow's later jobs run
    plan = dict(
        line.split("=", 1)
        for line in run_ok([*cli, "ci", "plan", "--config", str(config)], env).stdout.split()
    )
    runtime_jobs = json.loads(plan["runtimes"])["include"]
    image_jobs = json.loads(plan["tags"])["include"]
    assert [(j["arch"], j["runner"]) for j in runtime_jobs] == [
        ("amd64", "ubuntu-24.04"),
        ("arm64", "ubuntu-24.04-arm"),
    ]
    assert [j["tag"] for j in image_jobs] == ["3.13", "3.13-distroless"]

    def key(job: dict[str, str], host: str) -> str:
        argv = ["runtime", "key", job["python"], "--os", job["os"], "--release", job["release"]]
        argv += ["--config", str(config), "--profile", "fast", "--arch", job["arch"]]
        return run_ok([*cli, *argv, "--build-host", host], env).stdout.strip()

    # runtime jobs: each on its own runner (the build host is the arch); the cache action
    # saves the entry directory under the printed key
    session = test_cache_root / "store" / "runtimes"
    saved = {job["arch"]: key(job, job["arch"]) for job in runtime_jobs}
    cross = key(runtime_jobs[1], "amd64")
    assert saved["arm64"] != cross  # native and cross builds differ
    handed = tmp_path / "actions-cache"
    handed.mkdir()
    shutil.copytree(session / saved["amd64"], handed / saved["amd64"])
    shutil.copytree(session / cross, handed / saved["arm64"])  # the arm64 runner's bytes

    def image_job(tag: str, output: Path, *extra: str) -> dict[str, Any]:
        """An image job on a fresh amd64 runner: a cache with no runtimes but the two
        restored by key, then the build (bases are built or reused; nothing compiles)."""
        cache = tmp_path / f"runner-{output.name}"
        cache.mkdir()
        for kind in (test_cache_root / "store").iterdir():
            if kind.name not in ("runtimes", "buildroots", "work", "logs"):
                subprocess.run(["cp", "-al", str(kind), str(cache / kind.name)], check=True)
        restored = cache / "runtimes"
        restored.mkdir()
        for entry in handed.iterdir():
            shutil.copytree(entry, restored / entry.name)
        build = [*cli, "build", tag, "--config", str(config), "--profile", "fast"]
        build += ["--runtime-host", "amd64=amd64", "--runtime-host", "arm64=arm64"]
        build += ["--cached-runtimes", "--output", str(output), "--json", *extra]
        summary: dict[str, Any] = json.loads(
            run_ok(build, dict(env, BINK_PYTHON_CACHE=str(cache))).stdout
        )
        assert all("runtime" not in row["built"] for row in summary["images"]), summary
        return summary

    def publish_job(layout: Path) -> str:
        """The publish job: pushes the image job's verified layout (no second verify)."""
        push_argv = [*cli, "push", dest, "--config", str(config), "--insecure", "--no-verify"]
        return run_ok([*push_argv, "--layout", str(layout)], env).stdout

    dest = f"{registry.host}/binkhq/python-jobs"
    first: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for job in image_jobs:
        output = tmp_path / f"oci-{job['tag']}"
        summary = image_job(job["tag"], output)  # verified before its refs moved
        assert summary["verified"] is True, summary
        layout = Layout(output)
        index = json.loads(layout.read_blob(layout.resolve(job["tag"]).digest))
        for entry in index["manifests"]:
            manifest = json.loads(layout.read_blob(entry["digest"]))
            config_blob = json.loads(layout.read_blob(manifest["config"]["digest"]))
            history = " ".join(h["created_by"] for h in config_blob["history"])
            assert f"(key {saved[entry['platform']['architecture']]})" in history
        pushed = publish_job(output)
        assert f"moved {job['tag']}: (new tag) -> {summary['indexes'][job['tag']]}" in pushed
        first[job["tag"]] = summary
    for summary in first.values():
        tags = {ref: d for ref, d in summary["indexes"].items() if not ref.startswith("sbom/")}
        assert len(tags) == 2, summary["indexes"]  # the tag and its patch-version tag
        for ref, digest in tags.items():
            assert remote_digest(dest, ref, tls_verify=False) == digest

    took = time.monotonic() - started
    # the whole graph again (nothing changed): the same digests, nothing pushed
    started = time.monotonic()
    for job in image_jobs:
        output = tmp_path / f"oci-again-{job['tag']}"
        summary = image_job(job["tag"], output, "--no-verify")
        assert summary["indexes"] == first[job["tag"]]["indexes"]
        again = publish_job(output)
        lines = again.strip().splitlines()
        assert len(lines) == 2 and all("(unchanged)" in line for line in lines), again
    print(
        f"job graph (image jobs one after another, runtimes handed over): first run "
        f"{took:.0f} s, again (no-op, no verify) {time.monotonic() - started:.0f} s"
    )


def test_push_and_pull_back_by_digest(
    offline_build: Path, registry: LocalRegistry, tmp_path: Path
) -> None:
    layout = offline_build / "oci"
    dest = f"{registry.host}/binkhq/python-e2e"
    moves = push(layout, ["3.13", "3.13.15"], dest, tls_verify=False)
    assert [m.tag for m in moves] == ["3.13", "3.13.15"]
    index_digest = Layout(layout).resolve("3.13").digest
    pulled = tmp_path / "pulled"
    proc = subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            f"docker://{dest}@{index_digest}",
            f"oci:{pulled}:back",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert Layout(pulled).resolve("back").digest == index_digest
    shutil.rmtree(pulled)
