"""Benchmark plumbing: timed commands, figures (median, min-max), results JSON and RESULTS.md.

A *figure* is one quantity measured ``runs`` times. A *ratio* is computed per run pair
(run i of the reference over run i of ours), never from the medians, and summarised
the same way. A figure measured against a time cap that was hit is a lower bound.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("measured", "partial", "smoke", "not measured")


class BenchError(Exception):
    """A benchmark step failed; the message names the command and its log."""


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str  # "s", "MB", "x" (ratio)
    values: tuple[float, ...]
    lower_bound: bool = False  # a time cap was hit: the true value is at least this

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "values": [round(v, 4) for v in self.values],
            "median": round(self.median, 4),
            "min": round(min(self.values), 4),
            "max": round(max(self.values), 4),
            "lower_bound": self.lower_bound,
        }

    def text(self) -> str:
        prefix = "≥ " if self.lower_bound else ""
        med = fmt(self.median, self.unit)
        if len(self.values) == 1:
            return f"{prefix}{med}"
        low, high = fmt(min(self.values), self.unit), fmt(max(self.values), self.unit)
        return f"{prefix}{med} ({low} to {high})"


def fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.4g} {unit}"


def ratio(
    label: str,
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    lower_bound: bool = False,
) -> Figure:
    """Per-run-pair ratio ``numerators[i] / denominators[i]``."""
    if len(numerators) != len(denominators) or not numerators:
        raise BenchError(f"ratio {label!r}: runs do not pair up")
    values = tuple(n / d for n, d in zip(numerators, denominators, strict=True))
    return Figure(label, "x", values, lower_bound)


@dataclass(frozen=True)
class Outcome:
    """What one comparison produced."""

    key: str
    title: str
    status: str  # one of STATUSES
    figures: tuple[Figure, ...] = ()
    ratios: tuple[Figure, ...] = ()
    commands: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str = ""  # why it was not measured (or only partly)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "figures": [f.to_json() for f in self.figures],
            "ratios": [f.to_json() for f in self.ratios],
            "commands": list(self.commands),
            "notes": list(self.notes),
            "reason": self.reason,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Outcome:
        def figures(items: Sequence[Mapping[str, Any]]) -> tuple[Figure, ...]:
            return tuple(
                Figure(i["label"], i["unit"], tuple(i["values"]), bool(i["lower_bound"]))
                for i in items
            )

        return Outcome(
            key=data["key"],
            title=data["title"],
            status=data["status"],
            figures=figures(data["figures"]),
            ratios=figures(data["ratios"]),
            commands=tuple(data["commands"]),
            notes=tuple(data["notes"]),
            reason=data.get("reason", ""),
        )


@dataclass(frozen=True)
class Timed:
    seconds: float
    capped: bool  # the time cap was hit and the command was stopped
    output: str


@dataclass
class Runner:
    """Runs commands with their output in a log file; remembers what it ran."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str | Path],
        name: str,
        *,
        cap: float | None = None,
        cwd: Path | None = None,
        record: bool = True,
        check: bool = True,
    ) -> Timed:
        """Run ``argv``; its wall time, or the cap if stopped there."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        shown = shlex.join(str(a) for a in argv)
        if record:
            self.commands.append(shown)
        env = {**os.environ, **self.env}
        with log.open("a") as out:
            out.write(f"$ {shown}\n")
            out.flush()
            start = time.monotonic()
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=cap)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                out.write(f"\n[bench] stopped at the cap of {cap:.0f} s\n")
                return Timed(float(cap or 0), True, "")
            seconds = time.monotonic() - start
            out.write(f"\n[bench] exit {code} after {seconds:.1f} s\n")
        text = log.read_text(errors="replace")
        if code != 0 and check:
            tail = text.strip().splitlines()[-1:] or [""]
            raise BenchError(f"{shown} failed (exit {code}): {tail[0][:200]}; log: {log}")
        return Timed(seconds, False, text.rsplit(f"$ {shown}\n", 1)[-1])

    def output(self, argv: Sequence[str | Path]) -> str:
        """stdout of a quick untimed helper command (not recorded)."""
        proc = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            check=False,
        )
        if proc.returncode != 0:
            shown = shlex.join(str(a) for a in argv)
            raise BenchError(f"{shown} failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "cores": os.cpu_count() or 0,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


# --------------------------------------------------------------------------- results


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def latest_results(results_dir: Path) -> Path | None:
    """The newest results file (``<date>.json``, not a run's own ``<date>-<what>.json``)
    in ``results_dir``, or None."""
    found = sorted(results_dir.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"))
    return found[-1] if found else None


def save_results(
    path: Path,
    *,
    machine_info: Mapping[str, Any],
    settings: Mapping[str, Any],
    outcomes: Sequence[Outcome],
) -> dict[str, Any]:
    """Merge ``outcomes`` into the results file of the day (other comparisons kept; the
    day's first run starts from the newest earlier file's, so RESULTS.md keeps them)."""
    earlier = None if path.exists() else latest_results(path.parent)
    data = load_results(earlier or path)
    by_key = {o["key"]: o for o in data.get("comparisons", [])}
    for outcome in outcomes:
        entry = outcome.to_json()
        entry["settings"] = dict(settings)
        entry["finished_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        by_key[outcome.key] = entry
    data["machine"] = dict(machine_info)
    data["comparisons"] = [by_key[k] for k in sorted(by_key)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return data


def render_markdown(
    data: Mapping[str, Any], *, titles: Mapping[str, str], preamble: str, results_file: str
) -> str:
    """RESULTS.md from a results file: every comparison in ``titles``, measured or not."""
    mach = data.get("machine", {})
    lines = [
        "# Benchmark results",
        "",
        preamble.strip(),
        "",
        f"Results file: `{results_file}`.",
        "",
        "## Machine",
        "",
        f"- CPU: {mach.get('cpu_model', '?')}, {mach.get('cores', '?')} cores",
        f"- memory: {mach.get('memory_gib', '?')} GiB; kernel {mach.get('kernel', '?')}",
        "",
        "Each figure: median (min to max) over N runs. Ratios are computed per run pair "
        "(reference run i / ours run i), then summarised; never from the medians. "
        "`≥` marks a lower bound (a time cap was hit).",
        "",
    ]
    by_key = {c["key"]: c for c in data.get("comparisons", [])}
    for key, title in titles.items():
        lines += [f"## {title}", ""]
        entry = by_key.get(key)
        if entry is None or entry["status"] == "not measured":
            reason = entry["reason"] if entry else "no run of this comparison has completed yet"
            lines += [f"**not measured**: {reason}", ""]
            if entry:
                lines += _commands(entry)
            continue
        outcome = Outcome.from_json(entry)
        settings = entry.get("settings", {})
        lines.append(
            f"Status: **{outcome.status}**; runs: {settings.get('runs', '?')}; "
            f"build profile: {settings.get('profile', '?')}; "
            + (
                f"load average (1, 5, 15 min) at the start "
                f"{settings.get('load_average_at_start', '?')}, at the end "
                f"{settings['load_average_at_end']}; "
                if "load_average_at_end" in settings
                else ""
            )
            + f"finished {entry.get('finished_at', '?')}."
            + (f" {outcome.reason}" if outcome.reason else "")
        )
        lines += ["", "| figure | value |", "| --- | --- |"]
        for fig in (*outcome.figures, *outcome.ratios):
            bold = "**" if fig.unit == "x" else ""
            label = fig.label.replace("|", "\\|")
            lines.append(f"| {label} | {bold}{fig.text()}{bold} |")
        lines.append("")
        lines += [f"- {note}" for note in outcome.notes]
        if outcome.notes:
            lines.append("")
        lines += _commands(entry)
    return "\n".join(lines).rstrip() + "\n"


def _commands(entry: Mapping[str, Any]) -> list[str]:
    commands = entry.get("commands", [])
    if not commands:
        return []
    seen: list[str] = []
    for cmd in commands:
        if cmd not in seen:
            seen.append(cmd)
    out = ["<details><summary>commands</summary>", "", "```sh"]
    out += seen
    out += ["```", "", "</details>", ""]
    return out
