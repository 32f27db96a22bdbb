"""`lock` on this machine: CPython 3.13.15 through the Debian fallback mirror, verified.

python.org is unreachable here (name resolution fails at once), so the first URL
of the artifact fails fast and the tarball comes from the Debian archive mirror
configured in apt, which carries the pristine upstream tarball. The download goes
into a fresh temporary cache on purpose: this test is about the real fetch.
"""

from __future__ import annotations

import io
from pathlib import Path

from bink_python.family.config import load_family
from bink_python.host.progress import Progress
from bink_python.inputs.cache import Cache, cache_verify
from bink_python.inputs.fetch import FetchSettings, fetch_artifact
from bink_python.inputs.lockfile import Lock
from bink_python.inputs.update import run_lock
from tests.support.family_toml import images_toml, write_images_toml

SHA = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
SIZE = 23_160_540

FAMILY = images_toml(components=False)


def test_lock_fetches_cpython_through_debian_fallback(tmp_path: Path) -> None:
    family = load_family(write_images_toml(tmp_path, FAMILY))
    cache = Cache(tmp_path / "cache")
    log = io.StringIO()
    # python.org and apt's Debian mirror: no setting overrides them
    settings = FetchSettings(timeout=20.0, attempts=2, backoff=1.0)
    result = run_lock(
        family, cache, pins={"cpython:3.13.15": SHA}, settings=settings, progress=Progress(log)
    )
    assert result.fetched == ("cpython:3.13.15",)
    entry = Lock.load(family.lock_path).entry("cpython:3.13.15")
    assert (entry.sha256, entry.size) == (SHA, SIZE)
    assert entry.urls[0].startswith("https://www.python.org/")
    assert entry.urls[1] == "debian:pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz"
    assert "fetched cpython:3.13.15 (23.2 MB" in log.getvalue()
    assert "/pool/main/p/python3.13/python3.13_3.13.15.orig.tar.xz" in log.getvalue()
    assert cache_verify(cache) == []
    # the build stage's call: verified path, offline, from the cache
    path = fetch_artifact(entry, cache, offline=True)
    assert path == cache.dir / SHA and path.stat().st_size == SIZE
