"""``bink-python doctor``: does this host have everything the pipeline needs?

Each check returns a :class:`Finding` (``ok``, ``missing`` or ``warn``) with what
was found and, when something is wrong, how to fix it (the apt package to install
or the command to run). :func:`run_doctor` runs them all; a ``missing`` finding of a
required check makes the command exit non-zero (``ToolError``'s exit code).

Checked: the host tools of each stage (mmdebstrap and arch-test for bases,
bubblewrap for the runtime build root, skopeo for publish/export, buildah for verify,
umoci optionally), qemu-user binfmt registration for the other architecture
(``enabled``, interpreter present, ``F`` flag so it works in chroots), the cache
directory (writable, free space), and the Debian archive mirror (its
``dists/<suite>/InRelease`` answers).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import BinkError, ToolError
from ..settings import Mirrors, settings_of
from . import mirrors
from .text import table_lines

OK = "ok"
MISSING = "missing"
WARN = "warn"

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
MIN_FREE_GIB = 20
MIRROR_SUITE = "trixie"
MIRROR_TIMEOUT = 5.0


@dataclass(frozen=True)
class Tool:
    """A host command the pipeline runs, and the Debian package that ships it."""

    command: str
    package: str
    purpose: str
    required: bool = True


TOOLS: tuple[Tool, ...] = (
    Tool("mmdebstrap", "mmdebstrap", "base root filesystems"),
    Tool("arch-test", "arch-test", "mmdebstrap's check that the foreign arch runs"),
    Tool("bwrap", "bubblewrap", "runtime build root (compiler sandbox)"),
    Tool("skopeo", "skopeo", "push / export"),
    Tool("buildah", "buildah", "verify (runs checks inside the images)"),
    Tool("umoci", "umoci", "optional: inspecting OCI layouts by hand", required=False),
)


@dataclass(frozen=True)
class Finding:
    """The result of one check."""

    check: str  # e.g. "tool mmdebstrap", "binfmt qemu-aarch64", "cache free space"
    status: str  # ok | missing | warn
    detail: str  # what was found
    fix: str = ""  # how to fix it (empty when ok)
    required: bool = True

    @property
    def failed(self) -> bool:
        """A required check that is not satisfied."""
        return self.required and self.status == MISSING


# --------------------------------------------------------------------------- checks


def check_tools(path: str | None = None, tools: Sequence[Tool] = TOOLS) -> list[Finding]:
    """Each tool on ``path`` (default: ``$PATH``)."""
    findings = []
    for tool in tools:
        found = shutil.which(tool.command, path=path)
        name = f"tool {tool.command}"
        if found:
            findings.append(Finding(name, OK, found, required=tool.required))
        else:
            status = MISSING if tool.required else WARN
            findings.append(
                Finding(
                    name,
                    status,
                    f"not found on PATH (needed for {tool.purpose})",
                    f"apt-get install -y --no-install-recommends {tool.package}",
                    required=tool.required,
                )
            )
    return findings


def _foreign_qemu(machine: str) -> str | None:
    machine = machine.lower()
    if machine in ("x86_64", "amd64"):
        return "aarch64"
    if machine in ("aarch64", "arm64"):
        return "x86_64"
    return None


def check_binfmt(machine: str | None = None, binfmt_dir: Path = BINFMT_DIR) -> Finding:
    """qemu-user binfmt registration of the other architecture."""
    qemu = _foreign_qemu(machine or platform.machine())
    if qemu is None:
        return Finding(
            "binfmt",
            MISSING,
            f"unsupported host architecture {machine}",
            "use an x86_64 or aarch64 host",
        )
    name = f"binfmt qemu-{qemu}"
    install = (
        "apt-get install -y --no-install-recommends qemu-user-static binfmt-support && "
        f"update-binfmts --enable qemu-{qemu}"
    )
    if not (binfmt_dir / "status").exists():
        return Finding(
            name,
            MISSING,
            f"binfmt_misc is not mounted on {binfmt_dir}",
            f"mount -t binfmt_misc binfmt_misc {binfmt_dir} && {install}",
        )
    entry = binfmt_dir / f"qemu-{qemu}"
    try:
        text = entry.read_text(errors="replace")
    except OSError:
        return Finding(name, MISSING, f"{entry} is not registered", install)
    lines = [line.strip() for line in text.splitlines()]
    interpreter = next((x.split(" ", 1)[1] for x in lines if x.startswith("interpreter ")), "")
    flags = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("flags:")), "")
    if "enabled" not in lines:
        return Finding(
            name, MISSING, f"{entry} is disabled", f"update-binfmts --enable qemu-{qemu}"
        )
    if "F" not in flags:
        if not interpreter or not Path(interpreter).exists():
            return Finding(
                name,
                MISSING,
                f"interpreter {interpreter or '(none)'} does not exist",
                install,
            )
        return Finding(
            name,
            WARN,
            f"{interpreter} registered without the F flag (fails inside chroots)",
            "apt-get install -y --no-install-recommends qemu-user-static (registers with F)",
        )
    # With F the kernel holds the interpreter open; it should still be installed.
    if interpreter and not Path(interpreter).exists():
        return Finding(name, WARN, f"interpreter {interpreter} no longer exists", install)
    return Finding(name, OK, f"enabled, {interpreter}, flags {flags}")


def _existing_parent(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_cache(cache_dir: Path, min_free_gib: float = MIN_FREE_GIB) -> list[Finding]:
    """The cache directory is writable and has room for bases, runtimes and layers."""
    findings = []
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".doctor-"):
            pass
        findings.append(Finding("cache writable", OK, str(cache_dir)))
    except OSError as exc:
        findings.append(
            Finding(
                "cache writable",
                MISSING,
                f"{cache_dir}: {exc.strerror or exc}",
                "set --cache-dir or BINK_PYTHON_CACHE to a writable directory",
            )
        )
    usage = shutil.disk_usage(_existing_parent(cache_dir))
    free_gib = usage.free / (1 << 30)
    detail = f"{free_gib:.1f} GiB free under {cache_dir}"
    if free_gib < min_free_gib:
        findings.append(
            Finding(
                "cache free space",
                WARN,
                detail + f" (a full build wants {min_free_gib:g} GiB)",
                "free space or point BINK_PYTHON_CACHE at a larger disk",
                required=False,
            )
        )
    else:
        findings.append(Finding("cache free space", OK, detail, required=False))
    return findings


def check_mirror(
    settings: Mirrors, suite: str = MIRROR_SUITE, timeout: float = MIRROR_TIMEOUT
) -> Finding:
    """The Debian archive mirror (``settings``, else apt's configuration) answers for
    ``suite``."""
    try:
        base = mirrors.debian_mirror(settings)
    except BinkError as exc:
        return Finding(
            "debian mirror", MISSING, str(exc), "configure apt or set BINK_PYTHON_DEBIAN_MIRROR"
        )
    url = f"{base}/dists/{suite}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
            response.read(1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(
            "debian mirror",
            MISSING,
            f"{url} unreachable ({reason})",
            "check the network and the mirror in apt's sources or BINK_PYTHON_DEBIAN_MIRROR",
        )
    return Finding("debian mirror", OK, f"{url} answered {status}")


def run_doctor(
    *,
    path: str | None = None,
    cache_dir: Path,
    machine: str | None = None,
    binfmt_dir: Path = BINFMT_DIR,
    mirror_settings: Mirrors,
    network: bool = True,
    min_free_gib: float = MIN_FREE_GIB,
) -> list[Finding]:
    """Every check, in a stable order. ``path`` overrides ``$PATH`` for the tool lookups."""
    findings = check_tools(path)
    findings.append(check_binfmt(machine, binfmt_dir))
    findings += check_cache(cache_dir, min_free_gib)
    if network:
        findings.append(check_mirror(mirror_settings))
    return findings


# --------------------------------------------------------------------------- output


def format_table(findings: Sequence[Finding]) -> str:
    """A plain table: check, status, detail; then what to run for each problem."""
    rows = [("CHECK", "STATUS", "DETAIL")] + [(f.check, f.status, f.detail) for f in findings]
    lines = table_lines(rows)
    problems = [f for f in findings if f.status != OK and f.fix]
    if problems:
        lines += ["", "To fix:"]
        lines += [f"  {f.check}: {f.fix}" for f in problems]
    failed = [f for f in findings if f.failed]
    lines += [
        "",
        f"{len(failed)} required check(s) failed" if failed else "everything required is here",
    ]
    return "\n".join(lines) + "\n"


def exit_code(findings: Sequence[Finding]) -> int:
    return ToolError.exit_code if any(f.failed for f in findings) else 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    findings = run_doctor(
        cache_dir=settings.cache_dir, mirror_settings=settings.mirrors, network=not args.offline
    )
    if args.json:
        out: dict[str, Any] = {
            "ok": exit_code(findings) == 0,
            "findings": [asdict(f) | {"failed": f.failed} for f in findings],
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(findings))
    return exit_code(findings)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Registrar for :mod:`bink_python.cli.commands`: ``doctor [--json] [--offline]``."""
    p = sub.add_parser(
        "doctor", parents=[common], help="check this host for every tool the pipeline needs"
    )
    p.add_argument("--json", action="store_true", help="machine-readable findings")
    p.add_argument("--offline", action="store_true", help="skip the archive mirror check")
    p.set_defaults(func=_cmd_doctor)
