"""RESULTS.md: the preamble, every registered comparison's section, repository-relative paths.

The commands a run records name its interpreter by absolute path (the venv of the checkout
it ran in); RESULTS.md shows such paths relative to the repository, so the file does not
depend on where the repository was on the machine that ran the comparisons.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harness import render_markdown
from .registry import titles

REPO = Path(__file__).resolve().parents[1]

#: An absolute path into a checkout's venv (``/any/checkout/.venv/bin/python``): the
#: checkout's own location is dropped.
_VENV_PATH = re.compile(r"(?<![\w.-])/(?:[\w.+-]+/)*?(?=\.venv/)")

#: The text of RESULTS.md before its sections (how it was measured, how to reproduce it).
PREAMBLE = (Path(__file__).parent / "preamble.md").read_text()


def repo_relative(text: str, repo: Path = REPO) -> str:
    """``text`` with paths into ``repo`` (and into any checkout's venv) relative to it."""
    return _VENV_PATH.sub("", text.replace(f"{repo}/", ""))


def render(data: Mapping[str, Any], results_file: str, repo: Path = REPO) -> str:
    """RESULTS.md of a results file, ``results_file`` as the markdown refers to it."""
    text = render_markdown(data, titles=titles(), preamble=PREAMBLE, results_file=results_file)
    return repo_relative(text, repo)


def write_outputs(results: Path, markdown: Path, data: Mapping[str, Any]) -> None:
    """Write ``markdown`` from ``data``, the results file ``results``."""
    markdown.write_text(render(data, os.path.relpath(results, markdown.parent)))
