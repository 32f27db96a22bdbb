"""The programs verify runs with each image's own ``python3`` (``python3 -c <file text>``).

Each probe is a small module that runs on every CPython the family ships (3.9 and
newer: no syntax newer than 3.9, only the standard library) and prints one JSON
object as its last line. Its ``main(argv)`` returns that object, so the host's
tests import the probe and run it with the host Python. :func:`source` gives the
text verify sends into the image.
"""

from __future__ import annotations

from importlib import resources

#: The probes, by name (the module name in this package).
NAMES = (
    "version",
    "imports",
    "tls",
    "pip_import",
    "venv",
    "user",
    "recursion",
    "utf8",
    "no_compile",
)


def source(name: str) -> str:
    """The program text of probe ``name``."""
    if name not in NAMES:
        raise KeyError(f"no verify probe {name!r}")
    return resources.files(__package__).joinpath(f"{name}.py").read_text(encoding="utf-8")
