"""Session fixtures of the publish stage: a real distribution registry on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.registry import LocalRegistry, running_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """One registry for the session (tests use distinct repositories in it)."""
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg
