"""CPython's build log read as it is written: a step's phases, the objects a dry run compiles."""

from __future__ import annotations

import re

from ..host.progress import Step

_COMPILE = re.compile(r"(?:^|\s)-c\s.*\s-o\s+(\S+\.o)\b|\s-o\s+(\S+\.o)\s.*\s-c\s")
_LINK = re.compile(r"\s-o\s+(\S*(?:python[0-9.]*|libpython\S*\.so\S*))(?:\s|$)")
_TEST_PROGRESS = re.compile(r"\[\s*(\d+)/(\d+)\]")
#: The profile task make runs with the instrumented interpreter (``-m test --pgo ...``).
_PROFILE_TASK = re.compile(r"\s-m\s+test\s.*--pgo|--pgo\b.*\s-m\s+test\b")
_CHECKING = re.compile(r"^checking (.*?)\.\.\.")


def count_compiles(dry_run: str) -> int:
    """How many objects a ``make -n`` transcript compiles (both passes of a PGO build)."""
    return sum(1 for line in dry_run.splitlines() if _COMPILE.search(line))


class CPythonOutput:
    """Reads CPython's configure / make / make install output and moves a step's phases.

    Phases: ``configure`` (checks run), ``compile`` (objects of ``total``), ``PGO profile
    run`` (tests of the profile task), ``PGO rebuild`` (objects), ``LTO link`` / ``link``,
    ``install`` (files), ``ensurepip``.
    """

    def __init__(self, step: Step, *, total: int | None = None) -> None:
        self.step = step
        self.total = total or None
        self.compiled = 0
        self.compile_phase = "compile"  # "PGO rebuild" once the profile-guided pass starts
        self.pgo = False  # make announced the profile run (before its instrumented build)

    def __call__(self, line: str) -> None:
        step = self.step
        text = line.strip()
        if not text:
            return
        if _CHECKING.match(text):
            step.phase("configure", unit="checks")
            step.advance()
            return
        if text.startswith("Running code to generate profile data"):
            # printed before the instrumented build: the run itself starts with the task
            self.pgo = True
            return
        if self.pgo and self.compile_phase == "compile" and _PROFILE_TASK.search(text):
            step.phase("PGO profile run")
            return
        if text.startswith("Rebuilding with profile guided optimizations"):
            self.compile_phase = "PGO rebuild"
            step.phase("PGO rebuild", total=self.total, completed=self.compiled, unit="objects")
            return
        if step.phase_name == "PGO profile run":
            match = _TEST_PROGRESS.search(text)
            if match:
                step.phase(
                    "PGO profile run", total=int(match[2]), completed=int(match[1]), unit="tests"
                )
                step.advance(0)
                return
        if _COMPILE.search(text):
            self.compiled += 1
            if step.phase_name != self.compile_phase:
                step.phase(
                    self.compile_phase,
                    total=self.total,
                    completed=self.compiled - 1,
                    unit="objects",
                )
            step.advance()
            return
        if " -c " not in text and _LINK.search(text) and ("gcc" in text or "cc " in text):
            step.phase("LTO link" if "-flto" in text else "link")
            return
        installing = text.startswith(("/usr/bin/install ", "install ")) or (
            "/usr/bin/install -c" in text
        )
        if installing and step.stage == "install":  # make itself installs python-gdb.py
            step.phase("install", unit="files")
            step.advance()
            return
        if "ensurepip" in text or text.startswith("Looking in links:"):
            step.phase("ensurepip")
