from collections.abc import Iterator
from pathlib import Path

import pytest

from . import background
from .fixtures_base import base_factory, base_store  # noqa: F401
from .fixtures_diff import diff_builds  # noqa: F401
from .fixtures_publish import registry  # noqa: F401
from .fixtures_runtime import cpython_source, runtime_factory, runtime_store  # noqa: F401
from .fixtures_verify import buildah_for_tests, good_amd64, good_layout  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def background_builds(
    request: pytest.FixtureRequest, test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The background builder (``background.py``) for the selected tests, for the session."""
    here = Path(__file__).parent
    modules = {i.path.stem for i in request.session.items if i.path.is_relative_to(here)}
    log = tmp_path_factory.getbasetemp() / "background.log"
    with background.running(test_cache_root, background.jobs_for(sorted(modules)), log):
        yield
    if log.is_file():
        lines = [x for x in log.read_text().splitlines() if x.startswith("background:")]
        request.config.stash[background.REPORT] = lines
