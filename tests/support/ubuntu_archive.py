"""A simulated Ubuntu 22.04 archive on 127.0.0.1, filled with Debian 12 packages.

No Ubuntu archive is reachable here, so the Ubuntu path (suites ``jammy``,
``jammy-updates``, ``jammy-security``; amd64 from the main archive address, arm64
from the ports address; an archive keyring of its own) is exercised against an apt
repository laid out like Ubuntu's:

* ``/ubuntu/dists/<suite>/`` lists amd64 only, ``/ubuntu-ports/dists/<suite>/``
  arm64 only; components ``main`` (the packages) and ``universe`` (empty);
* ``jammy`` holds Debian ``bookworm`` main, ``jammy-updates`` ``bookworm-updates``,
  ``jammy-security`` ``bookworm-security`` (Debian 12 is pre-t64, with the library
  package names of 22.04 for what the images need: libssl3, libreadline8, ...);
* each ``InRelease`` is signed with a throwaway GPG key made here; its public key
  is the keyring handed to the build (``BINK_PYTHON_UBUNTU_KEYRING``);
* ``pool/`` files are fetched on first request through the machine's configured
  Debian (or Debian security) mirror and kept; apt checks each against the SHA256
  of the index, as it would on a real archive.

The indexes, the key and the signed ``InRelease`` files are made once and kept in
the test cache (so the bases' mirror state, hence their cache keys, are stable
across sessions); pool files accumulate there too.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import http.server
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bink_python.host import mirrors

from .cli import fast_build, run_ok
from .machine import machine_mirrors

#: Simulated suite -> the Debian suite it is filled from (and which mirror has it).
SUITES = {
    "jammy": ("bookworm", "main"),
    "jammy-updates": ("bookworm-updates", "main"),
    "jammy-security": ("bookworm-security", "security"),
}
#: URL prefix -> the arch it serves (Ubuntu: amd64 on the archive, arm64 on ports).
PREFIXES = {"ubuntu": "amd64", "ubuntu-ports": "arm64"}
COMPONENTS = ("main", "universe")
#: A fixed Release date: the InRelease bytes never depend on the day they were made.
RELEASE_DATE = "Thu, 01 Jan 2026 00:00:00 UTC"
LAYOUT_VERSION = "1"


def _upstream(which: str) -> str:
    given = machine_mirrors()
    if which == "main":
        return mirrors.debian_mirror(given)
    return mirrors.debian_security_mirror(given)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        data: bytes = response.read()
    return data


def _debian_packages(which: str, suite: str, arch: str) -> bytes:
    base = f"{_upstream(which)}/dists/{suite}/main/binary-{arch}"
    for name, unpack in (("Packages.xz", lzma.decompress), ("Packages.gz", gzip.decompress)):
        try:
            return unpack(_fetch(f"{base}/{name}"))
        except OSError:
            continue
    raise RuntimeError(f"cannot fetch the {suite} {arch} Packages index from the Debian mirror")


def _pool_paths(packages: bytes) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for line in packages.decode().splitlines()
        if line.startswith("Filename:")
    ]


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    proc = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")
    return proc.stdout


def _release(suite: str, arch: str, files: dict[str, bytes]) -> bytes:
    lines = [
        "Origin: Ubuntu (simulated with Debian 12 packages)",
        "Label: Ubuntu",
        f"Suite: {suite}",
        f"Codename: {suite.split('-')[0]}",
        f"Date: {RELEASE_DATE}",
        f"Architectures: {arch}",
        f"Components: {' '.join(COMPONENTS)}",
        "Description: bink-python test archive laid out as Ubuntu 22.04's",
        "SHA256:",
    ]
    for rel, data in sorted(files.items()):
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>16} {rel}")
    return ("\n".join(lines) + "\n").encode()


def build_archive(root: Path) -> Path:
    """Make (once) the simulated archive's indexes, key and InRelease files under ``root``.

    Serialized across processes: two archives made at once would each sign with a key of
    its own, and a base resolved against the loser's would not verify."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return _build_archive_locked(root)


def _build_archive_locked(root: Path) -> Path:
    done = root / "complete.json"
    if done.is_file() and json.loads(done.read_text()).get("layout") == LAYOUT_VERSION:
        return root
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        home = work / "gnupg"
        home.mkdir(mode=0o700)
        _gpg(
            home,
            "--quick-gen-key",
            "bink-python test archive <test@archive.invalid>",
            "ed25519",
            "sign",
            "never",
        )
        keyring = _gpg(home, "--export")
        routes: dict[str, str] = {}
        for prefix, arch in PREFIXES.items():
            for suite, (debian_suite, which) in SUITES.items():
                packages = _debian_packages(which, debian_suite, arch)
                for path in _pool_paths(packages):
                    routes.setdefault(path, which)
                files = {
                    f"main/binary-{arch}/Packages": packages,
                    f"universe/binary-{arch}/Packages": b"",
                }
                dist = work / "archive" / prefix / "dists" / suite
                for rel, data in files.items():
                    (dist / rel).parent.mkdir(parents=True, exist_ok=True)
                    (dist / rel).write_bytes(data)
                release = _release(suite, arch, files)
                (dist / "Release").write_bytes(release)
                (dist / "InRelease").write_bytes(_gpg(home, "--clearsign", data=release))
        (work / "keyring.gpg").write_bytes(keyring)
        (work / "routes.json").write_text(json.dumps(routes, sort_keys=True))
        for name in ("archive", "keyring.gpg", "routes.json"):
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(work / name, target)
        done.write_text(json.dumps({"layout": LAYOUT_VERSION}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


@dataclass(frozen=True)
class UbuntuArchive:
    url: str  # http://127.0.0.1:PORT
    keyring: Path
    requests: list[str]

    @property
    def archive(self) -> str:
        return f"{self.url}/ubuntu"

    @property
    def ports(self) -> str:
        return f"{self.url}/ubuntu-ports"

    def environ(self) -> dict[str, str]:
        """The settings a build of the Ubuntu path reads."""
        return {
            "BINK_PYTHON_UBUNTU_MIRROR": self.archive,
            "BINK_PYTHON_UBUNTU_PORTS_MIRROR": self.ports,
            "BINK_PYTHON_UBUNTU_KEYRING": str(self.keyring),
        }


@contextlib.contextmanager
def serving(root: Path) -> Iterator[UbuntuArchive]:
    """Serve the archive under ``root`` on 127.0.0.1; pool files come through the mirror."""
    build_archive(root)
    routes: dict[str, str] = json.loads((root / "routes.json").read_text())
    pool = root / "pool-cache"
    requests: list[str] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _file(self) -> Path | None:
            prefix, _, rel = urllib.parse.unquote(self.path).lstrip("/").partition("/")
            if prefix not in PREFIXES or ".." in rel.split("/"):
                return None
            if rel.startswith("dists/"):
                path = root / "archive" / prefix / rel
                return path if path.is_file() else None
            which = routes.get(rel)
            if which is None:
                return None
            path = pool / rel
            if not path.is_file():
                data = _fetch(f"{_upstream(which)}/{urllib.parse.quote(rel)}")
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            return path

        def _serve(self, body: bool) -> None:
            with lock:
                requests.append(self.path)
            try:
                path = self._file()
            except OSError as exc:
                self.send_error(502, f"upstream: {exc}")
                return
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve(True)

        def do_HEAD(self) -> None:
            self._serve(False)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield UbuntuArchive(
            f"http://127.0.0.1:{server.server_address[1]}", root / "keyring.gpg", requests
        )
    finally:
        server.shutdown()
        server.server_close()


#: What the images name in their apt sources (stable, so the bases' keys are too).
IMAGE_ARCHIVES = {
    "BINK_PYTHON_IMAGE_UBUNTU_ARCHIVE": "http://archive.ubuntu-sim.invalid/ubuntu",
    "BINK_PYTHON_IMAGE_UBUNTU_SECURITY": "http://security.ubuntu-sim.invalid/ubuntu",
    "BINK_PYTHON_IMAGE_UBUNTU_PORTS": "http://ports.ubuntu-sim.invalid/ubuntu-ports",
}

#: The family of the Ubuntu path: the offline example's 3.13 tag on Ubuntu 22.04.
FAMILY = """\
[family]
registry = "ghcr.io/binkhq/python"
title = "Bink Python"
description = "Python base image for Kubernetes workloads"
source = "https://github.com/binkhq/python"
vendor = "Bink"
licenses = "PSF-2.0"
arches = ["amd64", "arm64"]
components = ["linkerd-await"]

[family.user]
name = "apps"
uid = 10000
gid = 10000
home = "/home/apps"

[components.linkerd-await]
version = "0.3.3"
path = "/usr/local/bin/linkerd-await"
homepage = "https://github.com/linkerd/linkerd-await"

[[tag]]
name = "3.13"
python = "3.13.15"
os = "ubuntu"
release = "22.04"
eol = "2029-04"
status = "supported"
"""

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"


def build_ubuntu_family(archive: UbuntuArchive, test_cache_root: Path, out: Path) -> dict[str, str]:
    """Build the Ubuntu family into ``out/oci`` (fast profile, not verified) with the CLI,
    as a user does, in the store ``ubuntu-sim/store``; returns the environment it used."""
    config = out / "images.toml"
    config.write_text(FAMILY)
    shutil.copy(EXAMPLE / "images.lock", out / "images.lock")
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    env.update(archive.environ())
    env.update(IMAGE_ARCHIVES)
    env["BINK_PYTHON_CACHE"] = str(test_cache_root / "ubuntu-sim" / "store")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    cli = [sys.executable, "-m", "bink_python"]
    for arch, cc in (("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc")):
        binary = out / f"linkerd-await-{arch}"
        standin = str(EXAMPLE / "linkerd-await-standin.c")
        run_ok([cc, "-static", "-O2", "-o", str(binary), standin], env)
        add = ["cache", "add", "--config", str(config), "--for", f"linkerd-await:0.3.3:{arch}"]
        run_ok([*cli, *add, str(binary)], env)
    fast_build(config, out / "oci", env)
    return env
