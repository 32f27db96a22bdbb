"""Host tools the tests run: a missing one skips its test, or fails it where the run
promises every tool (``BINK_PYTHON_REQUIRE_TOOLS=1``, set by ``.ci/run``), so a machine
without a tool cannot pass by skipping what needs it."""

from __future__ import annotations

import os
import shutil

import pytest


def requires_tool(name: str, package: str | None = None) -> str:
    """The path of the host tool ``name`` (from the Debian ``package``, default ``name``)."""
    found = shutil.which(name)
    if found is not None:
        return found
    why = f"{name} not installed (apt-get install {package or name})"
    if os.environ.get("BINK_PYTHON_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{why}; BINK_PYTHON_REQUIRE_TOOLS=1 requires every tool")
    pytest.skip(why)
