"""The ``verify`` stage: prove every image of every arch works before it is published.

Each image (one tag, one arch) is taken from the OCI layout into a private buildah
storage (:mod:`bink_python.imagerun`), mounted on the host, and put through the
named checks of :data:`CHECKS`. *Static* checks read the mounted root filesystem
and the image's config/manifest; they run first, before anything runs inside the
image (a root Python would otherwise write ``__pycache__`` into the very tree that
is checked for ``.pyc`` files; probes write bytecode under :data:`PYCACHE` only).
*Run* checks execute programs inside the image
with ``buildah run --isolation chroot`` -- arm64 images through qemu-user -- and
never need a shell: every probe is ``python3 -c <program>`` or a binary run
directly, so the same checks work in distroless images.

:func:`verify_layout` verifies named tags of a layout; :func:`verify_manifest`
verifies one manifest by descriptor (``build`` calls it before any ref moves);
:func:`verify_image` takes a ref or digest and picks the arch from an index. The
results form a :class:`VerifyReport` (``table()``, ``to_json()``,
``raise_for_failures()`` raising :class:`~bink_python.errors.VerifyError`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .assemble import LABEL_EOL, LABEL_STATUS
from .binfmt import emulation_env
from .config import Family, Tag
from .distro import ARCHES, check_arch
from .errors import BuildError, VerifyError
from .imagerun import Buildah, Container, RunResult, buildah_session, image_container
from .layout import MEDIA_INDEX, MEDIA_MANIFEST, Descriptor, Layout, Platform
from .progress import SILENT, Progress

LABEL_VERSION = "org.opencontainers.image.version"

# -- expectations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """What one image (one tag, one arch) must be, derived from images.toml."""

    tag: str
    version: str  # exact CPython version, "3.13.15"
    arch: str  # "amd64" | "arm64"
    variant: str  # "regular" | "distroless"
    user_name: str  # the apps user
    uid: int
    gid: int
    home: str
    eol: str  # "YYYY-MM", "" when the tag has none
    status: str
    components: tuple[tuple[str, str], ...] = ()  # (name, path in the image)

    @classmethod
    def for_tag(cls, family: Family, tag: Tag, arch: str) -> Expectation:
        check_arch(arch, VerifyError)
        return cls(
            tag=tag.name,
            version=tag.version,
            arch=arch,
            variant=tag.variant,
            user_name=family.user.name,
            uid=family.user.uid,
            gid=family.user.gid,
            home=family.user.home,
            eol=str(tag.eol) if tag.eol is not None else "",
            status=tag.status,
            components=tuple((c, family.component(c).path) for c in tag.components),
        )

    @property
    def distroless(self) -> bool:
        return self.variant == "distroless"

    @property
    def default_user(self) -> str:
        """The config ``User``: root (empty) for regular images, ``uid:gid`` for distroless."""
        return f"{self.uid}:{self.gid}" if self.distroless else ""

    @property
    def multiarch(self) -> str:
        return ARCHES[self.arch]["gnu"]

    @property
    def machine(self) -> int:
        return int(ARCHES[self.arch]["elf_machine"])

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def platform(self) -> Platform:
        return Platform.for_arch(self.arch)


# -- results ---------------------------------------------------------------------------

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str  # one line: what was found (or why it failed / was skipped)
    output: str = ""  # the failing command's output or the offending paths
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "detail": self.detail,
            "output": self.output,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class ImageReport:
    tag: str
    arch: str
    digest: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "arch": self.arch,
            "digest": self.digest,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class VerifyReport:
    images: tuple[ImageReport, ...]

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.images)

    def table(self) -> str:
        """One row per tag/arch/check; failing checks followed by their command output."""
        rows = [("TAG", "ARCH", "CHECK", "RESULT", "DETAIL")]
        notes: list[str] = []
        for image in self.images:
            for check in image.checks:
                rows.append((image.tag, image.arch, check.name, check.status, check.detail))
                if not check.ok and check.output:
                    notes.append(
                        f"--- {image.tag} {image.arch} {check.name}\n{check.output.rstrip()}"
                    )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
            for row in rows
        ]
        passed = sum(1 for i in self.images for c in i.checks if c.status == PASS)
        failed = sum(1 for i in self.images for c in i.checks if c.status == FAIL)
        lines.append(f"{len(self.images)} image(s): {passed} passed, {failed} failed")
        return "\n".join(line.rstrip() for line in lines + notes) + "\n"

    def to_json(self) -> str:
        data = {"ok": self.ok, "images": [i.to_json() for i in self.images]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def failures(self) -> list[tuple[ImageReport, CheckResult]]:
        return [(i, c) for i in self.images for c in i.failed]

    def raise_for_failures(self) -> None:
        """VerifyError (exit 8) naming every failed check, when any failed."""
        failed = self.failures()
        if failed:
            listed = "; ".join(f"{i.tag} {i.arch} {c.name}: {c.detail}" for i, c in failed)
            raise VerifyError(
                f"{len(failed)} check(s) failed: {listed} (see the table for the output)"
            )


# -- ELF reading -----------------------------------------------------------------------

ELF_MAGIC = b"\x7fELF"
_PT_DYNAMIC, _PT_INTERP, _PT_LOAD = 2, 3, 1
_DT_NEEDED, _DT_STRTAB, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 5, 14, 15, 29
_ET_EXEC, _ET_DYN = 2, 3


@dataclass(frozen=True)
class ElfInfo:
    """The parts of an ELF file the dynamic loader looks at."""

    elf_class: int  # 1: 32-bit, 2: 64-bit
    machine: int  # e_machine: 62 x86-64, 183 AArch64
    type: int  # e_type: 2 EXEC, 3 DYN, 1 REL...
    interpreter: str = ""
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str = ""


class ElfError(ValueError):
    """A file that starts like ELF but cannot be parsed."""


def read_elf(data: bytes) -> ElfInfo:
    """Parse an ELF image in memory (any class, either byte order)."""
    if len(data) < 52 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    elf_class, endian = data[4], data[5]
    if elf_class not in (1, 2) or endian not in (1, 2):
        raise ElfError(f"bad ELF class/data bytes {elf_class}/{endian}")
    end = "<" if endian == 1 else ">"
    try:
        if elf_class == 2:
            e_type, machine, _v, _entry, phoff, _shoff, _flags, _eh, phentsize, phnum = (
                struct.unpack_from(end + "HHIQQQIHHH", data, 16)
            )
            ph_fmt, dyn_fmt = end + "IIQQQQQQ", end + "qQ"
        else:
            e_type, machine, _v, _entry, phoff, _shoff, _flags, _eh, phentsize, phnum = (
                struct.unpack_from(end + "HHIIIIIHHH", data, 16)
            )
            ph_fmt, dyn_fmt = end + "IIIIIIII", end + "iI"
        loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        dynamic: tuple[int, int] | None = None
        interp = ""
        for i in range(phnum):
            fields = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
            if elf_class == 2:
                p_type, _pflags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
            elif p_type == _PT_INTERP:
                interp = data[p_offset : p_offset + p_filesz].split(b"\0", 1)[0].decode()
        info = ElfInfo(elf_class, machine, e_type, interpreter=interp)
        if dynamic is None:
            return info
        entries: list[tuple[int, int]] = []
        size = struct.calcsize(dyn_fmt)
        offset, length = dynamic
        for pos in range(offset, offset + length - size + 1, size):
            tag, value = struct.unpack_from(dyn_fmt, data, pos)
            if tag == 0:
                break
            entries.append((tag, value))
    except struct.error as exc:
        raise ElfError(f"truncated ELF file ({exc})") from exc
    strtab = next((v for t, v in entries if t == _DT_STRTAB), None)
    if strtab is None:
        return info
    base = next((off + strtab - va for va, off, sz in loads if va <= strtab < va + sz), None)
    if base is None:
        raise ElfError("DT_STRTAB is outside every loadable segment")

    def string(offset: int) -> str:
        start = base + offset
        stop = data.find(b"\0", start)
        if start >= len(data) or stop < 0:
            raise ElfError("dynamic string offset out of range")
        return data[start:stop].decode(errors="replace")

    def paths(tag: int) -> tuple[str, ...]:
        return tuple(p for t, v in entries if t == tag for p in string(v).split(":") if p)

    return replace(
        info,
        needed=tuple(string(v) for t, v in entries if t == _DT_NEEDED),
        rpath=paths(_DT_RPATH),
        runpath=paths(_DT_RUNPATH),
        soname=next((string(v) for t, v in entries if t == _DT_SONAME), ""),
    )


def read_elf_file(path: Path) -> ElfInfo | None:
    """The ELF info of a regular file, or None when it is not ELF."""
    with open(path, "rb") as handle:
        if handle.read(4) != ELF_MAGIC:
            return None
        handle.seek(0)
        return read_elf(handle.read())


# -- paths inside a mounted root filesystem --------------------------------------------


def resolve_in_root(root: Path, path: str, *, max_links: int = 40) -> Path | None:
    """``path`` (absolute, in the image) resolved with symlinks interpreted inside ``root``.

    Returns the host path of the final file, or None when it does not exist.
    """
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    current: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if current:
                current.pop()
            continue
        host = root.joinpath(*current, part)
        if host.is_symlink():
            links += 1
            if links > max_links:
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                current = []
            parts = [p for p in PurePosixPath(target).parts if p != "/"] + parts
            continue
        if not os.path.lexists(host):
            return None
        current.append(part)
    return root.joinpath(*current)


def _image_paths(root: Path) -> Iterator[tuple[str, Path]]:
    """Every entry of the image as (absolute path in the image, host path); no /proc etc."""
    skip = {"proc", "sys", "dev"}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
            rel = ""
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            inner = "/" + (f"{rel}/{name}" if rel else name)
            yield inner, Path(dirpath) / name


def _ld_conf_dirs(root: Path, conf: str = "/etc/ld.so.conf", depth: int = 0) -> list[str]:
    """Directories listed by ld.so.conf and its ``include`` globs, in order."""
    host = resolve_in_root(root, conf)
    if host is None or depth > 8 or not host.is_file():
        return []
    out: list[str] = []
    for raw in host.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
            if not pattern.startswith("/"):
                pattern = str(PurePosixPath(conf).parent / pattern)
            parent = resolve_in_root(root, str(PurePosixPath(pattern).parent))
            if parent is None or not parent.is_dir():
                continue
            for match in sorted(parent.glob(PurePosixPath(pattern).name)):
                inner = str(PurePosixPath(pattern).parent / match.name)
                out += _ld_conf_dirs(root, inner, depth + 1)
        elif line.startswith("/"):
            out.append(line)
    return out


def library_dirs(root: Path, multiarch: str) -> list[str]:
    """Where the image's dynamic loader looks for libraries not found through RUNPATH.

    glibc reads ld.so.conf only through /etc/ld.so.cache: the conf directories count
    only when the cache exists (distroless images have neither ldconfig nor a cache).
    The trusted default directories (Debian multiarch first) always count.
    """
    dirs: list[str] = []
    if resolve_in_root(root, "/etc/ld.so.cache") is not None:
        dirs += _ld_conf_dirs(root)
    dirs += [f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib", "/usr/lib"]
    if multiarch.startswith("x86_64"):
        dirs += ["/lib64", "/usr/lib64"]
    seen: dict[str, None] = {}
    for d in dirs:
        seen.setdefault(d, None)
    return list(seen)


def unresolved_needed(root: Path, multiarch: str, machine: int) -> tuple[int, list[str]]:
    """(ELF objects scanned, problems): NEEDED libraries or interpreters not in the image."""
    default_dirs = library_dirs(root, multiarch)
    problems: list[str] = []
    scanned = 0
    cache: dict[str, bool] = {}

    def usable(candidate: str) -> bool:
        if candidate not in cache:
            host = resolve_in_root(root, candidate)
            ok = False
            if host is not None and host.is_file():
                try:
                    info = read_elf_file(host)
                    ok = info is not None and info.machine == machine
                except (OSError, ElfError):
                    ok = False
            cache[candidate] = ok
        return cache[candidate]

    for inner, host in _image_paths(root):
        try:
            st = host.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size < 52:
                continue
            info = read_elf_file(host)
        except ElfError as exc:
            problems.append(f"{inner}: unreadable ELF ({exc})")
            continue
        except OSError:
            continue
        if info is None or info.type not in (_ET_EXEC, _ET_DYN):
            continue
        scanned += 1
        if info.interpreter and not usable(info.interpreter):
            problems.append(f"{inner}: interpreter {info.interpreter} not found")
        origin = str(PurePosixPath(inner).parent)
        own = info.runpath or (info.rpath if not info.runpath else ())
        search = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in own]
        for lib in info.needed:
            if "/" in lib:
                found = usable(lib if lib.startswith("/") else f"{origin}/{lib}")
            else:
                found = any(usable(f"{d}/{lib}") for d in (*search, *default_dirs))
            if not found:
                problems.append(f"{inner}: NEEDED {lib} not found")
    return scanned, problems


# -- check machinery -------------------------------------------------------------------


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


@dataclass
class Probe:
    """What a check sees: the expectation, the container, the image config and manifest."""

    expect: Expectation
    container: Container
    config: dict[str, Any]
    manifest: dict[str, Any]
    scratch: str = "/tmp/bink-verify"  # a root-owned directory written from the host

    @property
    def root(self) -> Path:
        return self.container.rootfs

    def run(self, argv: Sequence[str], *, user: str | None = None) -> RunResult:
        env = [f"PYTHONPYCACHEPREFIX={PYCACHE}"]
        env += [f"{k}={v}" for k, v in emulation_env(self.expect.arch).items()]
        return self.container.run(argv, user=user, env=tuple(env))

    def python(
        self, program: str, *args: str, user: str | None = None, interpreter: str = "python3"
    ) -> dict[str, Any]:
        """Run ``program`` with the image's python3; it must print one JSON object last."""
        result = self.run([interpreter, "-c", program, *args], user=user)
        if not result.ok:
            raise CheckFailed(
                f"{interpreter} exited {result.returncode}: {_last_line(result.output)}",
                result.describe(),
            )
        try:
            data = json.loads(result.output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise CheckFailed("the probe printed no JSON result", result.describe()) from None
        if not isinstance(data, dict):
            raise CheckFailed("the probe printed no JSON object", result.describe())
        return data

    def host_path(self, inner: str) -> Path | None:
        return resolve_in_root(self.root, inner)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


CheckFunc = Callable[[Probe], str]


@dataclass(frozen=True)
class Check:
    name: str
    doc: str
    func: CheckFunc
    static: bool  # reads files only (runs before anything runs in the image)


_REGISTRY: dict[str, Check] = {}


def _check(name: str, doc: str, *, static: bool = False) -> Callable[[CheckFunc], CheckFunc]:
    def register(func: CheckFunc) -> CheckFunc:
        _REGISTRY[name] = Check(name, doc, func, static)
        return func

    return register


def _listing(paths: Sequence[str], limit: int = 20) -> str:
    shown = "\n".join(paths[:limit])
    more = len(paths) - limit
    return shown + (f"\n... and {more} more" if more > 0 else "")


# -- static checks ---------------------------------------------------------------------


@_check(
    "image-config",
    "The image config and manifest are what images.toml says: platform; `PATH` starting "
    'with `/usr/local/bin`, `LANG=C.UTF-8`, `PYTHON_VERSION`; `Cmd ["python3"]`; user '
    "root (regular) or `10000:10000` (distroless); version, EOL and status labels and "
    "manifest annotations.",
    static=True,
)
def check_image_config(p: Probe) -> str:
    e = p.expect
    problems: list[str] = []
    plat = e.platform
    if p.config.get("architecture") != plat.architecture or p.config.get("os") != plat.os:
        problems.append(
            f"platform {p.config.get('os')}/{p.config.get('architecture')}, expected {plat}"
        )
    if plat.variant and p.config.get("variant") != plat.variant:
        problems.append(f"variant {p.config.get('variant')!r}, expected {plat.variant!r}")
    cfg = p.config.get("config") or {}
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
    path = env.get("PATH", "")
    if path.split(":")[0] != "/usr/local/bin":
        problems.append(f"PATH={path!r} does not start with /usr/local/bin")
    if env.get("LANG") != "C.UTF-8":
        problems.append(f"LANG={env.get('LANG')!r}, expected 'C.UTF-8'")
    if env.get("PYTHON_VERSION") != e.version:
        problems.append(f"PYTHON_VERSION={env.get('PYTHON_VERSION')!r}, expected {e.version!r}")
    if (cfg.get("Cmd") or []) != ["python3"]:
        problems.append(f"Cmd {cfg.get('Cmd')!r}, expected ['python3']")
    if (cfg.get("User") or "") != e.default_user:
        want = e.default_user or "root (empty)"
        problems.append(f"User {cfg.get('User')!r}, expected {want}")
    wanted = {LABEL_VERSION: e.version, LABEL_EOL: e.eol, LABEL_STATUS: e.status}
    labels = cfg.get("Labels") or {}
    annotations = p.manifest.get("annotations") or {}
    for key, value in wanted.items():
        if labels.get(key) != value:
            problems.append(f"label {key}={labels.get(key)!r}, expected {value!r}")
        if annotations.get(key) != value:
            problems.append(f"annotation {key}={annotations.get(key)!r}, expected {value!r}")
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    return f"{plat}, PYTHON_VERSION={e.version}, user {e.default_user or 'root'}, EOL {e.eol}"


_COMPILER_RE = re.compile(
    r"^(?:[a-z0-9_]+-linux-gnu-)?(?:gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|ld|as|make)"
    r"(?:-\d+(?:\.\d+)*)?$"
)
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


@_check(
    "no-build-tools",
    "No compilers or build tools (`gcc`, `cc`, `c++`, `cpp`, `ld`, `as`, `make`, ...), no "
    "system development headers (`/usr/include/python*`, any `*.h` under `/usr/include`), "
    "no `*.pyc`/`*.pyo` files, no `test`/`tests`/`idle_test` directories under "
    "`/usr/local/lib/python3.*`, no `libpython*.a`.",
    static=True,
)
def check_no_build_tools(p: Probe) -> str:
    found: list[str] = []
    counted = 0
    for inner, host in _image_paths(p.root):
        counted += 1
        name = host.name
        parent = str(PurePosixPath(inner).parent)
        is_dir = host.is_dir() and not host.is_symlink()
        if parent in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin"):
            if _COMPILER_RE.match(name):
                found.append(f"compiler/build tool: {inner}")
        elif inner.startswith("/usr/include/") and (
            inner.startswith("/usr/include/python") or (name.endswith(".h") and not is_dir)
        ):
            found.append(f"header: {inner}")
        if name.endswith((".pyc", ".pyo")) and not is_dir:
            found.append(f"bytecode: {inner}")
        if name.startswith("libpython") and name.endswith(".a"):
            found.append(f"static library: {inner}")
        if is_dir and name in _TEST_DIRS and re.match(r"^/usr/local/lib/python3\.\d+/", inner):
            found.append(f"test directory: {inner}")
    if found:
        raise CheckFailed(f"{len(found)} forbidden file(s), first: {found[0]}", _listing(found))
    return f"{counted} paths scanned, none forbidden"


@_check(
    "elf-needed",
    "Every ELF executable and shared object's `NEEDED` libraries and program interpreter "
    "resolve inside the image, to a file of the image's architecture (searching "
    "`RUNPATH`/`RPATH` with `$ORIGIN`, ld.so.conf when `/etc/ld.so.cache` exists, and the "
    "loader's default directories).",
    static=True,
)
def check_elf_needed(p: Probe) -> str:
    scanned, problems = unresolved_needed(p.root, p.expect.multiarch, p.expect.machine)
    if scanned == 0:
        raise CheckFailed("no ELF executables or libraries found in the image")
    if problems:
        raise CheckFailed(f"{len(problems)} unresolved: {problems[0]}", _listing(problems))
    return f"{scanned} ELF objects, all NEEDED libraries resolve"


def _passwd_entry(root: Path, inner: str, name: str) -> list[str] | None:
    host = resolve_in_root(root, inner)
    if host is None or not host.is_file():
        return None
    for line in host.read_text(errors="replace").splitlines():
        fields = line.split(":")
        if fields and fields[0] == name:
            return fields
    return None


def _static_user_problems(p: Probe) -> list[str]:
    e = p.expect
    problems: list[str] = []
    pw = _passwd_entry(p.root, "/etc/passwd", e.user_name)
    if pw is None or len(pw) < 7:
        problems.append(f"user {e.user_name} missing from /etc/passwd")
    else:
        if pw[2] != str(e.uid) or pw[3] != str(e.gid):
            problems.append(
                f"/etc/passwd: {e.user_name} has {pw[2]}:{pw[3]}, expected {e.uid}:{e.gid}"
            )
        if pw[5] != e.home:
            problems.append(f"/etc/passwd: {e.user_name} home {pw[5]}, expected {e.home}")
    gr = _passwd_entry(p.root, "/etc/group", e.user_name)
    if gr is None or len(gr) < 3:
        problems.append(f"group {e.user_name} missing from /etc/group")
    elif gr[2] != str(e.gid):
        problems.append(f"/etc/group: {e.user_name} has GID {gr[2]}, expected {e.gid}")
    home = p.host_path(e.home)
    if home is None or not home.is_dir():
        problems.append(f"home {e.home} does not exist")
    else:
        st = home.stat()
        if (st.st_uid, st.st_gid) != (e.uid, e.gid):
            problems.append(
                f"home {e.home} is owned by {st.st_uid}:{st.st_gid}, expected {e.uid}:{e.gid}"
            )
    return problems


_DISTROLESS_FORBIDDEN = (
    "/bin/sh",
    "/usr/bin/sh",
    "/bin/bash",
    "/usr/bin/bash",
    "/bin/dash",
    "/usr/bin/dash",
    "/usr/bin/apt",
    "/usr/bin/apt-get",
    "/usr/bin/dpkg",
    "/usr/bin/dpkg-deb",
    "/usr/bin/dpkg-query",
    "/sbin/ldconfig",
    "/usr/sbin/ldconfig",
)


@_check(
    "distroless",
    "Distroless images only: no shell (`/bin/sh`, `bash`, `dash`), no `apt`/`dpkg` "
    "binaries, default user `10000:10000`, and a dpkg status record per installed "
    "package in `/var/lib/dpkg/status.d` (so scanners see the packages).",
    static=True,
)
def check_distroless(p: Probe) -> str:
    if not p.expect.distroless:
        raise NotApplicable("regular image")
    problems: list[str] = []
    for inner in _DISTROLESS_FORBIDDEN:
        if os.path.lexists(p.root / inner.lstrip("/")):
            problems.append(f"{inner} is present")
    user = ((p.config.get("config") or {}).get("User")) or ""
    if user != p.expect.default_user:
        problems.append(f"default user {user or 'root'!r}, expected {p.expect.default_user}")
    status_d = p.host_path("/var/lib/dpkg/status.d")
    records: list[str] = []
    if status_d is not None and status_d.is_dir():
        for entry in sorted(status_d.iterdir()):
            if entry.suffix == ".md5sums" or not entry.is_file():
                continue
            text = entry.read_text(errors="replace")
            if re.search(r"^Package: ", text, re.M):
                records.append(entry.name)
    if not records:
        problems.append("/var/lib/dpkg/status.d has no package records")
    elif "libc6" not in records:
        problems.append("/var/lib/dpkg/status.d has no record for libc6")
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    return f"no shell or package manager, user {user}, {len(records)} dpkg status records"


# -- run checks ------------------------------------------------------------------------

_VERSION_PROBE = r"""
import json, platform, sys
print(json.dumps({"multiarch": getattr(sys.implementation, "_multiarch", None),
                  "machine": platform.machine(), "executable": sys.executable,
                  "prefix": sys.prefix}))
"""

_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


@_check(
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
            f"python3 --version printed {_last_line(printed)!r}, expected 'Python {e.version}'",
            result.describe(),
        )
    data = p.python(_VERSION_PROBE)
    problems = []
    if data.get("multiarch") != e.multiarch:
        problems.append(
            f"sys.implementation._multiarch is {data.get('multiarch')!r}, expected {e.multiarch!r}"
        )
    if data.get("machine") != _MACHINES[e.arch]:
        problems.append(
            f"platform.machine() is {data.get('machine')!r}, expected {_MACHINES[e.arch]!r}"
        )
    if data.get("prefix") != "/usr/local":
        problems.append(f"sys.prefix is {data.get('prefix')!r}, expected '/usr/local'")
    if problems:
        raise CheckFailed("; ".join(problems), json.dumps(data))
    return f"Python {e.version}, {e.multiarch}"


_IMPORTS_PROBE = r"""
import json, sys
want = json.loads(sys.argv[1])
results = {}
def probe(name, fn):
    try:
        results[name] = [True, str(fn())]
    except BaseException as exc:
        results[name] = [False, f"{type(exc).__name__}: {exc}"]

def t_ssl():
    import ssl
    return ssl.OPENSSL_VERSION
def t_sqlite3():
    import sqlite3
    con = sqlite3.connect(":memory:")
    assert con.execute("select 40 + 2").fetchone() == (42,)
    return "SQLite " + sqlite3.sqlite_version
def t_ctypes():
    import ctypes, ctypes.util
    libc = ctypes.CDLL("libc.so.6")
    assert libc.strlen(b"bink") == 4
    found = ctypes.util.find_library("c")
    if want["find_library"] and found != "libc.so.6":
        raise AssertionError(f"ctypes.util.find_library('c') returned {found!r}")
    return f"find_library('c') -> {found}"
def t_lzma():
    import lzma
    assert lzma.decompress(lzma.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"
def t_bz2():
    import bz2
    assert bz2.decompress(bz2.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"
def t_zlib():
    import zlib
    assert zlib.decompress(zlib.compress(b"bink" * 100)) == b"bink" * 100
    return zlib.ZLIB_RUNTIME_VERSION
def t_readline():
    import readline
    return getattr(readline, "_READLINE_LIBRARY_VERSION", "ok")
def t_curses():
    import curses
    return "ok"
def t_dbm():
    import dbm.gnu
    return "ok"
def t_pyexpat():
    import pyexpat
    return pyexpat.EXPAT_VERSION
def t_uuid():
    import _uuid, uuid
    assert uuid.uuid1().version == 1 and uuid.uuid4().version == 4
    return "ok"
def t_decimal():
    import _decimal, decimal
    assert decimal.Decimal("1.1") + decimal.Decimal("2.2") == decimal.Decimal("3.3")
    return decimal.__libmpdec_version__
def t_zoneinfo():
    import datetime, zoneinfo
    zone = zoneinfo.ZoneInfo("America/New_York")
    offset = datetime.datetime(2024, 1, 15, 12, tzinfo=zone).utcoffset()
    assert offset == datetime.timedelta(hours=-5), offset
    return "America/New_York -05:00 in January"
def t_hashlib():
    import hashlib
    names = ["md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "shake_128"]
    missing = [n for n in names if n not in hashlib.algorithms_available]
    assert not missing, f"missing algorithms {missing}"
    for n in names:
        hashlib.new(n, b"bink")
    import _hashlib
    return ", ".join(names)
def t_zstd():
    from compression import zstd
    assert zstd.decompress(zstd.compress(b"bink" * 100)) == b"bink" * 100
    return "ok"

tests = [("ssl", t_ssl), ("sqlite3", t_sqlite3), ("ctypes", t_ctypes), ("lzma", t_lzma),
         ("bz2", t_bz2), ("zlib", t_zlib), ("readline", t_readline), ("curses", t_curses),
         ("dbm.gnu", t_dbm), ("pyexpat", t_pyexpat), ("uuid", t_uuid),
         ("decimal", t_decimal), ("zoneinfo", t_zoneinfo), ("hashlib", t_hashlib)]
if sys.version_info >= (3, 14):
    tests.append(("_zstd", t_zstd))
for name, fn in tests:
    probe(name, fn)
print(json.dumps(results))
"""


@_check(
    "stdlib-imports",
    "Standard-library modules that need system libraries import and work: ssl, sqlite3, "
    'ctypes (loading libc; `ctypes.util.find_library("c")` must find it in regular '
    "images -- distroless has no `ldconfig`, so there it is only reported), lzma, bz2, "
    "zlib, readline, curses, dbm.gnu, pyexpat, uuid (`_uuid`), decimal (`_decimal`), "
    "zoneinfo (a named zone resolves), hashlib algorithms, and `_zstd` on 3.14+.",
)
def check_stdlib_imports(p: Probe) -> str:
    want = {"find_library": not p.expect.distroless}
    data = p.python(_IMPORTS_PROBE, json.dumps(want))
    failed = {k: v[1] for k, v in data.items() if not v[0]}
    if failed:
        text = "\n".join(f"{k}: {v}" for k, v in failed.items())
        first = next(iter(failed))
        raise CheckFailed(
            f"{len(failed)} module(s) failed: {', '.join(failed)} ({first}: {failed[first]})",
            text,
        )
    return f"{len(data)} modules work ({data['ssl'][1]}; ctypes {data['ctypes'][1]})"


_TLS_PROBE = r"""
import json, ssl
ctx = ssl.create_default_context()
paths = ssl.get_default_verify_paths()
print(json.dumps({"stats": ctx.cert_store_stats(), "cafile": paths.cafile,
                  "capath": paths.capath}))
"""


@_check(
    "tls-trust-store",
    "`ssl.create_default_context()` loads a non-empty set of CA certificates "
    "(`cert_store_stats()['x509_ca'] > 0`) from the image's trust store.",
)
def check_tls(p: Probe) -> str:
    data = p.python(_TLS_PROBE)
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
    """The probe's scratch directory in the container (created from the host, mode 0755)."""
    host = p.root / p.scratch.lstrip("/")
    host.mkdir(parents=True, exist_ok=True)
    host.chmod(0o755)
    return host


_PIP_IMPORT_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import bink_verify_probe
print(json.dumps({"value": bink_verify_probe.VALUE, "file": bink_verify_probe.__file__}))
"""


@_check(
    "pip",
    "`python3 -m pip --version` works and `pip install --no-index` of a local wheel "
    "(made by verify) installs an importable package.",
)
def check_pip(p: Probe) -> str:
    version = p.run(["python3", "-m", "pip", "--version"])
    if not version.ok:
        raise CheckFailed(
            f"python3 -m pip --version failed: {_last_line(version.output)}", version.describe()
        )
    name, data = probe_wheel()
    (_scratch(p) / name).write_bytes(data)
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
            f"pip install of a local wheel failed: {_last_line(install.output)}",
            install.describe(),
        )
    result = p.python(_PIP_IMPORT_PROBE, target)
    if result.get("value") != "bink-verify-ok":
        raise CheckFailed("the installed probe package did not import", json.dumps(result))
    return version.output.strip().split(" from ")[0]


_VENV_PROBE = r"""
import json, sys
print(json.dumps({"prefix": sys.prefix, "base": sys.base_prefix}))
"""


@_check(
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
        raise CheckFailed(f"python3 -m venv failed: {_last_line(made.output)}", made.describe())
    data = p.python(_VENV_PROBE, interpreter=f"{env}/bin/python")
    if data.get("prefix") != env or data.get("base") != "/usr/local":
        raise CheckFailed(
            f"the venv python reports prefix {data.get('prefix')!r}", json.dumps(data)
        )
    pip = p.run([f"{env}/bin/python", "-m", "pip", "--version"])
    if not pip.ok:
        raise CheckFailed(f"pip in the venv failed: {_last_line(pip.output)}", pip.describe())
    return f"venv at {env} with pip"


_USER_PROBE = r"""
import json, os, pwd, grp, tempfile
out = {"uid": os.getuid(), "gid": os.getgid()}
ent = pwd.getpwuid(os.getuid())
out["name"], out["home"] = ent.pw_name, ent.pw_dir
out["group"] = grp.getgrgid(os.getgid()).gr_name
for key, where in (("tmp", "/tmp"), ("home_write", ent.pw_dir)):
    try:
        with tempfile.NamedTemporaryFile(dir=where) as handle:
            handle.write(b"bink")
        out[key] = True
    except OSError as exc:
        out[key] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@_check(
    "apps-user",
    "The user `apps` has UID/GID 10000 in `/etc/passwd` and `/etc/group`, its home "
    "exists and is owned by it, and a process running as `10000:10000` resolves that "
    "name and can write to `/tmp` and its home.",
)
def check_apps_user(p: Probe) -> str:
    e = p.expect
    problems = _static_user_problems(p)
    if problems:
        raise CheckFailed("; ".join(problems[:3]), "\n".join(problems))
    data = p.python(_USER_PROBE, user=f"{e.uid}:{e.gid}")
    if (data.get("uid"), data.get("gid")) != (e.uid, e.gid) or data.get("name") != e.user_name:
        problems.append(f"running as {e.uid}:{e.gid} gives {data}")
    if data.get("tmp") is not True:
        problems.append(f"user {e.user_name} cannot write /tmp: {data.get('tmp')}")
    if data.get("home_write") is not True:
        problems.append(f"user {e.user_name} cannot write {e.home}: {data.get('home_write')}")
    if problems:
        raise CheckFailed("; ".join(problems), json.dumps(data))
    return f"{e.user_name} {e.uid}:{e.gid}, home {e.home}, writes /tmp"


_ELF_NAMES = {62: "x86-64", 183: "AArch64", 3: "i386", 40: "ARM"}


@_check(
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
            info = read_elf_file(host)
        except (OSError, ElfError) as exc:
            raise CheckFailed(f"{name}: {path} is not a readable ELF file ({exc})") from exc
        if info is None:
            raise CheckFailed(f"{name}: {path} is not an ELF file")
        if info.machine != p.expect.machine:
            got = _ELF_NAMES.get(info.machine, str(info.machine))
            want = _ELF_NAMES.get(p.expect.machine, str(p.expect.machine))
            raise CheckFailed(
                f"{name}: {path} is built for {got}, the image is {p.expect.arch} ({want})"
            )
        result = p.run([path, "--help"])
        if not result.ok:
            raise CheckFailed(
                f"{name}: {path} --help exited {result.returncode}: {_last_line(result.output)}",
                result.describe(),
            )
        done.append(f"{name} ({_ELF_NAMES.get(info.machine)}) runs")
    return ", ".join(done)


_RECURSION_PROBE = r"""
import json, sys, threading
sys.setrecursionlimit(10000)
def depth(n):
    try:
        return depth(n + 1)
    except RecursionError:
        return n
out = {"main": depth(0)}
def worker():
    out["thread"] = depth(0)
t = threading.Thread(target=worker)
t.start()
t.join()
print(json.dumps(out))
"""


@_check(
    "recursion",
    "Stack-size smoke test: with `sys.setrecursionlimit(10000)`, deep recursion in the "
    "main thread and in a new thread (default thread stack size) ends in a clean "
    "`RecursionError` near the limit, not a crash.",
)
def check_recursion(p: Probe) -> str:
    data = p.python(_RECURSION_PROBE)
    low = {k: v for k, v in data.items() if not isinstance(v, int) or v < 9000}
    if low or set(data) != {"main", "thread"}:
        raise CheckFailed(f"recursion stopped early: {data}", json.dumps(data))
    return f"depth {data['main']} (main), {data['thread']} (thread)"


_UTF8_PROBE = r"""
import json, os, sys, tempfile
name = "bink-\u00fcn\u00efc\u00f8d\u00e9-\u6587\u5b57-\U0001f40d.txt"
out = {"fsencoding": sys.getfilesystemencoding(), "stdout": sys.stdout.encoding}
try:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as handle:
            handle.write(name)
        listed = os.listdir(tmp)
        raw = os.listdir(os.fsencode(tmp))
        with open(os.path.join(tmp, listed[0]), encoding="utf-8") as handle:
            content = handle.read()
    out["roundtrip"] = listed == [name] and content == name
    out["bytes"] = raw == [name.encode("utf-8")]
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@_check(
    "utf8-filenames",
    "A file with a non-ASCII UTF-8 name (accents, CJK, emoji) is created, listed and read "
    "back unchanged; the filesystem encoding is UTF-8.",
)
def check_utf8(p: Probe) -> str:
    data = p.python(_UTF8_PROBE)
    if data.get("fsencoding") != "utf-8" or not data.get("roundtrip") or not data.get("bytes"):
        why = f": {data['error']}" if data.get("error") else ""
        raise CheckFailed(
            f"UTF-8 file name round trip failed (filesystem encoding "
            f"{data.get('fsencoding')!r}){why}",
            json.dumps(data),
        )
    return "round trip ok, filesystem encoding utf-8"


#: Every check, name -> documentation (the README lists these).
CHECKS: dict[str, str] = {name: check.doc for name, check in _REGISTRY.items()}


def readme_section(family: Family | None = None) -> str:
    """The README's list of checks (generated section ``verify-checks``)."""
    del family
    lines = ["| check | what it proves |", "| --- | --- |"]
    for name, check in _REGISTRY.items():
        lines.append(f"| `{name}` | {check.doc} |")
    return "\n".join(lines) + "\n"


# -- running ---------------------------------------------------------------------------


def _ordered(names: Sequence[str] | None) -> list[Check]:
    if names is None:
        chosen = list(_REGISTRY.values())
    else:
        unknown = [n for n in names if n not in _REGISTRY]
        if unknown:
            raise VerifyError(
                f"unknown check {unknown[0]!r}: expected one of {', '.join(_REGISTRY)}"
            )
        chosen = [c for c in _REGISTRY.values() if c.name in names]
    # static checks first: running python as root may write bytecode into the tree
    return [c for c in chosen if c.static] + [c for c in chosen if not c.static]


def _run_check(check: Check, probe: Probe) -> CheckResult:
    start = time.monotonic()
    try:
        detail = check.func(probe)
        status, output = PASS, ""
    except NotApplicable as why:
        status, detail, output = SKIP, f"not applicable: {why}", ""
    except CheckFailed as failed:
        status, detail, output = FAIL, failed.detail, failed.output
    except OSError as exc:
        status, detail, output = FAIL, f"could not read the image: {exc}", ""
    return CheckResult(check.name, status, detail, output, time.monotonic() - start)


def _run_checks(
    buildah: Buildah,
    layout: Layout,
    manifest: Descriptor,
    expect: Expectation,
    checks: Sequence[str] | None,
) -> ImageReport:
    from .binfmt import ensure_binfmt

    ensure_binfmt(expect.arch)
    data = layout.read_json(manifest.digest)
    config = layout.read_json(data["config"]["digest"])
    with image_container(
        buildah, layout.path, manifest, what=f"{expect.tag} {expect.arch}"
    ) as container:
        probe = Probe(expect, container, config, data)
        results: list[CheckResult] = []
        host_cache = _host_pycache(data)
        for check in _ordered(checks):
            cache = container.rootfs / PYCACHE.lstrip("/")
            if not check.static and not cache.is_dir():
                _seed_pycache(host_cache, cache)
            results.append(_run_check(check, probe))
        _save_pycache(container.rootfs / PYCACHE.lstrip("/"), host_cache)
    order = {name: i for i, name in enumerate(_REGISTRY)}
    ordered = tuple(sorted(results, key=lambda r: order[r.name]))
    return ImageReport(expect.tag, expect.arch, manifest.digest, ordered)


def _host_pycache(manifest: dict[str, Any]) -> Path | None:
    """A host directory keeping the probes' bytecode across verifications of images that
    share the same layers above the base (the same runtime): under qemu, compiling pip's
    modules once per image costs minutes. Only speed depends on it: Python checks every
    ``.pyc`` against its source (size and mtime) and recompiles a stale one."""
    from .store import cache_root

    layers = [str(x.get("digest", "")) for x in manifest.get("layers", [])[1:]]
    if not layers:
        return None
    key = hashlib.sha256("\n".join(layers).encode()).hexdigest()[:32]
    try:
        return cache_root() / "verify-pycache" / key
    except OSError:
        return None


def _seed_pycache(host: Path | None, target: Path) -> None:
    """Create the in-image bytecode directory (world-writable), seeded from ``host``."""
    if host is not None and host.is_dir():
        with contextlib.suppress(OSError):
            shutil.copytree(host, target, symlinks=True, dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o1777)


def _save_pycache(source: Path, host: Path | None) -> None:
    """Keep the bytecode the probes compiled for the next verification (best effort)."""
    if host is None or not source.is_dir():
        return
    with contextlib.suppress(OSError):
        host.parent.mkdir(parents=True, exist_ok=True)
        tmp = host.with_name(f".{host.name}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp, symlinks=True)
        shutil.rmtree(host, ignore_errors=True)
        os.replace(tmp, host)


def manifest_for(layout: Layout, ref_or_digest: str, arch: str) -> Descriptor:
    """The image manifest of ``arch`` named by a ref or digest (of an index or manifest)."""
    if ref_or_digest.startswith("sha256:"):
        path = layout.blob_path(ref_or_digest)
        if not path.is_file():
            raise VerifyError(f"{ref_or_digest} is not in the OCI layout {layout.path}")
        media = json.loads(layout.read_blob(ref_or_digest)).get("mediaType", "")
        desc = Descriptor(str(media), ref_or_digest, path.stat().st_size)
    else:
        try:
            desc = layout.resolve(ref_or_digest)
        except BuildError as exc:
            raise VerifyError(str(exc)) from exc
    want = Platform.for_arch(arch)
    if desc.media_type == MEDIA_MANIFEST:
        config = layout.read_json(layout.read_json(desc.digest)["config"]["digest"])
        got = Platform(
            str(config.get("architecture")), str(config.get("os")), config.get("variant", "")
        )
        if got.architecture != want.architecture:
            raise VerifyError(f"{ref_or_digest} is a {got} image, not {want}")
        return replace(desc, platform=got, annotations={})
    if desc.media_type == MEDIA_INDEX:
        for child in layout.children(desc):
            if child.platform is not None and child.platform.architecture == want.architecture:
                return child
        raise VerifyError(f"{ref_or_digest} has no {want} image in {layout.path}")
    raise VerifyError(f"{ref_or_digest} is neither an image index nor a manifest")


@dataclass(frozen=True)
class Target:
    """One image to verify: where it is and what it must be."""

    manifest: Descriptor
    expect: Expectation
    checks: tuple[str, ...] | None = None  # a subset of CHECKS for this image; None: all


def verify_targets(
    layout: Path,
    targets: Sequence[Target],
    *,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
    progress: Progress = SILENT,
    session: Buildah | None = None,
) -> VerifyReport:
    """Verify each target (one buildah storage for all of them, removed afterwards).

    ``session`` reuses a caller's buildah storage (left in place for the caller).
    """
    lay = Layout(Path(layout))
    lay.check_marker()
    _ordered(checks)  # reject unknown names before any work
    for target in targets:
        _ordered(target.checks)
    reports: list[ImageReport] = []
    with contextlib.ExitStack() as stack:
        buildah = session or stack.enter_context(buildah_session(workdir))
        for target in targets:
            subject = f"{target.expect.tag} {target.expect.arch}"
            with progress.step("verify", subject):
                chosen = target.checks if target.checks is not None else checks
                report = _run_checks(buildah, lay, target.manifest, target.expect, chosen)
            for failed in report.failed:
                progress.info(f"    FAIL {failed.name}: {failed.detail}")
            reports.append(report)
    return VerifyReport(tuple(reports))


def verify_manifest(
    layout: Path,
    manifest: Descriptor,
    expect: Expectation,
    *,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
    progress: Progress = SILENT,
) -> ImageReport:
    """Verify one image manifest already written to ``layout`` (no ref needed)."""
    report = verify_targets(
        layout, [Target(manifest, expect)], checks=checks, workdir=workdir, progress=progress
    )
    return report.images[0]


def verify_image(
    layout: Path,
    ref_or_digest: str,
    expect: Expectation,
    arch: str | None = None,
    *,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
) -> list[CheckResult]:
    """The check results of the ``arch`` image of a ref or digest (index or manifest)."""
    manifest = manifest_for(Layout(Path(layout)), ref_or_digest, arch or expect.arch)
    report = verify_manifest(layout, manifest, expect, checks=checks, workdir=workdir)
    return list(report.checks)


def verify_layout(
    layout: Path,
    family: Family,
    tags: Sequence[Tag],
    *,
    arches: Sequence[str] | None = None,
    checks: Sequence[str] | None = None,
    workdir: Path | None = None,
    progress: Progress = SILENT,
) -> VerifyReport:
    """Verify every arch image of every tag named in ``layout`` (by the tag's name ref).

    Returns the report; call ``report.raise_for_failures()`` after showing it.
    """
    lay = Layout(Path(layout))
    try:
        lay.check_marker()
    except BuildError as exc:
        raise VerifyError(str(exc)) from exc
    targets: list[Target] = []
    for tag in tags:
        if not tag.buildable:
            raise VerifyError(f"tag {tag.name} is {tag.status}: it has no images to verify")
        for arch in arches or tag.arches or family.arches:
            if arch not in tag.arches and tag.arches:
                continue
            targets.append(
                Target(manifest_for(lay, tag.name, arch), Expectation.for_tag(family, tag, arch))
            )
    if not targets:
        raise VerifyError("nothing to verify: no tag/arch selected")
    return verify_targets(lay.path, targets, checks=checks, workdir=workdir, progress=progress)


__all__ = [
    "CHECKS",
    "CheckResult",
    "ElfInfo",
    "Expectation",
    "ImageReport",
    "Target",
    "VerifyReport",
    "manifest_for",
    "probe_wheel",
    "read_elf",
    "readme_section",
    "resolve_in_root",
    "unresolved_needed",
    "verify_image",
    "verify_layout",
    "verify_manifest",
    "verify_targets",
]
