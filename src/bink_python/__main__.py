"""Entry point: ``bink-python`` and ``python -m bink_python``.

The one place where errors become exit codes (the README's table): a ``BinkError``
prints its one-line message (``error: ...``) and returns its ``exit_code``; an
``OSError`` that no stage turned into a ``BinkError`` (disk full, permission) is a
``HostError`` (10); anything else is an internal error (70). Ctrl-C returns 130 and
SIGTERM 143, after the same unwinding (children stopped, staging removed). ``--debug``
(or ``BINK_PYTHON_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

_received: list[str] = []
#: Whether :func:`main` unwinds a KeyboardInterrupt itself: until then a signal is noted.
_armed: list[bool] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so cleanups run (children, mounts, temp dirs).

    Only the first signal interrupts: a second one while cleanups run is noted and
    ignored, so it cannot cut a cleanup short (SIGKILL remains for the impatient). One
    that lands while the program's modules load is only noted: main() then stops at once.
    """
    first = not _received
    _received.append(signal.Signals(signum).name)
    if first and _armed and not proc.hold_interrupt():  # held while a child starts
        raise KeyboardInterrupt


def _install() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)


# The program's first instructions, before the modules below load (a quarter of a second):
# a Ctrl-C or SIGTERM from here on never ends in a traceback.
if __name__ == "__main__" or sys.argv[0].endswith("/bink-python"):
    _install()

import os  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from .cli.commands import build_parser  # noqa: E402
from .errors import INTERNAL_EXIT, INTERRUPT_EXIT, BinkError, host_error  # noqa: E402
from .host import proc  # noqa: E402
from .settings import Settings  # noqa: E402


def _debug(argv: Sequence[str]) -> bool:
    # read before the command line is parsed, so a parse error's traceback shows too
    return "--debug" in argv or os.environ.get("BINK_PYTHON_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    installed = threading.current_thread() is threading.main_thread()
    if installed:
        _install()
        _armed[:] = [True]
    debug = _debug(args_list)
    try:
        if _received:  # a signal landed while the modules loaded
            raise KeyboardInterrupt
        parser = build_parser()
        if not args_list:  # what there is to run, rather than one line saying what is missing
            print(parser.format_help(), file=sys.stderr, end="")
            return 2
        args = parser.parse_args(args_list)
        # the one place the environment becomes settings; every stage gets them from here
        settings = Settings.resolve(args, os.environ)
        settings.checked_cache_dir()
        proc.set_timeouts(settings.timeouts)
        args.settings = settings
        code: int = args.func(args)
        return code
    except BinkError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        name = _received[0] if _received else "SIGINT"
        print("interrupted" if name == "SIGINT" else f"stopped by {name}", file=sys.stderr)
        return INTERRUPT_EXIT.get(name, 130)
    except OSError as exc:
        if debug:
            traceback.print_exc()
        host = host_error(exc)
        print(f"error: {host}", file=sys.stderr)
        return host.exit_code
    except Exception as exc:  # the last line of defence: one line, code 70
        if debug:
            traceback.print_exc()
        where = "run again with --debug for the traceback" if not debug else "traceback above"
        print(
            f"error: internal error ({type(exc).__name__}: {exc}); {where} and report it",
            file=sys.stderr,
        )
        return INTERNAL_EXIT
    finally:
        _received.clear()
        if installed and argv is None:
            # The command is over (done, or unwound): a signal now has nothing left to
            # stop. Python gives a handler back to the default action while it shuts
            # down, so a SIGTERM then would kill the process and lose the exit code of
            # finished work; ignored handlers stay ignored through the shutdown.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
