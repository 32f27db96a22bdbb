"""Every error the tool reports to a user, with the exit code it maps to.

Errors are raised anywhere in the package and caught once, in ``__main__``, where
the message is printed on one line and the exit code returned. Nothing else in the
package prints a traceback for bad input.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType


class BinkError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 1


class UsageError(BinkError):
    """The command line itself is wrong (unknown tag, bad option value)."""

    exit_code = 2


class NoSuchLayout(UsageError):
    """The OCI layout a command reads (``--layout``, ``oci:DIR``) does not exist.

    A bad command line in every command that reads a layout, never the code of the
    stage that happened to look (verify, push, export)."""


class NoSuchTag(UsageError):
    """A tag (a ref) the command line names is not in the OCI layout it reads."""


class ConfigError(BinkError):
    """images.toml or images.lock is malformed or inconsistent."""

    exit_code = 3


class PolicyError(BinkError):
    """The input is valid but refused by policy (EOL tag, unpinned artifact)."""

    exit_code = 4


class FetchError(BinkError):
    """An external artifact could not be obtained or did not verify."""

    exit_code = 5


class ToolError(BinkError):
    """A host tool is missing or misconfigured (mmdebstrap, skopeo, qemu binfmt...)."""

    exit_code = 6


class BuildError(BinkError):
    """A build stage (base, runtime, assemble) failed."""

    exit_code = 7


class VerifyError(BinkError):
    """One or more image checks failed."""

    exit_code = 8


class PublishError(BinkError):
    """Pushing or exporting images failed."""

    exit_code = 9


@contextlib.contextmanager
def reported_as(error: type[BinkError], *lower: type[BinkError]) -> Iterator[None]:
    """Report a lower room's errors (``lower``, default the OCI layout's BuildError) as
    this stage's ``error``: a corrupt blob while exporting is an export failure (exit 9),
    not "a build stage failed". The message is kept. A missing layout or tag is not a
    lower room's error but the command line's (:class:`NoSuchLayout`, :class:`NoSuchTag`):
    it passes through unchanged."""
    try:
        yield
    except tuple(lower or (BuildError,)) as exc:
        if isinstance(exc, error):
            raise
        raise error(str(exc)) from exc


class HostError(BinkError):
    """The host refused an operation outside a stage's own handling (disk full, permission)."""

    exit_code = 10


#: Exit code of a failure nobody anticipated (a bug): sysexits' EX_SOFTWARE.
INTERNAL_EXIT = 70

#: Exit codes of an interruption: Ctrl-C (SIGINT) and SIGTERM, as a shell reports them.
INTERRUPT_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def host_error(exc: OSError) -> HostError:
    """One line for an ``OSError``: what failed, on which path, and what to do."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return HostError(f"disk full{where}: free space (e.g. `bink-python cache prune`) and rerun")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return HostError(f"permission denied{where}: run as a user that may write there")
    if exc.errno == errno.EROFS:
        return HostError(f"read-only file system{where}: choose a writable --cache-dir/--output")
    return HostError(f"{exc.strerror or exc}{where}")


def cleanup(action: Callable[[], object], what: str) -> AbstractContextManager[None]:
    """Run ``action`` after the block; a failing cleanup never replaces the block's error.

    When the block raised, a failure of ``action`` is attached to that error as a note
    (shown with ``--debug``) and the original error propagates; when the block succeeded,
    the cleanup's own failure is raised.
    """
    return _Cleanup(action, what)


class _Cleanup(AbstractContextManager[None]):
    def __init__(self, action: Callable[[], object], what: str) -> None:
        self.action = action
        self.what = what

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.action()
            return
        try:
            self.action()
        except Exception as failed:  # reported as a note on the real error
            exc.add_note(f"cleanup also failed ({self.what}): {failed}")
