"""The settings tests that call the stages directly build with: this machine's
environment (its mirrors, keyrings, image archives), as ``bink-python`` resolves it."""

from __future__ import annotations

import os

from bink_python.settings import Mirrors, Settings


def machine_settings() -> Settings:
    """The settings of a run with no options here, now (a test's monkeypatch included)."""
    return Settings.resolve(environ=os.environ)


def machine_mirrors() -> Mirrors:
    return machine_settings().mirrors
