"""RESULTS.md entries of an interpreters run: figures, ratios, and the words of bench/notes.toml.

Which comparisons a run yields follows from the interpreters it measured (see
:func:`outcomes`); every label and note comes from ``notes.toml`` beside ``results/``.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .harness import Figure, Outcome, machine, ratio, save_results
from .report import write_outputs
from .speed import IMPORTS

Data = dict[str, dict[str, list[float]]]

#: The labels and notes, as data beside results/.
NOTES: dict[str, Any] = tomllib.loads((Path(__file__).parent / "notes.toml").read_text())

#: Names of the interpreters in RESULTS.md.
LABELS: dict[str, str] = NOTES["labels"]

BOLT_PAIR = ("ours-prebolt", "ours")


@dataclass(frozen=True)
class OneChange:
    """A comparison of its own: ours against the same recipe and source with one change
    (so a run of it does not replace the speed and changes comparisons). ``ratio`` is
    taken ``numerator / denominator`` of the two; ``note`` may name ``{profile}``."""

    key: str
    numerator: str
    denominator: str
    ratio: str  # "with / without"
    reading: str  # "(>1: frame pointers cost)"
    note: str


#: The one-change comparisons, by the interpreter measured beside ours.
ONE_CHANGE = {name: OneChange(**fields) for name, fields in NOTES["one-change"].items()}

#: An interpreter measured beside ours that differs from it in one build choice, and which
#: way round its ratio is taken: (numerator, denominator, label). Every ratio reads >1 when
#: the faster side is the one Debian's python3.13 has.
CHOICES = {
    name: (c["numerator"], c["denominator"], c["label"]) for name, c in NOTES["choices"].items()
}


@dataclass(frozen=True)
class _Run:
    """What every outcome of one run shares: its profile, labels, reason and version notes."""

    result: dict[str, Any]
    commands: tuple[str, ...]
    labels: dict[str, str]
    partial: bool
    why: str
    notes: tuple[str, ...]

    @classmethod
    def of(cls, result: dict[str, Any], commands: Sequence[str]) -> _Run:
        profile = result.get("ours_profile", "release")
        labels = {**LABELS, "ours": f"ours ({profile})"}
        if result.get("reference_is_relink"):
            labels["reference"] = NOTES["run"]["relink-label"]
        partial = profile != "release"
        why = NOTES["run"]["partial-reason"].format(profile=profile) if partial else ""
        notes = tuple(f"{labels.get(n, n)}: {v}" for n, v in result["versions"].items())
        return cls(result, tuple(commands), labels, partial, why, notes)

    @property
    def profile(self) -> str:
        return str(self.result.get("ours_profile", "release"))

    def load(self) -> str:
        text: str = NOTES["run"]["load"]
        return text.format(load_start=self.result["load_start"], load_end=self.result["load_end"])

    def measured(
        self, key: str, figures: list[Figure], ratios: list[Figure], notes: tuple[str, ...]
    ) -> Outcome:
        return Outcome(
            key=key,
            title="",
            status="partial" if self.partial else "measured",
            reason=self.why,
            figures=tuple(figures),
            ratios=tuple(ratios),
            commands=self.commands,
            notes=notes,
        )


def outcomes(result: dict[str, Any], commands: Sequence[str]) -> list[Outcome]:
    """RESULTS.md entries: 7-speed (ours vs Debian and the reference), 9-startup, 10-changes,
    12-frame-pointers, 15-eval-loop-gcse and 16-compiler (when their interpreter of
    :data:`ONE_CHANGE` ran), 13-choices (when an interpreter of :data:`CHOICES` ran). A run
    of 12, 13, 15 or 16 without both Debian's python3.13 and the reference records only
    those."""
    speed_interps = set(next(iter(result.get("speed", {}).values()), {}))
    out: list[Outcome] = []
    out += [one_change(other, result, commands) for other in ONE_CHANGE if other in speed_interps]
    if speed_interps & set(CHOICES):
        out.append(choices(result, commands))
    if out and not {"debian", "reference"} <= speed_interps:
        # without both, the speed and start-up comparisons would lose figures they have
        return out
    run = _Run.of(result, commands)
    speed_data: Data = result.get("speed", {})
    if speed_data:
        out += _speed_and_changes(run, speed_data)
    startup_data: Data = result.get("startup", {})
    if startup_data:
        out.append(_startup(run, startup_data))
    return out


def _speed_and_changes(run: _Run, data: Data) -> list[Outcome]:
    """7-speed (10-changes for a run of the fast runtime), and 10-changes where they ran."""
    names = list(data)
    first = _speed(run, data, names)
    changes = _changes(run, data, names)
    text = NOTES["changes"]
    if changes and run.partial:
        return [
            Outcome(
                key="10-changes",
                title="",
                status="partial",
                reason=text["partial-reason"].format(why=run.why),
                figures=first.figures,
                ratios=(*changes, *first.ratios),
                commands=first.commands,
                notes=(text["partial-note"], *first.notes),
            )
        ]
    if not changes:
        return [first]
    have = set(data[names[0]])
    notes = (
        text["prebolt-note"],
        *((text["recipe3-note"],) if "ours-recipe3" in have else ()),
        *((text["shared-note"],) if _shared(run, have) else ()),
        *run.notes,
    )
    return [
        first,
        Outcome(
            key="10-changes",
            title="",
            status="partial",
            reason=text["reason"] + (f"; {run.why}" if run.partial else ""),
            ratios=tuple(changes),
            commands=run.commands,
            notes=notes,
        ),
    ]


def _speed(run: _Run, data: Data, names: list[str]) -> Outcome:
    """Ours against Debian's python3.13 and the reference, per benchmark and as a mean."""
    text = NOTES["speed"]
    figures = _speed_figures(data, names, ("ours", "debian", "reference"), run.labels)
    ratios: list[Figure] = []
    for other in ("debian", "reference"):
        if other not in data[names[0]]:
            continue
        ratios += _per_benchmark(data, names, other, "ours", text["ratio"].format(other=other))
        ratios.append(_geo(text["geometric-mean"].format(other=other), data, names, other, "ours"))
    fields = {"names": ", ".join(names), "pyperf": run.result.get("pyperf")}
    relink = run.result.get("reference_is_relink")
    return run.measured(
        # a run of the fast runtime measures the static core, not the release claim
        "10-changes" if run.partial else "7-speed",
        figures,
        ratios,
        (
            *run.notes,
            *(note.format(**fields) for note in text["notes"]),
            *((text["relink-note"].format(profile=run.profile),) if relink else ()),
            run.load(),
        ),
    )


def _shared(run: _Run, have: set[str]) -> str | None:
    """The shared-core relink of ours' objects: ours-shared, or the reference when it is it."""
    if "ours-shared" in have:
        return "ours-shared"
    if "reference" in have and run.result.get("reference_is_relink"):
        return "reference"
    return None


def _changes(run: _Run, data: Data, names: list[str]) -> list[Figure]:
    """BOLT's, recipe 3's and the static core's cost, from the interpreters that ran."""
    text = NOTES["changes"]
    have = set(data[names[0]])
    shared = _shared(run, have)
    # the static executable without BOLT: ours-prebolt, or ours itself in the fast profile
    static = "ours-prebolt" if "ours-prebolt" in have else ("ours" if run.partial else None)
    changes: list[Figure] = []
    if "ours-prebolt" in have:
        changes.append(_geo(text["bolt"], data, names, *BOLT_PAIR))
    if "ours-recipe3" in have and "ours-prebolt" in have:
        changes.append(_geo(text["recipe3"], data, names, "ours-recipe3", "ours-prebolt"))
    if shared and static:
        changes.append(_geo(text["static"], data, names, shared, static))
    return changes


def _startup(run: _Run, data: Data) -> Outcome:
    """Start-up as uid 10000: every interpreter's samples, ours against the others."""
    text = NOTES["startup"]
    figures: list[Figure] = []
    ratios: list[Figure] = []
    for label, per in data.items():
        for who, samples in per.items():
            figures.append(
                Figure(
                    f"`{label}`: {run.labels.get(who, who)}", "ms", tuple(v * 1e3 for v in samples)
                )
            )
        for other in ("debian", "reference"):
            if other in per:
                ratios.append(
                    ratio(text["ratio"].format(label=label, other=other), per[other], per["ours"])
                )
    notes = tuple(note.format(imports=IMPORTS) for note in text["notes"])
    return run.measured("9-startup", figures, ratios, (*notes, *run.notes))


def one_change(other: str, result: dict[str, Any], commands: Sequence[str]) -> Outcome:
    """12, 15: ours and ``other`` (:data:`ONE_CHANGE`), per benchmark and as a geometric
    mean, and at start-up where it ran; where Debian's python3.13 ran beside them, each
    of the two against it (where the speed bar would stand with the change)."""
    change = ONE_CHANGE[other]
    data: dict[str, dict[str, list[float]]] = result["speed"]
    names = list(data)
    profile = result.get("ours_profile", "release")
    labels = {**LABELS, "ours": f"ours ({profile})"}
    debian = "debian" in data[names[0]]
    pair = (change.numerator, change.denominator)
    figures = _speed_figures(data, names, ("ours", other, *(("debian",) if debian else ())), labels)
    ratios = _per_benchmark(data, names, *pair, f"{change.ratio} {change.reading}")
    ratios.append(_geo(f"geometric mean: {change.ratio}", data, names, *pair))
    for label, per in result.get("startup", {}).items():
        if all(who in per for who in pair):
            ratios.append(
                ratio(
                    f"`{label}` as uid 10000: {change.ratio} {change.reading}",
                    per[change.numerator],
                    per[change.denominator],
                )
            )
    if debian:
        for who in ("ours", other):
            ratios.append(
                _geo(
                    f"geometric mean: debian / {who} (>1: {who} faster)",
                    data,
                    names,
                    "debian",
                    who,
                )
            )
    return _side_by_side(
        change.key,
        result,
        commands,
        figures,
        ratios,
        (change.note.format(profile=profile),),
        NOTES["side-by-side"]["one-change-interleaved"],
    )


def _side_by_side(
    key: str,
    result: dict[str, Any],
    commands: Sequence[str],
    figures: Sequence[Figure],
    ratios: Sequence[Figure],
    notes: Sequence[str],
    interleaved: str,
) -> Outcome:
    """A measured outcome of interpreters run side by side: ``notes``, then the
    workloads (how they were ``interleaved``) and the load averages."""
    names = list(result["speed"])
    return Outcome(
        key=key,
        title="",
        status="measured",
        figures=tuple(figures),
        ratios=tuple(ratios),
        commands=tuple(commands),
        notes=(
            *notes,
            NOTES["side-by-side"]["workloads"].format(
                names=", ".join(names), pyperf=result.get("pyperf"), interleaved=interleaved
            ),
            NOTES["run"]["load"].format(
                load_start=result["load_start"], load_end=result["load_end"]
            ),
        ),
    )


def choices(result: dict[str, Any], commands: Sequence[str]) -> Outcome:
    """13: ours against the same recipe with one build choice changed (the stack
    protector's level, start-up modules built into the core, a non-PIE executable,
    _FORTIFY_SOURCE): speed and, where it ran, start-up as uid 10000."""
    data: dict[str, dict[str, list[float]]] = result["speed"]
    names = list(data)
    have = [w for w in CHOICES if w in data[names[0]]]
    figures = _speed_figures(data, names, ("ours", *have), LABELS)
    ratios: list[Figure] = []
    startup_data: dict[str, dict[str, list[float]]] = result.get("startup", {})
    for other in have:
        num, den, what = CHOICES[other]
        ratios += _per_benchmark(data, names, num, den, what)
        ratios.append(_geo(f"geometric mean: {what}", data, names, num, den))
        for label, per in startup_data.items():
            if num in per and den in per:
                ratios.append(ratio(f"`{label}` as uid 10000: {what}", per[num], per[den]))
    return _side_by_side(
        "13-choices",
        result,
        commands,
        figures,
        ratios,
        (
            *(f"{LABELS.get(n, n)}: {v}" for n, v in result["versions"].items() if n != "debian"),
            NOTES["side-by-side"]["choices-note"],
        ),
        NOTES["side-by-side"]["choices-interleaved"],
    )


def _speed_figures(
    data: dict[str, dict[str, list[float]]],
    names: list[str],
    who: Sequence[str],
    labels: dict[str, str],
) -> list[Figure]:
    """Each benchmark's times (ms) for each interpreter of ``who`` that ran it."""
    return [
        Figure(f"{name}: {labels[w]}", "ms", tuple(v * 1e3 for v in data[name][w]))
        for name in names
        for w in who
        if w in data[name]
    ]


def _per_benchmark(
    data: dict[str, dict[str, list[float]]], names: list[str], num: str, den: str, what: str
) -> list[Figure]:
    """``num / den`` per run pair, one figure per benchmark, labelled ``<name>: <what>``."""
    return [ratio(f"{name}: {what}", data[name][num], data[name][den]) for name in names]


def _geo(
    label: str, data: dict[str, dict[str, list[float]]], names: list[str], num: str, den: str
) -> Figure:
    runs = len(data[names[0]][den])
    return Figure(
        label,
        "x",
        tuple(
            statistics.geometric_mean(data[n][num][i] / data[n][den][i] for n in names)
            for i in range(runs)
        ),
    )


def _runs(result: dict[str, Any]) -> int:
    """Runs of the speed comparison, else samples of the start-up one (or the result's own
    ``runs``)."""
    if "runs" in result:
        return int(result["runs"])
    for part in ("speed", "startup"):
        data = result.get(part) or {}
        for per in data.values():
            for values in per.values():
                return len(values)
    return 0


def record(
    result_json: Path,
    results: Path,
    markdown: Path,
    commands: Sequence[str],
    notes: dict[str, Sequence[str]] | None = None,
    make: Callable[[dict[str, Any], Sequence[str]], list[Outcome]] | None = None,
) -> None:
    """Merge the outcomes of ``result_json`` into ``results`` and render ``markdown``;
    ``notes`` adds lines to the outcome of each key (what was measured beside the run).
    ``make`` turns the result into outcomes (default :func:`outcomes`)."""

    make = make or outcomes
    result = json.loads(result_json.read_text())
    data = save_results(
        results,
        machine_info=machine(),
        settings={
            "runs": _runs(result),
            "profile": result.get("ours_profile", "release"),
            **(
                {
                    "load_average_at_start": [round(x, 2) for x in result["load_start"]],
                    "load_average_at_end": [round(x, 2) for x in result["load_end"]],
                }
                if "load_end" in result
                else {}
            ),
        },
        outcomes=[
            replace(o, notes=(*o.notes, *(notes or {}).get(o.key, ())))
            for o in make(result, commands)
        ],
    )
    write_outputs(results, markdown, data)
