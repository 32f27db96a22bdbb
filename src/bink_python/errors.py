"""Every error the tool reports to a user, with the exit code it maps to.

Errors are raised anywhere in the package and caught once, in ``__main__``, where
the message is printed on one line and the exit code returned. Nothing else in the
package prints a traceback for bad input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class BinkError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 1


class UsageError(BinkError):
    """The command line itself is wrong (unknown tag, bad option value)."""

    exit_code = 2


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
    this stage's ``error``: a missing ref while exporting is an export failure (exit 9),
    not "a build stage failed". The message is kept."""
    try:
        yield
    except tuple(lower or (BuildError,)) as exc:
        if isinstance(exc, error):
            raise
        raise error(str(exc)) from exc
