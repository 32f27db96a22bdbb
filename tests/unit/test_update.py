"""`update` against python.org's and GitHub's real response shapes, served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bink_python.__main__ import main
from bink_python.errors import ConfigError, FetchError
from bink_python.family.config import Family, load_family
from bink_python.inputs.fetch import FetchSettings
from bink_python.inputs.lockfile import Lock
from bink_python.inputs.update import rewrite_toml, run_update
from bink_python.inputs.upstream import parse_python_releases, parse_shasum, parse_source_file
from bink_python.publish.readme import readme_path, write_readme
from bink_python.settings import Settings
from tests.support.httpserver import TestServer, quick_fetch, running, served_settings

REPO = Path(__file__).resolve().parents[2]


def served(srv: TestServer) -> Settings:
    """The settings of a run whose upstream and epoch are the test server's."""
    return served_settings(srv, 1800000000, BINK_PYTHON_GITHUB_API_URL=srv.url + "/ghapi")


def fast(srv: TestServer) -> FetchSettings:
    return quick_fetch(served(srv))


NEW_SHA = "1" * 64
AMD64 = b"\x7fELF linkerd-await 0.3.4 amd64"
ARM64 = b"\x7fELF linkerd-await 0.3.4 arm64"


def release(version: str, pk: int, *, pre: bool = False, published: bool = True) -> dict[str, Any]:
    """One item of https://www.python.org/api/v2/downloads/release/ as python.org serves it."""
    return {
        "name": f"Python {version}",
        "slug": "python-" + version.replace(".", ""),
        "version": 3,
        "is_published": published,
        "is_latest": False,
        "release_date": "2026-10-07T15:00:00Z",
        "pre_release": pre,
        "release_page": None,
        "release_notes_url": f"https://docs.python.org/release/{version}/whatsnew/changelog.html",
        "show_on_download_page": True,
        "resource_uri": f"https://www.python.org/api/v2/downloads/release/{pk}/",
    }


def release_file(
    version: str, pk: int, name: str, filename: str, sha: str | None
) -> dict[str, Any]:
    """One item of /api/v2/downloads/release_file/?release=<pk>."""
    base = f"https://www.python.org/ftp/python/{version}/{filename}"
    return {
        "name": name,
        "slug": f"python-{version.replace('.', '')}-{name.lower().replace(' ', '-')}",
        "os": "https://www.python.org/api/v2/downloads/os/3/",
        "release": f"https://www.python.org/api/v2/downloads/release/{pk}/",
        "description": "",
        "is_source": True,
        "url": base,
        "gpg_signature_file": base + ".asc",
        "md5_sum": "0" * 32,
        "filesize": 22_657_420,
        "download_button": filename.endswith(".tar.xz"),
        "resource_uri": f"https://www.python.org/api/v2/downloads/release_file/{pk * 10}/",
        "sigstore_signature_file": "",
        "sigstore_cert_file": "",
        "sigstore_bundle_file": base + ".sigstore",
        "sbom_spdx2_file": base + ".spdx.json",
        "sha256_sum": sha or "",
    }


def gh_release(version: str, *, draft: bool = False, with_digest: bool = True) -> dict[str, Any]:
    """One item of GitHub's GET /repos/linkerd/linkerd-await/releases."""
    dl = f"https://github.com/linkerd/linkerd-await/releases/download/release%2Fv{version}"
    assets = []
    for arch, body in (("amd64", AMD64), ("arm64", ARM64)):
        name = f"linkerd-await-v{version}-{arch}"
        asset: dict[str, Any] = {
            "name": name,
            "content_type": "application/octet-stream",
            "state": "uploaded",
            "size": len(body),
            "browser_download_url": f"{dl}/{name}",
        }
        if with_digest:
            asset["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
        assets.append(asset)
    return {
        "url": "https://api.github.com/repos/linkerd/linkerd-await/releases/1",
        "tag_name": f"release/v{version}",
        "name": f"v{version}",
        "draft": draft,
        "prerelease": False,
        "created_at": "2026-09-01T00:00:00Z",
        "assets": assets,
    }


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestServer]:
    with running() as srv:
        monkeypatch.setenv("BINK_PYTHON_PYTHON_ORG_URL", srv.url)
        monkeypatch.setenv("BINK_PYTHON_GITHUB_URL", srv.url + "/gh")
        monkeypatch.setenv("BINK_PYTHON_GITHUB_API_URL", srv.url + "/ghapi")
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
        releases = [
            release("3.13.16", 1100),
            release("3.13.17", 1101),
            release("3.14.8", 1102),
            release("3.14.9rc1", 1103, pre=True),
            release("3.12.16", 1104, published=False),
            release("3.10.23", 1105),
            release("3.11.17", 1106),
            release("3.15.0", 1107),
            release("3.12.15", 1108),
        ]
        srv.serve("/api/v2/downloads/release/?is_published=true", json.dumps(releases).encode())
        files = [
            release_file("3.13.17", 1101, "Gzipped source tarball", "Python-3.13.17.tgz", "2" * 64),
            release_file(
                "3.13.17", 1101, "XZ compressed source tarball", "Python-3.13.17.tar.xz", NEW_SHA
            ),
        ]
        srv.serve("/api/v2/downloads/release_file/?release=1101", json.dumps(files).encode())
        gh = [gh_release("0.4.0", draft=True), gh_release("0.3.4"), gh_release("0.3.3")]
        srv.serve("/ghapi/repos/linkerd/linkerd-await/releases", json.dumps(gh).encode())
        base = "/gh/linkerd/linkerd-await/releases/download/release%2Fv0.3.4"
        for arch, body in (("amd64", AMD64), ("arm64", ARM64)):
            name = f"linkerd-await-v0.3.4-{arch}"
            digest = hashlib.sha256(body).hexdigest()
            srv.serve(f"{base}/{name}.shasum", f"{digest}  release/{name}\n".encode())
        yield srv


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("images.toml", "images.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def test_update_rewrites_toml_lock_and_readme(upstream: TestServer, workdir: Path) -> None:
    toml_before = (workdir / "images.toml").read_text()
    family = load_family(workdir / "images.toml")
    result = run_update(
        family,
        settings=fast(upstream),
        write_readme=write_family_readme,
        epoch=served(upstream).source_date_epoch,
    )
    assert [str(c) for c in result.changes] == [
        "CPython 3.13: 3.13.16 -> 3.13.17",
        "linkerd-await: 0.3.3 -> 0.3.4",
    ]
    toml_after = (workdir / "images.toml").read_text()
    # only the version strings changed: every comment and line is otherwise kept
    expected = toml_before.replace('python = "3.13.16"', 'python = "3.13.17"').replace(
        'version = "0.3.3"', 'version = "0.3.4"'
    )
    assert toml_after == expected
    new = load_family(workdir / "images.toml")
    assert new.tag("3.13-distroless").python == "3.13.17"
    assert new.tag("3.10").python == "3.10.22"  # eol tags are not moved
    lock = Lock.load(workdir / "images.lock")
    assert lock.entry("cpython:3.13.17").sha256 == NEW_SHA
    assert "cpython:3.13.16" not in lock.artifacts
    assert "linkerd-await:0.3.3:amd64" not in lock.artifacts
    assert lock.entry("linkerd-await:0.3.4:arm64").sha256 == hashlib.sha256(ARM64).hexdigest()
    assert lock.source_date_epoch == 1800000000
    assert "3.13.17" in (workdir / "README.md").read_text()
    assert result.changed_files == ("images.toml", "images.lock", "README.md")
    assert "updated images.toml, images.lock, README.md" in result.summary()
    # running again finds nothing new and leaves every file byte-identical
    snapshot = {n: (workdir / n).read_bytes() for n in ("images.toml", "images.lock", "README.md")}
    again = run_update(
        load_family(workdir / "images.toml"),
        settings=fast(upstream),
        epoch=served(upstream).source_date_epoch,
    )
    assert again.changes == ()
    assert "everything is up to date" in again.summary()
    assert {n: (workdir / n).read_bytes() for n in snapshot} == snapshot


def test_update_dry_run_writes_nothing(upstream: TestServer, workdir: Path) -> None:
    snapshot = {n: (workdir / n).read_bytes() for n in ("images.toml", "images.lock", "README.md")}
    result = run_update(
        load_family(workdir / "images.toml"),
        dry_run=True,
        settings=fast(upstream),
        epoch=served(upstream).source_date_epoch,
    )
    assert len(result.changes) == 2
    assert "dry run: nothing written" in result.summary()
    assert {n: (workdir / n).read_bytes() for n in snapshot} == snapshot


def test_update_refuses_shasum_disagreeing_with_api_digest(
    upstream: TestServer, workdir: Path
) -> None:
    base = "/gh/linkerd/linkerd-await/releases/download/release%2Fv0.3.4"
    upstream.serve(
        f"{base}/linkerd-await-v0.3.4-arm64.shasum",
        f"{'9' * 64}  release/linkerd-await-v0.3.4-arm64\n".encode(),
    )
    before = (workdir / "images.toml").read_bytes()
    with pytest.raises(
        FetchError, match=r"the \.shasum file says 9+ but GitHub's release API says"
    ):
        run_update(
            load_family(workdir / "images.toml"),
            settings=fast(upstream),
            epoch=served(upstream).source_date_epoch,
        )
    assert (workdir / "images.toml").read_bytes() == before


def test_update_unreachable_python_org(workdir: Path) -> None:
    with (
        running() as srv,
        pytest.raises(FetchError, match=r"^cannot fetch python.org release list: .*HTTP 404$"),
    ):
        run_update(load_family(workdir / "images.toml"), settings=fast(srv))


def test_parsers_on_real_shapes() -> None:
    data = json.dumps([release("3.13.17", 7), release("3.14.0rc2", 8, pre=True)]).encode()
    assert [(r.version, r.release_id) for r in parse_python_releases(data)] == [("3.13.17", "7")]
    files = json.dumps([release_file("3.13.17", 7, "XZ", "Python-3.13.17.tar.xz", None)]).encode()
    source = parse_source_file(files, "3.13.17")
    assert source.sha256 is None and source.size == 22_657_420
    with pytest.raises(FetchError, match="not valid JSON"):
        parse_python_releases(b"<html>")
    text = f"{'a' * 64}  release/linkerd-await-v0.3.3-amd64\n"
    assert parse_shasum(text, "linkerd-await-v0.3.3-amd64") == "a" * 64
    with pytest.raises(FetchError, match=r"no sha256 line naming linkerd-await-v0\.3\.3-arm64"):
        parse_shasum(text, "linkerd-await-v0.3.3-arm64")


def test_rewrite_toml_keeps_comments_and_other_tables() -> None:
    text = (
        '# head\n[[tag]]\nname = "3.13"\npython = "3.13.16"  # pinned\n\n'
        '[[tag]]\nname = "3.13-distroless"\npython = "3.13.16"\n'
        "[[tag]]\nname = \"3.12\"\npython = '3.12.15'\n"
        '[components."linkerd-await"]\nversion = "0.3.3" # c\n'
    )
    out = rewrite_toml(text, {"3.13": "3.13.17"}, {"linkerd-await": "0.3.4"})
    assert out == (
        '# head\n[[tag]]\nname = "3.13"\npython = "3.13.17"  # pinned\n\n'
        '[[tag]]\nname = "3.13-distroless"\npython = "3.13.16"\n'
        "[[tag]]\nname = \"3.12\"\npython = '3.12.15'\n"
        '[components."linkerd-await"]\nversion = "0.3.4" # c\n'
    )
    # tomlkit would regroup [[tag]] tables split by another table: refused, not reordered
    split = '[[tag]]\nname = "3.13"\n[components.x]\nversion = "1"\n[[tag]]\nname = "3.12"\n'
    with pytest.raises(ConfigError, match="split by other tables"):
        rewrite_toml(split, {}, {})


def write_family_readme(family: Family) -> bool:
    """What ``bink-python update`` passes: the README beside images.toml."""
    return write_readme(family, readme_path(family))


# -- pinning what the lock leaves unpinned (build.sh's first step) ---------------------------

AWAIT_033 = "/gh/linkerd/linkerd-await/releases/download/release%2Fv0.3.3"


def _serve_033(srv: TestServer, *, shasum: bool) -> dict[str, bytes]:
    bodies = {arch: f"\x7fELF linkerd-await 0.3.3 {arch}".encode() for arch in ("amd64", "arm64")}
    for arch, body in bodies.items():
        name = f"linkerd-await-v0.3.3-{arch}"
        srv.serve(f"{AWAIT_033}/{name}", body)
        if shasum:
            digest = hashlib.sha256(body).hexdigest()
            srv.serve(f"{AWAIT_033}/{name}.shasum", f"{digest}  release/{name}\n".encode())
    return bodies


def test_lock_unpinned_pins_from_the_checksum_files_and_fetches_nothing_else(
    upstream: TestServer, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = _serve_033(upstream, shasum=True)
    before = Lock.load(workdir / "images.lock")
    assert [a.name for a in before.artifacts.values() if a.sha256 is None] == [
        "linkerd-await:0.3.3:amd64",
        "linkerd-await:0.3.3:arm64",
    ]
    assert main_lock(workdir, "--check") == 4
    assert "2 input(s) not pinned" in capsys.readouterr().err
    assert main_lock(workdir, "--unpinned") == 0
    out = capsys.readouterr().out
    assert (
        "pinned   linkerd-await:0.3.3:amd64 (checked against the checksum upstream publishes)"
        in out
    )
    assert "fetched" not in out  # no CPython tarball: python.org is not even served here
    after = Lock.load(workdir / "images.lock")
    for arch, body in bodies.items():
        assert after.entry(f"linkerd-await:0.3.3:{arch}").sha256 == hashlib.sha256(body).hexdigest()
    assert after.source_date_epoch == before.source_date_epoch  # a first pin keeps the epoch
    assert main_lock(workdir, "--check") == 0
    assert main_lock(workdir, "--unpinned") == 0  # nothing left to do, nothing fetched
    assert "unchanged" in capsys.readouterr().out


def test_lock_unpinned_says_what_it_trusted_on_first_use(
    upstream: TestServer, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_033(upstream, shasum=False)
    assert main_lock(workdir, "--unpinned") == 0
    out = capsys.readouterr().out
    assert "pinned   linkerd-await:0.3.3:arm64 (trusted on first use" in out


def test_lock_offline_names_what_it_leaves_unpinned(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_lock(workdir, "--offline") == 0
    out = capsys.readouterr().out
    assert "unpinned linkerd-await:0.3.3:amd64: run `bink-python lock` where upstream" in out


def main_lock(workdir: Path, *argv: str) -> int:
    options = ["--config", str(workdir / "images.toml"), "--cache-dir", str(workdir / "cache")]
    return main(["lock", *argv, *options])
