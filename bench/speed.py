"""pyperformance's own benchmarks, driven by pyperf, for comparison 7 (Python speed).

The inputs are three pinned wheels from PyPI (pyperformance, pyperf and psutil, which pyperf
needs), downloaded with pip through the machine's configured index and checked against the
sha256 digests pinned here. They are unpacked into one directory that both interpreters
under test import from (``PYTHONPATH``), so both run byte-identical benchmark code: each
benchmark is pyperformance's ``run_benchmark.py`` script for it, run by pyperf in ``--fast``
mode (10 worker processes, 2 values each, after a calibration run).

pyperformance's own runner (``pyperformance run``) creates a virtual environment per
interpreter and pip-installs into it; running the scripts directly keeps the measured code
and the harness identical for both interpreters and needs no index inside the container.
"""

from __future__ import annotations

import json
import shlex
import statistics
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bink_python.store.store import sha256_file

from .harness import BenchError, Runner


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    sha256: str


#: The pinned inputs. psutil's wheel is abi3 (CPython >= 3.6) for x86-64 glibc >= 2.17.
WHEELS = (
    Wheel(
        "pyperformance",
        "1.14.0",
        "pyperformance-1.14.0-py3-none-any.whl",
        "94068ac2935b6952ccb5e8a302eb9cebc26e82454494bef6e53822738adf0049",
    ),
    Wheel(
        "pyperf",
        "2.11.0",
        "pyperf-2.11.0-py3-none-any.whl",
        "11c0034bb29a79796417a6e5a7852ff4814a33cce24aeb6d268676c3a52dfda6",
    ),
    Wheel(
        "psutil",
        "7.2.2",
        "psutil-7.2.2-cp36-abi3-manylinux2010_x86_64.manylinux_2_12_x86_64.manylinux_2_28_x86_64.whl",
        "076a2d2f923fd4821644f5ba89f059523da90dc9014e85f8e45a5774ca5bc6f9",
    ),
)

#: A representative subset of pyperformance's default group, none with dependencies beyond
#: pyperf: numeric (nbody, spectral_norm, float), object-oriented and call-heavy (richards,
#: deltablue, raytrace, go), permutations (fannkuch), regular expressions (regex_v8) and a
#: C-accelerated module (json_dumps). About 6 s to 20 s each per interpreter in --fast mode.
BENCHMARKS = (
    "nbody",
    "spectral_norm",
    "float",
    "richards",
    "deltablue",
    "raytrace",
    "go",
    "fannkuch",
    "regex_v8",
    "json_dumps",
)

#: The modules of the ``imports`` start-up workload, imported by one ``python3.13 -c``.
IMPORTS = (
    "asyncio, json, ssl, email.message, http.client, logging, decimal, argparse, "
    "urllib.request, subprocess"
)

#: Start-up-heavy benchmarks of pyperformance (``python -c pass``, with and without site),
#: measured beside BENCHMARKS by bench/interpreters.py: ``name -> (script, extra args)``.
STARTUP_BENCHMARKS = {
    "python_startup": ("python_startup", ""),
    "python_startup_no_site": ("python_startup", " --no-site"),
}


def fetch_wheels(runner: Runner, dest: Path) -> list[Path]:
    """The pinned wheels in ``dest``, downloaded when missing; every digest checked."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [w for w in WHEELS if not (dest / w.filename).exists()]
    if missing:
        runner.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.13",
                "--dest",
                dest,
                *(f"{w.name}=={w.version}" for w in missing),
            ],
            "speed-wheels",
        )
    paths = []
    for wheel in WHEELS:
        path = dest / wheel.filename
        if not path.exists():
            raise BenchError(f"pip did not download {wheel.filename}")
        digest = sha256_file(path)
        if digest != wheel.sha256:
            path.unlink()
            raise BenchError(
                f"{wheel.filename}: sha256 {digest}, pinned {wheel.sha256} (deleted; retry)"
            )
        paths.append(path)
    return paths


def unpack(wheels: Sequence[Path], site: Path) -> Path:
    """Install ``wheels`` into ``site`` by unpacking them (all are purelib-only archives)."""
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    return site


#: The interpreters under test, inside the speed container.
PYTHONS = {"ours": "/usr/local/bin/python3.13", "debian": "/usr/bin/python3.13"}


def install_debian_python(ctr: str) -> list[str]:
    """The buildah argv that installs Debian's python3.13 in the container ``ctr``."""
    return apt_install(ctr, ("python3.13",))


def apt_install(ctr: str, packages: Sequence[str]) -> list[str]:
    """The buildah argv that installs Debian's ``packages`` with apt in the container ``ctr``."""
    return [
        "buildah",
        "run",
        "--isolation",
        "chroot",
        "--network",
        "host",
        ctr,
        "--",
        "sh",
        "-c",
        "apt-get update && apt-get install -y --no-install-recommends " + shlex.join(packages),
    ]


def script(site: str, name: str) -> str:
    """pyperformance's script for benchmark ``name`` under the unpacked ``site``."""
    name, extra = STARTUP_BENCHMARKS.get(name, (name, ""))
    path = f"{site}/pyperformance/data-files/benchmarks/bm_{name}/run_benchmark.py"
    return shlex.quote(path) + extra


def command(
    python: str, site: str, name: str, output: str, *, smoke: bool, mode: str = "--fast"
) -> str:
    """A shell command: run benchmark ``name`` with ``python``, then print pyperf's JSON.

    ``mode``: pyperf's options for how many processes and values (``--fast`` by default).
    """
    mode = "--debug-single-value" if smoke else mode
    out, q = shlex.quote(output), shlex.quote
    return (
        f"rm -f {out} && PYTHONPATH={q(site)} {q(python)} {script(site, name)} {mode} "
        f"--quiet --inherit-environ PYTHONPATH --output {out} >&2 && cat {out}"
    )


def mean_seconds(output: str) -> float:
    """Mean of the measured values (calibration and warm-ups excluded) in pyperf's JSON.

    ``output`` may carry other lines around the JSON document (buildah, the log).
    """
    lines = [line for line in output.splitlines() if line.startswith('{"benchmarks"')]
    if not lines:
        raise BenchError(f"no pyperf result in benchmark output: {output.strip()[-200:]}")
    doc = json.loads(lines[-1])
    values = [
        float(v)
        for bench in doc["benchmarks"]
        for run in bench["runs"]
        for v in run.get("values", ())
    ]
    if not values:
        raise BenchError("pyperf result has no measured values")
    return statistics.fmean(values)
