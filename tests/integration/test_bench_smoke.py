"""The benchmark harness's smoke mode runs end to end (so bench/ cannot rot).

No timing claims: it checks that every comparison produced an outcome (smoke, or
skipped with its reason), that the results file and RESULTS.md were written, and
that the buildah-based reference path and the sizing path ran on tiny images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.tools import requires_tool

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_every_comparison(tmp_path: Path) -> None:
    requires_tool("buildah")
    requires_tool("skopeo")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--work",
            str(tmp_path / "work"),
            "--results-dir",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / "out" / "results").glob("*.json"))
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    by_key = {c["key"]: c for c in data["comparisons"]}
    assert sorted(by_key) == [
        "2-cold",
        "3-security",
        "4-noop",
        "5-arm64",
        "6-sizes",
        "7-speed",
        "8-assembly",
    ]
    for key in ("4-noop", "6-sizes", "7-speed", "8-assembly"):
        assert by_key[key]["status"] == "smoke", by_key[key]
        assert by_key[key]["figures"], key
    for key in ("2-cold", "3-security", "5-arm64"):
        assert by_key[key]["status"] == "not measured"
        assert by_key[key]["reason"].startswith("smoke mode:")
    sizes = {f["label"]: f["median"] for f in by_key["6-sizes"]["figures"]}
    assert all(v > 0 for v in sizes.values())
    assert any("buildah bud" in c for c in by_key["4-noop"]["commands"])
    markdown = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "## 2. Cold build" in markdown
    assert "**not measured**: smoke mode:" in markdown
