"""Entry point: ``bink-python`` and ``python -m bink_python``.

The one place where errors become exit codes: a ``BinkError`` prints its one-line
message (``error: ...``) and returns its ``exit_code``; Ctrl-C returns 130.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .cli import build_parser
from .errors import BinkError


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so cleanups run (mounts, containers, temp dirs)."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except BinkError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
