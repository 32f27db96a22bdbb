"""RESULTS.md: the preamble, every registered comparison's section, no machine's paths.

The commands a run records name absolute paths of the machine it ran on: its interpreter
(the venv of the checkout it ran in), files of the checkout, the bench's work directory,
cache entries and scratch files. RESULTS.md shows paths into the repository relative to it
and the others as placeholders the preamble explains (``$WORK``, ``$CACHE``, ``$SCRATCH``),
so the file does not depend on where anything was on that machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bink_python.store.kinds import ENTRY_KINDS

from .harness import render_markdown
from .registry import titles

REPO = Path(__file__).resolve().parents[1]

#: The bench's work directory unless ``--work`` names another: ``$WORK`` in RESULTS.md.
DEFAULT_WORK = Path("/var/tmp/bink-bench/work")

#: An absolute path into a checkout's venv (``/any/checkout/.venv/bin/python``): the
#: checkout's own location is dropped.
_VENV_PATH = re.compile(r"(?<![\w.-])/(?:[\w.+-]+/)*?(?=\.venv/)")

#: An absolute path to a keyed entry of a bink-python cache directory
#: (``/any/cache/runtimes/KEY``): the cache directory becomes ``$CACHE``.
_KINDS = "|".join(re.escape(kind.name) for kind in ENTRY_KINDS)
_CACHE_ENTRY = re.compile(
    rf"(?<![\w.$-])/(?:[\w.+-]+/)*?(?=(?:{_KINDS})/[0-9a-f]{{32}}(?![0-9a-f]))"
)

#: The start of an absolute path in a machine's scratch or home directories:
#: ``$SCRATCH/`` in RESULTS.md (a user's home counts as scratch, the user's name dropped).
_SCRATCH = re.compile(r"(?<![\w.$-])/(?:var/tmp|tmp|home/[\w.-]+|root|work)/")

#: The text of RESULTS.md before its sections (how it was measured, how to reproduce it).
PREAMBLE = (Path(__file__).parent / "preamble.md").read_text()


def repo_relative(text: str, repo: Path = REPO) -> str:
    """``text`` with paths into ``repo`` (and into any checkout's venv) relative to it."""
    return _VENV_PATH.sub("", text.replace(f"{repo}/", ""))


def machine_free(text: str, repo: Path = REPO, work: Path = DEFAULT_WORK) -> str:
    """``text`` with no absolute path of the machine: paths into ``repo`` relative to it,
    then ``work`` as ``$WORK``, cache entries under ``$CACHE``, scratch under ``$SCRATCH``."""
    text = re.sub(rf"{re.escape(str(work))}(?![\w.+-])", "$WORK", repo_relative(text, repo))
    return _SCRATCH.sub("$SCRATCH/", _CACHE_ENTRY.sub("$CACHE/", text))


def render(data: Mapping[str, Any], results_file: str, repo: Path = REPO) -> str:
    """RESULTS.md of a results file, ``results_file`` as the markdown refers to it."""
    text = render_markdown(data, titles=titles(), preamble=PREAMBLE, results_file=results_file)
    return machine_free(text, repo)


def write_outputs(results: Path, markdown: Path, data: Mapping[str, Any]) -> None:
    """Write ``markdown`` from ``data``, the results file ``results``."""
    markdown.write_text(render(data, os.path.relpath(results, markdown.parent)))
