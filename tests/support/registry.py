"""A real CNCF distribution registry (``docker-registry``) on 127.0.0.1 for tests.

Each :class:`LocalRegistry` has its own storage directory and a free port; it can
be stopped (SIGKILL, like a crash) and started again on the same port and storage.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .children import die_with_parent
from .tools import requires_tool

REGISTRY_BIN = "docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_containing(digits: str) -> int:
    """A free port whose number holds ``digits`` (a status code hiding in an address)."""
    candidates = [port for port in range(1024, 65536) if digits in str(port)]
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port holding {digits} on this machine")


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash (the only kind the registry accepts), via libcrypt."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        pytest.skip("libcrypt not found: cannot make a bcrypt htpasswd entry")
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2b$", 4, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2b$"):
        pytest.skip("libcrypt cannot make bcrypt hashes here")
    return f"{user}:{hashed.decode()}\n"


class LocalRegistry:
    def __init__(self, workdir: Path, *, htpasswd: Path | None = None) -> None:
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.port = free_port()
        self.config = workdir / "config.yml"
        self.log = workdir / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.storage.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no quoting surprises for the paths.
        body: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{self.port}"},
        }
        if htpasswd is not None:
            body["auth"] = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
        self.config.write_text(json.dumps(body, indent=1) + "\n")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = requires_tool(REGISTRY_BIN, "docker-registry")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # a killed session leaves no registry behind
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                    return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, with auth
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry did not start on {self.host}")

    def stop(self) -> None:
        """Kill the registry at once (like a crash or a network cut)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def upload_in_progress(self) -> bool:
        """True once some blob upload has started on the registry's storage."""
        repos = self.storage / "docker" / "registry" / "v2" / "repositories"
        return any(repos.glob("**/_uploads/*")) if repos.is_dir() else False


@contextlib.contextmanager
def running_registry(workdir: Path, *, htpasswd: Path | None = None) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(workdir, htpasswd=htpasswd)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()
