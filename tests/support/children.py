"""Children the test session starts that must not outlive it."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """In a child, before it runs (``preexec_fn``): SIGTERM it when the test session's
    process dies, however that dies (a SIGKILL or SIGTERM skips the session's teardown)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
