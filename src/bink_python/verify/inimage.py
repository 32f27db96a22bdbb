"""Checks that run programs inside the image (``buildah run``; arm64 through qemu-user).

No shell is needed: each runs a binary directly or the image's ``python3`` with a probe
of :mod:`bink_python.verify.probes`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path

from ..host.arch import ARCHES
from ..host.distro import LDCONFIG
from ..oci.rootfs import create_file, make_dir_in_root
from ..runtime.contents import REMOVED_STDLIB_MODULES
from ..runtime.elf import ElfError, read_elf_of_arch
from .registry import CheckFailed, NotApplicable, Probe, check, fail_on, last_line
from .static import static_user_problems


@check(
    "python-version",
    "`python3 --version` prints exactly the tag's pinned version, `python3` is "
    "`/usr/local`'s, and `sys.implementation._multiarch` and `platform.machine()` match "
    "the image's architecture.",
)
def check_python_version(p: Probe) -> str:
    e = p.expect
    result = p.run(["python3", "--version"])
    printed = result.output.strip()
    if not result.ok or printed != f"Python {e.version}":
        raise CheckFailed(
            f"python3 --version printed {last_line(printed)!r}, expected 'Python {e.version}'",
            result.describe(),
        )
    data = p.probe("version")
    problems = []
    if data.get("multiarch") != e.multiarch:
        problems.append(
            f"sys.implementation._multiarch is {data.get('multiarch')!r}, expected {e.multiarch!r}"
        )
    machine = ARCHES[e.arch].qemu
    if data.get("machine") != machine:
        problems.append(f"platform.machine() is {data.get('machine')!r}, expected {machine!r}")
    if data.get("prefix") != "/usr/local":
        problems.append(f"sys.prefix is {data.get('prefix')!r}, expected '/usr/local'")
    if problems:
        raise CheckFailed("; ".join(problems), json.dumps(data))
    return f"Python {e.version}, {e.multiarch}"


@check(
    "stdlib-imports",
    "Standard-library modules that need system libraries import and work: ssl, sqlite3, "
    'ctypes (loading libc; `ctypes.util.find_library("c")` must find it in regular '
    "images -- distroless has no `ldconfig`, so there it is only reported), lzma, bz2, "
    "zlib, readline, curses, dbm.gnu, pyexpat, uuid (`_uuid`), decimal (`_decimal`), "
    "zoneinfo (a named zone resolves), hashlib algorithms, and `_zstd` on 3.14+.",
)
def check_stdlib_imports(p: Probe) -> str:
    want = {"find_library": not p.expect.distroless}
    data = p.probe("imports", json.dumps(want))
    failed = {k: v[1] for k, v in data.items() if not v[0]}
    if failed:
        text = "\n".join(f"{k}: {v}" for k, v in failed.items())
        first = next(iter(failed))
        raise CheckFailed(
            f"{len(failed)} module(s) failed: {', '.join(failed)} ({first}: {failed[first]})",
            text,
        )
    return f"{len(data)} modules work ({data['ssl'][1]}; ctypes {data['ctypes'][1]})"


@check(
    "tls-trust-store",
    "`ssl.create_default_context()` loads a non-empty set of CA certificates "
    "(`cert_store_stats()['x509_ca'] > 0`) from the image's trust store.",
)
def check_tls(p: Probe) -> str:
    data = p.probe("tls")
    count = int((data.get("stats") or {}).get("x509_ca", 0))
    if count <= 0:
        raise CheckFailed(
            f"no CA certificates loaded (OpenSSL cafile {data.get('cafile')!r}, "
            f"capath {data.get('capath')!r}): is ca-certificates installed?",
            json.dumps(data),
        )
    return f"{count} CA certificates from {data.get('cafile')}"


_WHEEL_NAME = "bink_verify_probe"
_WHEEL_VERSION = "1.0"


def probe_wheel() -> tuple[str, bytes]:
    """A tiny pure-Python wheel (file name, bytes) made with zipfile, for the pip check."""
    dist = f"{_WHEEL_NAME}-{_WHEEL_VERSION}"
    files = {
        f"{_WHEEL_NAME}/__init__.py": b'VALUE = "bink-verify-ok"\n',
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {_WHEEL_NAME}\nVersion: {_WHEEL_VERSION}\n"
            "Summary: bink-python verify probe\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: bink-python\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record_lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{name},sha256={digest},{len(data)}")
    record_lines.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


def _scratch(p: Probe) -> Path:
    """The probe's scratch directory in the container, made afresh from the host (mode
    0755, owned by root: the unprivileged probes cannot change it); whatever the image
    or an earlier probe left there (a symlink onto the host...) is removed first."""
    return make_dir_in_root(p.root, p.scratch, mode=0o755, fresh=True)


@check(
    "pip",
    "`python3 -m pip --version` works and `pip install --no-index` of a local wheel "
    "(made by verify) installs an importable package.",
)
def check_pip(p: Probe) -> str:
    version = p.run(["python3", "-m", "pip", "--version"])
    if not version.ok:
        raise CheckFailed(
            f"python3 -m pip --version failed: {last_line(version.output)}", version.describe()
        )
    name, data = probe_wheel()
    create_file(_scratch(p), name, data)
    target = f"/tmp/bink-verify-pip-{os.getpid()}"
    install = p.run(
        [
            "python3",
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            target,
            f"{p.scratch}/{name}",
        ]
    )
    if not install.ok:
        raise CheckFailed(
            f"pip install of a local wheel failed: {last_line(install.output)}",
            install.describe(),
        )
    result = p.probe("pip_import", target)
    if result.get("value") != "bink-verify-ok":
        raise CheckFailed("the installed probe package did not import", json.dumps(result))
    return version.output.strip().split(" from ")[0]


@check(
    "venv",
    "Regular images only: `python3 -m venv` creates an environment whose python runs "
    "and whose pip works.",
)
def check_venv(p: Probe) -> str:
    if p.expect.distroless:
        raise NotApplicable("distroless image (no venv promise)")
    env = f"/tmp/bink-verify-venv-{os.getpid()}"
    made = p.run(["python3", "-m", "venv", env])
    if not made.ok:
        raise CheckFailed(f"python3 -m venv failed: {last_line(made.output)}", made.describe())
    data = p.probe("venv", interpreter=f"{env}/bin/python")
    if data.get("prefix") != env or data.get("base") != "/usr/local":
        raise CheckFailed(
            f"the venv python reports prefix {data.get('prefix')!r}", json.dumps(data)
        )
    pip = p.run([f"{env}/bin/python", "-m", "pip", "--version"])
    if not pip.ok:
        raise CheckFailed(f"pip in the venv failed: {last_line(pip.output)}", pip.describe())
    return f"venv at {env} with pip"


@check(
    "apps-user",
    "The `[family.user]` of images.toml (`apps`, UID/GID 10000) is in `/etc/passwd` and "
    "`/etc/group` with that UID/GID and home, its home exists and is owned by it, and a "
    "process running as that UID:GID resolves the name and can write to `/tmp` and its home.",
)
def check_apps_user(p: Probe) -> str:
    e = p.expect
    problems = static_user_problems(p)
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    data = p.probe("user", user=f"{e.user.uid}:{e.user.gid}")
    if (data.get("uid"), data.get("gid")) != (e.user.uid, e.user.gid) or data.get(
        "name"
    ) != e.user.name:
        problems.append(f"running as {e.user.uid}:{e.user.gid} gives {data}")
    if data.get("tmp") is not True:
        problems.append(f"user {e.user.name} cannot write /tmp: {data.get('tmp')}")
    if data.get("home_write") is not True:
        problems.append(f"user {e.user.name} cannot write {e.user.home}: {data.get('home_write')}")
    if problems:
        raise CheckFailed("; ".join(problems), json.dumps(data))
    return f"{e.user.name} {e.user.uid}:{e.user.gid}, home {e.user.home}, writes /tmp"


#: Submodules of the start-up import set that the top-level imports do not reach.
_NO_COMPILE_EXTRA = (
    "email.message",
    "http.client",
    "urllib.request",
    "logging.handlers",
    "concurrent.futures",
    "json.decoder",
    "xml.etree.ElementTree",
)


@check(
    "stdlib-no-compile",
    "As the `[family.user]` (10000), with the image's own bytecode (no "
    "`PYTHONPYCACHEPREFIX`), `python3` starts and imports every standard-library module of "
    "the platform but the ones the images leave out (and a set of submodules) without "
    "compiling any stdlib source: start-up's modules have valid bytecode of this "
    "interpreter, nothing passes through `SourceFileLoader.source_to_code`; the modules "
    "left out stay out.",
)
def check_stdlib_no_compile(p: Probe) -> str:
    e = p.expect
    data = p.probe(
        "no_compile",
        json.dumps(sorted(REMOVED_STDLIB_MODULES)),
        json.dumps(_NO_COMPILE_EXTRA),
        user=f"{e.user.uid}:{e.user.gid}",
        own_bytecode=True,
    )
    stdlib = f"/usr/local/lib/python{'.'.join(e.version.split('.')[:2])}/"

    def in_stdlib(path: str) -> bool:  # site-packages (e.g. a sitecustomize) is not shipped
        return path.startswith(stdlib) and "/site-packages/" not in path

    problems = [f"compiled at run time: {p}" for p in data.get("compiled", []) if in_stdlib(p)]
    problems += [
        f"start-up module without valid bytecode: {p}"
        for p in data.get("stale", [])
        if in_stdlib(p)
    ]
    problems += [f"does not import: {f}" for f in data.get("failed", [])]
    problems += [f"left out but present: {m}" for m in data.get("removed_found", [])]
    fail_on(problems, "problem(s), first")
    return f"{data.get('imported')} modules imported as {e.user.uid} without compiling"


@check(
    "linkerd-await",
    "Each component (linkerd-await at `/usr/local/bin/linkerd-await`) is present, "
    "executable, an ELF file for the image's architecture, and `--help` exits 0.",
)
def check_components(p: Probe) -> str:
    if not p.expect.components:
        raise NotApplicable("the tag has no components")
    done = []
    for name, path in p.expect.components:
        host = p.host_path(path)
        if host is None or not host.is_file():
            raise CheckFailed(f"{name}: {path} is missing")
        mode = host.stat().st_mode
        if not mode & 0o111:
            raise CheckFailed(f"{name}: {path} is not executable (mode {stat.filemode(mode)})")
        try:
            info = read_elf_of_arch(host, p.expect.arch)
        except ElfError as exc:
            raise CheckFailed(f"{name}: {path} {exc}") from exc
        result = p.run([path, "--help"])
        if not result.ok:
            raise CheckFailed(
                f"{name}: {path} --help exited {result.returncode}: {last_line(result.output)}",
                result.describe(),
            )
        done.append(f"{name} ({info.machine_name}) runs")
    return ", ".join(done)


@check(
    "recursion",
    "Stack-size smoke test: with `sys.setrecursionlimit(10000)`, deep recursion in the "
    "main thread and in a new thread (default thread stack size) ends in a clean "
    "`RecursionError` near the limit, not a crash.",
)
def check_recursion(p: Probe) -> str:
    data = p.probe("recursion")
    low = {k: v for k, v in data.items() if not isinstance(v, int) or v < 9000}
    if low or set(data) != {"main", "thread"}:
        raise CheckFailed(f"recursion stopped early: {data}", json.dumps(data))
    return f"depth {data['main']} (main), {data['thread']} (thread)"


@check(
    "utf8-filenames",
    "A file with a non-ASCII UTF-8 name (accents, CJK, emoji) is created, listed and read "
    "back unchanged; the filesystem encoding is UTF-8.",
)
def check_utf8(p: Probe) -> str:
    data = p.probe("utf8")
    if data.get("fsencoding") != "utf-8" or not data.get("roundtrip") or not data.get("bytes"):
        why = f": {data['error']}" if data.get("error") else ""
        raise CheckFailed(
            f"UTF-8 file name round trip failed (filesystem encoding "
            f"{data.get('fsencoding')!r}){why}",
            json.dumps(data),
        )
    return "round trip ok, filesystem encoding utf-8"


@check(
    "ld-cache",
    "Regular images: the dynamic loader's cache lists `libpython3.X.so.1.0` in "
    "`/usr/local/lib` (`ldconfig -p`, run in the image), so programs that embed Python "
    "(uwsgi, mod_wsgi) load the library the image ships.",
)
def check_ld_cache(p: Probe) -> str:
    if p.expect.distroless:
        raise NotApplicable("distroless images have no ldconfig")
    minor = ".".join(p.expect.version.split(".")[:2])
    name = f"libpython{minor}.so.1.0"
    result = p.run([LDCONFIG, "-p"])
    if not result.ok:
        raise CheckFailed(
            f"ldconfig -p exited {result.returncode}: {last_line(result.output)}",
            result.describe(),
        )
    lines = [line.strip() for line in result.output.splitlines()]
    listed = [line for line in lines if line.startswith(f"{name} ")]
    if not any(line.endswith(f"=> /usr/local/lib/{name}") for line in listed):
        where = f" (listed: {listed[0]})" if listed else ""
        raise CheckFailed(
            f"the loader cache does not list {name} in /usr/local/lib{where}: "
            "/etc/ld.so.cache was not made over the runtime",
            result.describe(),
        )
    return f"{name} => /usr/local/lib/{name} ({lines[0] if lines else 'cache listed'})"
