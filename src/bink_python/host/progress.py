"""Progress for long work: which stage, which subject, how long, and where a compile is.

Human progress goes to stderr (stdout is for results and ``--json``). When ``quiet`` is
set (``--json`` or ``--quiet``), nothing but warnings is printed.

* On a terminal, a live display (rich) shows every running step with its elapsed time
  and, where known, its phase and a bar (a CPython ``make``: objects compiled of the
  total, PGO profile run, LTO link); a finished step leaves one line.
* Elsewhere (CI logs, files), plain lines with a UTC timestamp: one when a step starts,
  one per phase, one when it ends.

A step's phases come from the tool's own output: :meth:`Step.follow` tails the log a
command writes and feeds each new line to a parser (the runtime stage's reader of CPython's
configure, make and make install output).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


def _stamp() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


class Step:
    """One running step: its phase, and a count (of a total) when the work is countable."""

    def __init__(self, progress: Progress, stage: str, subject: str) -> None:
        self.progress = progress
        self.stage = stage
        self.subject = subject
        self.phase_name = ""
        self.completed = 0
        self.total: int | None = None
        self.unit = ""
        self.task: TaskID | None = None

    def phase(
        self, name: str, *, total: int | None = None, completed: int = 0, unit: str = ""
    ) -> None:
        """Enter a phase (a plain timestamped line when not on a terminal); ``unit`` names
        what ``advance`` counts (objects, tests, files)."""
        if name == self.phase_name and total == self.total:
            return
        self.phase_name, self.total, self.completed, self.unit = name, total, completed, unit
        self.progress._phase(self)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units of the current phase (shown on a terminal only)."""
        self.completed += n
        self.progress._update(self)

    @contextlib.contextmanager
    def follow(self, log: Path, feed: Callable[[str], None]) -> Iterator[None]:
        """Feed every line appended to ``log`` while the block runs to ``feed``.

        The log is read from its current end; lines written before the block ends are all
        fed (the rest of the file is drained when the block exits).
        """
        done = threading.Event()
        position = [log.stat().st_size if log.exists() else 0]
        partial = [b""]
        broken: list[BaseException] = []

        def safe_feed(line: str) -> None:
            # progress is for people: a parser that trips never fails the build it watches
            if not broken:
                try:
                    feed(line)
                except Exception as exc:
                    broken.append(exc)

        def drain() -> None:
            try:
                with open(log, "rb") as handle:
                    handle.seek(position[0])
                    chunk = handle.read()
            except FileNotFoundError:
                return
            position[0] += len(chunk)
            lines = (partial[0] + chunk).split(b"\n")
            partial[0] = lines.pop()
            for line in lines:
                safe_feed(line.decode("utf-8", "replace").rstrip("\r"))

        def run() -> None:
            while not done.wait(0.25):
                drain()

        thread = threading.Thread(target=run, name=f"follow {log.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            drain()
            if partial[0]:
                safe_feed(partial[0].decode("utf-8", "replace"))


class Progress:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        force_terminal: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self._lock = threading.RLock()
        is_tty = self.stream.isatty() if force_terminal is None else force_terminal
        self._tty = bool(is_tty)
        self._width = width
        self._console: Console | None = None
        self._live: RichProgress | None = None
        self._steps: list[Step] = []
        self._notes: dict[str, Step] = {}

    @property
    def interactive(self) -> bool:
        return not self.quiet and self._tty

    # -- output ------------------------------------------------------------------------

    def _rich_console(self) -> Console:
        if self._console is None:
            self._console = Console(
                file=self.stream,
                force_terminal=self._tty,
                width=self._width,
                highlight=False,
                soft_wrap=False,
            )
        return self._console

    def _print(self, message: str) -> None:
        with self._lock:
            if self.interactive:
                self._rich_console().print(message, markup=False, highlight=False)
            else:
                print(message, file=self.stream, flush=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            self._print(message)

    def warn(self, message: str) -> None:
        """Warnings are shown even in quiet mode (on stderr, never on stdout)."""
        with self._lock:
            if self.interactive:
                self._print(f"warning: {message}")
            else:
                print(f"warning: {message}", file=self.stream, flush=True)

    def note(self, key: str, text: str | None) -> None:
        """A transient status line on a terminal (e.g. a download's bytes); ``None`` ends it.

        Off a terminal nothing is printed: the caller prints its one summary line.
        """
        if not self.interactive:
            return
        with self._lock:
            step = self._notes.get(key)
            if text is None:
                if step is not None:
                    del self._notes[key]
                    self._remove(step)
                return
            if step is None:
                step = self._notes[key] = Step(self, "", key)
                self._start(step)
            step.phase(text)
            self.refresh()

    def refresh(self) -> None:
        """Redraw the live display now (it also redraws by itself on a terminal)."""
        with self._lock:
            if self._live is not None:
                self._live.refresh()

    # -- steps -------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        """A progress line: plain with a timestamp off a terminal, above the display on it."""
        if self.quiet:
            return
        if self.interactive:
            self._print(text)
        else:
            self._print(f"{_stamp()} {text}")

    def _start(self, step: Step) -> None:
        with self._lock:
            self._steps.append(step)
            if not self.interactive:
                return
            if self._live is None:
                self._live = RichProgress(
                    SpinnerColumn(),
                    TextColumn("{task.fields[stage]:<9} {task.fields[subject]}"),
                    TextColumn("{task.fields[phase]}", style="cyan"),
                    BarColumn(bar_width=20),
                    TextColumn("{task.fields[count]}"),
                    TimeElapsedColumn(),
                    console=self._rich_console(),
                    transient=True,
                    refresh_per_second=4,
                )
                self._live.start()
            step.task = self._live.add_task(
                "", total=None, stage=step.stage, subject=step.subject, phase="", count=""
            )

    def _phase(self, step: Step) -> None:
        if self.quiet:
            return
        if not self.interactive:
            total = f" ({step.total} {step.unit or 'to do'})" if step.total else ""
            self._line(f"--- {step.stage:<8} {step.subject}: {step.phase_name}{total}")
            return
        self._update(step)

    def _update(self, step: Step) -> None:
        with self._lock:
            if self._live is None or step.task is None:
                return
            count = ""
            if step.total:
                count = f"{min(step.completed, step.total)}/{step.total} {step.unit}"
            elif step.completed:
                count = f"{step.completed} {step.unit}"
            self._live.update(
                step.task,
                phase=step.phase_name,
                count=count,
                total=step.total,
                completed=min(step.completed, step.total or step.completed),
            )

    def _remove(self, step: Step) -> None:
        with self._lock:
            self._steps.remove(step)
            if self._live is not None and step.task is not None:
                self._live.remove_task(step.task)
            if self._live is not None and not self._steps:
                self._live.stop()
                self._live = None

    def _finish(self, step: Step, text: str) -> None:
        with self._lock:
            if self._live is not None and step.task is not None:
                self._live.remove_task(step.task)
                step.task = None
            self._line(text)
            self._remove(step)

    @contextlib.contextmanager
    def step(self, stage: str, subject: str) -> Iterator[Step]:
        """Announce a stage for a subject and report its elapsed time when done."""
        start = time.monotonic()
        step = Step(self, stage, subject)
        if not self.quiet:
            if not self.interactive:
                self._line(f"==> {stage:<8} {subject}")
            self._start(step)
        try:
            yield step
        except BaseException:
            if not self.quiet:
                elapsed = time.monotonic() - start
                self._finish(step, f"!!! {stage:<8} {subject} failed after {elapsed:.1f}s")
            raise
        if not self.quiet:
            elapsed = time.monotonic() - start
            self._finish(step, f"<== {stage:<8} {subject} done in {elapsed:.1f}s")


#: A progress reporter that prints nothing, for library use and tests.
SILENT = Progress(quiet=True)
