"""Progress for long work: which stage, which subject, how long.

Human progress goes to stderr (stdout is for results and ``--json``). When
``quiet`` is set (``--json`` or ``--quiet``), nothing is printed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self._lock = threading.Lock()

    @property
    def interactive(self) -> bool:
        return not self.quiet and self.stream.isatty()

    def info(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """Warnings are shown even in quiet mode (on stderr, never on stdout)."""
        with self._lock:
            print(f"warning: {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, stage: str, subject: str) -> Iterator[None]:
        """Announce a stage for a subject and report its elapsed time when done."""
        start = time.monotonic()
        self.info(f"==> {stage:<8} {subject}")
        try:
            yield
        except BaseException:
            self.info(f"!!! {stage:<8} {subject} failed after {time.monotonic() - start:.1f}s")
            raise
        self.info(f"<== {stage:<8} {subject} done in {time.monotonic() - start:.1f}s")


#: A progress reporter that prints nothing, for library use and tests.
SILENT = Progress(quiet=True)
