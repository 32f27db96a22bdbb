"""Matrix selectors and formats, the EOL policy, README generation."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bink_python.errors import ConfigError, PolicyError, UsageError
from bink_python.family import matrix
from bink_python.family.config import Family, load_family
from bink_python.family.policy import check_buildable, select_tags
from bink_python.publish import readme

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def family() -> Family:
    return load_family(REPO / "images.toml")


def names(tags: object) -> list[str]:
    return [t.name for t in tags]  # type: ignore[attr-defined]


def test_select_patterns(family: Family) -> None:
    assert names(select_tags(family, ["3.1*"], statuses=["supported"])) == [
        "3.11",
        "3.12",
        "3.13",
        "3.14",
        "3.15",
    ]
    assert names(select_tags(family, ["*-distroless"])) == [
        "3.12-distroless",
        "3.13-distroless",
        "3.14-distroless",
        "3.15-distroless",
    ]
    assert names(select_tags(family, ["3.13", "3.9"])) == ["3.9", "3.13"]
    assert len(select_tags(family)) == len(family.tags)
    assert names(select_tags(family, statuses=["eol"])) == ["3.9", "3.10"]


def test_select_unknown_pattern(family: Family) -> None:
    with pytest.raises(UsageError, match=r"no tag in .*images.toml matches '3.8'"):
        select_tags(family, ["3.8"])


def test_github_matrix_shape(family: Family) -> None:
    tags = check_buildable(select_tags(family), today=dt.date(2026, 11, 25), explicit=False).tags
    data = json.loads(matrix.as_github(tags))
    assert set(data) == {"include"}
    entries = data["include"]
    # supported + evaluation tags x 2 arches; 3.9/3.10 are past EOL, deprecated never built
    assert len(entries) == (5 + 4) * 2
    assert {e["tag"] for e in entries} == {
        "3.11",
        "3.12",
        "3.13",
        "3.14",
        "3.15",
        "3.12-distroless",
        "3.13-distroless",
        "3.14-distroless",
        "3.15-distroless",
    }
    for entry in entries:
        assert set(entry) == {"tag", "python", "os", "release", "variant", "arch", "runner"}
        assert (
            entry["runner"] == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}[entry["arch"]]
        )
    arm_only = json.loads(matrix.as_github(tags, ("arm64",)))["include"]
    assert {e["arch"] for e in arm_only} == {"arm64"}


def test_table_and_json(family: Family) -> None:
    today = dt.date(2026, 11, 25)
    table = matrix.as_table(family.tags, family, today)
    line = next(li for li in table.splitlines() if li.startswith("3.13 "))
    assert "3.13.16" in line and "Debian 13" in line and "2029-04" in line and "supported" in line
    assert "2025-04 (passed)" in table
    data = json.loads(matrix.as_json(family.tags, family, today))
    by_tag = {d["tag"]: d for d in data}
    assert by_tag["3.11"]["base"] == "Ubuntu 22.04"
    assert by_tag["3.13-distroless"]["refs"] == ["3.13-distroless", "3.13.16-distroless"]
    assert by_tag["3.10-pyo3"]["status"] == "deprecated"


def test_cli_matrix_selectors() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bink_python", "matrix", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )

    out = run("--json", "--status", "evaluation", "--arch", "arm64")
    assert out.returncode == 0, out.stderr
    assert [d["tag"] for d in json.loads(out.stdout)] == [
        "3.12-distroless",
        "3.13-distroless",
        "3.14-distroless",
        "3.15-distroless",
    ]
    bad = run("--arch", "s390x")
    assert bad.returncode == 2
    assert "invalid choice: 's390x'" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- EOL policy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "outcome"),
    [
        (dt.date(2029, 1, 1), "ok"),  # well before April 2029
        (dt.date(2029, 2, 15), "warn"),  # within 90 days of the end of April 2029
        (dt.date(2029, 4, 30), "warn"),  # last day of the EOL month
        (dt.date(2029, 5, 1), "refused"),  # the EOL month has passed
    ],
)
def test_eol_policy(family: Family, today: dt.date, outcome: str) -> None:
    tag = family.tag("3.13")
    if outcome == "refused":
        with pytest.raises(
            PolicyError, match=r"tag 3.13 reached its EOL \(April 2029\).*--allow-eol"
        ):
            check_buildable([tag], today=today)
        allowed = check_buildable([tag], today=today, allow_eol=True)
        assert allowed.tags == (tag,)
        assert "past its EOL" in allowed.warnings[0]
        skipped = check_buildable([tag], today=today, explicit=False)
        assert skipped.tags == () and skipped.skipped[0][1] == "EOL 2029-04"
        return
    result = check_buildable([tag], today=today)
    assert result.tags == (tag,)
    if outcome == "ok":
        assert result.warnings == ()
    else:
        assert "reaches its EOL at the end of April 2029" in result.warnings[0]


def test_deprecated_never_built(family: Family) -> None:
    with pytest.raises(PolicyError, match=r"3\.9-poetry is deprecated"):
        check_buildable([family.tag("3.9-poetry")], today=dt.date(2020, 1, 1))


def test_clock_from_environment() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "matrix", "3.13"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={"BINK_PYTHON_TODAY": "2029-03-01", "PATH": "/usr/bin:/bin"},
    )
    assert "2029-04 (61d left)" in proc.stdout


# -- README -----------------------------------------------------------------


def test_committed_readme_is_fresh(family: Family) -> None:
    assert not readme.is_stale(family, REPO / "README.md")


def test_readme_regeneration_is_idempotent(family: Family, tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", path)
    text = path.read_text()
    # corrupt the generated table: it must come back exactly
    path.write_text(text.replace("| 3.13.16]", "| 3.13.9]").replace("April 2029", "May 2029"))
    assert readme.is_stale(family, path)
    assert readme.write_readme(family, path) is True
    assert path.read_text() == text
    assert readme.write_readme(family, path) is False
    assert path.read_text() == text


def test_readme_tables_follow_data(family: Family) -> None:
    table = readme.feature_matrix(family)
    assert table.splitlines()[0] == (
        "| Tag | Base OS | Python Version | CPU Architectures | Additional Components | EOL Date |"
    )
    row = next(r for r in table.splitlines() if ":3.12`" in r)
    assert "[Debian 13](https://www.debian.org/releases/trixie/)" in row
    assert "[3.12.15](https://www.python.org/downloads/release/python-31215/)" in row
    assert "linux/amd64, linux/arm64/v8" in row
    assert "[linkerd-await v0.3.3]" in row
    assert "April 2028" in row
    assert "(EOL)" in next(r for r in table.splitlines() if ":3.9`" in r)
    assert "distroless" not in table
    assert "evaluation, not stable" in readme.distroless(family).lower()
    assert "`ghcr.io/binkhq/python:3.11-pyo3`" in readme.deprecated(family)


def test_readme_missing_markers(family: Family, tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# nothing generated here\n")
    with pytest.raises(ConfigError, match="missing markers for generated section 'feature-matrix'"):
        readme.is_stale(family, path)


def test_readme_check_cli(tmp_path: Path) -> None:
    shutil.copy(REPO / "images.toml", tmp_path / "images.toml")
    (tmp_path / "README.md").write_text(
        (REPO / "README.md").read_text().replace("April 2030", "April 2099")
    )
    cmd = [sys.executable, "-m", "bink_python", "readme", "--config", str(tmp_path / "images.toml")]
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "is stale: run `bink-python readme`" in stale.stderr
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    fresh = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert fresh.returncode == 0, fresh.stderr
