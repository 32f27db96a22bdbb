"""images.toml validation: every rule has a bad-input case asserting its message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bink_python.errors import ConfigError, UsageError
from bink_python.family.config import YearMonth, load_family
from bink_python.host.distro import get_distro
from bink_python.runtime.spec import RuntimeSpec
from tests.support.family_toml import TAG_3_13_DISTROLESS, images_toml, write_images_toml

REPO = Path(__file__).resolve().parents[2]

GOOD = images_toml(
    TAG_3_13_DISTROLESS,
    """
[[tag]]
name = "3.9-poetry"
status = "deprecated"
""",
)


def test_good_config_loads(tmp_path: Path) -> None:
    family = load_family(write_images_toml(tmp_path, GOOD))
    assert [t.name for t in family.tags] == ["3.13", "3.13-distroless", "3.9-poetry"]
    tag = family.tag("3.13")
    assert tag.python == "3.13.15"
    assert tag.distro.suite == "trixie"
    assert tag.arches == ("amd64", "arm64")
    assert tag.components == ("linkerd-await",)
    assert tag.refs == ("3.13", "3.13.15")
    assert family.tag("3.13-distroless").refs == ("3.13-distroless", "3.13.15-distroless")
    assert family.lock_path == tmp_path / "images.lock"
    assert not family.tag("3.9-poetry").buildable
    assert family.compression == ("gzip",)  # the default


def test_compression_gzip_and_zstd(tmp_path: Path) -> None:
    text = GOOD.replace("[family]", '[family]\ncompression = ["gzip", "zstd"]', 1)
    assert load_family(write_images_toml(tmp_path, text)).compression == ("gzip", "zstd")


def test_objects_are_immutable(tmp_path: Path) -> None:
    family = load_family(write_images_toml(tmp_path, GOOD))
    with pytest.raises(AttributeError):
        family.tags[0].python = "3.13.1"  # type: ignore[misc]


def test_committed_family_matches_design() -> None:
    family = load_family(REPO / "images.toml")
    expected = {
        "3.9": ("3.9.25", "Ubuntu 22.04", "2025-04", "eol"),
        "3.10": ("3.10.22", "Ubuntu 22.04", "2026-04", "eol"),
        "3.11": ("3.11.17", "Ubuntu 22.04", "2027-04", "supported"),
        "3.12": ("3.12.15", "Debian 13", "2028-04", "supported"),
        "3.13": ("3.13.16", "Debian 13", "2029-04", "supported"),
        "3.14": ("3.14.8", "Debian 13", "2030-04", "supported"),
        "3.15": ("3.15.0", "Debian 13", "2031-04", "supported"),
    }
    for name, (python, base, eol, status) in expected.items():
        tag = family.tag(name)
        assert (tag.python, tag.distro.name, str(tag.eol), tag.status) == (
            python,
            base,
            eol,
            status,
        )
        distroless = f"{name}-distroless"
        if tag.distro.name == "Debian 13":
            d = family.tag(distroless)
            assert (d.python, d.variant, d.status) == (python, "distroless", "evaluation")
        else:
            assert distroless not in {t.name for t in family.tags}
    deprecated = {t.name for t in family.tags if t.status == "deprecated"}
    assert deprecated == {
        f"{m}-{s}" for m in ("3.9", "3.10", "3.11") for s in ("poetry", "pipenv", "pyo3")
    }


BAD_CASES = [
    # (description, replacement (old, new), expected message regex)
    (
        "unknown top-level key",
        ("[family]\n", "[familly]\nx=1\n[family]\n"),
        r"top level: unknown key 'familly'",
    ),
    (
        "unknown family key",
        ('vendor = "Bink"', 'vendor = "Bink"\ncolour = "blue"'),
        r"\[family\]: unknown key 'colour'",
    ),
    ("missing family key", ('vendor = "Bink"\n', ""), r"\[family\]: missing required key 'vendor'"),
    (
        "bad registry",
        ('registry = "ghcr.io/binkhq/python"', 'registry = "not a registry"'),
        r"field 'registry': expected HOST/PATH",
    ),
    (
        "unknown family arch",
        ('arches = ["amd64", "arm64"]', 'arches = ["amd64", "riscv64"]'),
        r"\[family\]: field 'arches': unknown architecture 'riscv64'",
    ),
    (
        "duplicate arch",
        ('arches = ["amd64", "arm64"]', 'arches = ["amd64", "amd64"]'),
        r"field 'arches': duplicate entries",
    ),
    (
        "empty arches",
        ('arches = ["amd64", "arm64"]', "arches = []"),
        r"field 'arches': expected at least one architecture",
    ),
    (
        "bad uid",
        ("uid = 10000", 'uid = "10000"'),
        r"\[family.user\]: field 'uid': expected an integer",
    ),
    (
        "bad user name",
        ('name = "apps"', 'name = "Apps!"'),
        r"\[family.user\]: field 'name': expected a POSIX user name",
    ),
    (
        "relative home",
        ('home = "/home/apps"', 'home = "home/apps"'),
        r"field 'home': expected an absolute path",
    ),
    (
        "bad component version",
        ('version = "0.3.3"', 'version = "v0.3"'),
        r"component 'linkerd-await': field 'version': expected X.Y.Z, got 'v0.3'",
    ),
    (
        "unknown component key",
        ('homepage = "https://github.com/linkerd/linkerd-await"', 'homepage = "h"\nsha = "x"'),
        r"component 'linkerd-await': unknown key 'sha'",
    ),
    (
        "unknown default component",
        ('components = ["linkerd-await"]', 'components = ["envoy"]'),
        r"\[family\]: field 'components': unknown component 'envoy'",
    ),
    (
        "bad tag name",
        ('name = "3.13"\n', 'name = "latest"\n'),
        r"\[\[tag\]\] #1: field 'name': expected MAJOR.MINOR",
    ),
    (
        "bad version",
        (
            'python = "3.13.15"\nos = "debian"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
            'python = "3.13"\nos = "debian"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
        ),
        r"tag '3.13': field 'python': expected an exact version X.Y.Z, got '3.13'",
    ),
    (
        "minor mismatch",
        (
            'python = "3.13.15"\nos = "debian"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
            'python = "3.12.9"\nos = "debian"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
        ),
        r"tag '3.13': field 'python': CPython 3.12.9 does not belong to tag minor 3.13",
    ),
    (
        "unknown os",
        (
            'os = "debian"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
            'os = "alpine"\nrelease = "13"\neol = "2029-04"\nstatus = "supported"',
        ),
        r"tag '3.13': field 'os': unsupported base OS 'alpine' release '13'",
    ),
    (
        "release not a string",
        (
            'release = "13"\neol = "2029-04"\nstatus = "supported"',
            'release = 13\neol = "2029-04"\nstatus = "supported"',
        ),
        r"tag '3.13': field 'release': expected a string",
    ),
    (
        "eol not a month",
        ('eol = "2029-04"\nstatus = "supported"', 'eol = "2029-13"\nstatus = "supported"'),
        r"tag '3.13': field 'eol': month 13 is not a real month",
    ),
    (
        "eol bad format",
        ('eol = "2029-04"\nstatus = "supported"', 'eol = "April 2029"\nstatus = "supported"'),
        r"tag '3.13': field 'eol': expected YYYY-MM, got 'April 2029'",
    ),
    (
        "bad status",
        ('status = "supported"', 'status = "stable"'),
        r"tag '3.13': field 'status': expected one of supported, eol, evaluation, deprecated, got 'stable'",
    ),
    (
        "bad variant",
        ('variant = "distroless"', 'variant = "slim"'),
        r"tag '3.13-distroless': field 'variant': expected one of regular, distroless",
    ),
    (
        "distroless name",
        ('name = "3.13-distroless"', 'name = "3.13-dl"'),
        r"tag '3.13-dl': field 'variant': a distroless tag's name must end in -distroless",
    ),
    (
        "suffix without variant",
        ('variant = "distroless"\n', ""),
        r"tag '3.13-distroless': field 'name': suffix -distroless needs variant distroless",
    ),
    (
        "tag unknown key",
        ('status = "supported"', 'status = "supported"\nbase = "x"'),
        r"tag '3.13': unknown key 'base'",
    ),
    (
        "tag missing key",
        ('eol = "2029-04"\nstatus = "supported"', 'status = "supported"'),
        r"tag '3.13': missing required key 'eol'",
    ),
    (
        "tag arch outside family",
        ('status = "supported"', 'status = "supported"\narches = ["amd64", "arm64"]\n'),
        None,
    ),
    (
        "tag unknown component",
        ('status = "supported"', 'status = "supported"\ncomponents = ["envoy"]'),
        r"tag '3.13': field 'components': unknown component 'envoy'",
    ),
    (
        "deprecated unknown key",
        ('name = "3.9-poetry"', 'name = "3.9-poetry"\nos = "debian"'),
        r"tag '3.9-poetry': unknown key 'os'",
    ),
    ("duplicate tag", ('name = "3.9-poetry"', 'name = "3.13"'), r"tag '3.13': duplicate tag name"),
    ("invalid toml", ("[family]", "[family"), r"invalid TOML"),
    (
        "compression unknown",
        ("[family]", '[family]\ncompression = ["xz"]'),
        r"\[family\]: field 'compression': unknown compression 'xz' \(expected gzip or zstd\)",
    ),
    (
        "compression empty",
        ("[family]", "[family]\ncompression = []"),
        r"field 'compression': expected at least one of",
    ),
    (
        "compression zstd before gzip",
        ("[family]", '[family]\ncompression = ["zstd", "gzip"]'),
        r"field 'compression': list gzip first",
    ),
    (
        "compression duplicate",
        ("[family]", '[family]\ncompression = ["gzip", "gzip"]'),
        r"field 'compression': duplicate entries",
    ),
    (
        "compression not a list",
        ("[family]", '[family]\ncompression = "zstd"'),
        r"field 'compression': expected a list of strings",
    ),
    ("compression zstd only", ("[family]", '[family]\ncompression = ["zstd"]'), None),
    # every field matched whole: a trailing newline is not part of a version or a date
    (
        "python with a newline",
        ('python = "3.13.15"', 'python = "3.13.15\\n"'),
        r"field 'python': control character '\\n' in '3.13.15\\n'",
    ),
    ("eol with a newline", ('eol = "2029-04"', 'eol = "2029-04\\n"'), r"field 'eol'"),
    ("eol year 0", ('eol = "2029-04"', 'eol = "0000-01"'), r"year 0000 is out of range"),
    ("eol year 9999", ('eol = "2029-04"', 'eol = "9999-12"'), r"year 9999 is out of range"),
    ("user name with a newline", ('name = "apps"', 'name = "apps\\n"'), r"field 'name'"),
    ("home with a newline", ('home = "/home/apps"', 'home = "/home/apps\\n"'), r"field 'home'"),
    (
        "component version with a newline",
        ('version = "0.3.3"', 'version = "0.3.3\\n"'),
        r"field 'version'",
    ),
    (
        "registry with a newline",
        ('registry = "ghcr.io/binkhq/python"', 'registry = "ghcr.io/binkhq/python\\n"'),
        r"field 'registry'",
    ),
    (
        "registry climbing out",
        ('registry = "ghcr.io/binkhq/python"', 'registry = "../../etc"'),
        r"field 'registry': expected HOST/PATH",
    ),
    (
        "registry with a dot path",
        ('registry = "ghcr.io/binkhq/python"', 'registry = "ghcr.io/../etc"'),
        r"field 'registry': expected HOST/PATH",
    ),
    ("title with a NUL", ('title = "Bink Python"', 'title = "Bink\\u0000Python"'), r"'\\x00'"),
    ("vendor with a tab", ('vendor = "Bink"', 'vendor = "Bi\\tnk"'), r"control character '\\t'"),
    (
        "description with a newline",
        ('description = "test"', 'description = "two\\nlines"'),
        r"field 'description': control character '\\n'",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "pattern"), [c[1] + (c[2],) for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_is_rejected_with_one_line(
    tmp_path: Path, old: str, new: str, pattern: str | None
) -> None:
    assert old in GOOD, old
    path = write_images_toml(tmp_path, GOOD.replace(old, new, 1))
    if pattern is None:  # a valid variation
        load_family(path)
        return
    with pytest.raises(ConfigError) as info:
        load_family(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert re.search(pattern, message), message


def test_tag_arch_not_in_family(tmp_path: Path) -> None:
    text = GOOD.replace('arches = ["amd64", "arm64"]', 'arches = ["amd64"]', 1)
    text = text.replace('status = "supported"', 'status = "supported"\narches = ["arm64"]', 1)
    with pytest.raises(
        ConfigError, match=r"tag '3.13': field 'arches': 'arm64' is not one of the family's arches"
    ):
        load_family(write_images_toml(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"not found \(expected images.toml; give --config PATH or set BINK_PYTHON_CONFIG\)",
    ):
        load_family(tmp_path / "nope.toml")


def test_year_month() -> None:
    ym = YearMonth.parse("2029-04")
    assert ym.human() == "April 2029"
    assert str(ym.end) == "2029-05-01"
    assert str(YearMonth.parse("2029-12").end) == "2030-01-01"
    with pytest.raises(ValueError, match="not a real month"):
        YearMonth.parse("2029-00")


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    path = write_images_toml(tmp_path, GOOD.replace('status = "supported"', 'status = "stable"', 1))
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "matrix", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}: tag '3.13': field 'status': expected one of supported, eol, "
        "evaluation, deprecated, got 'stable'"
    ]


def test_config_from_environment(tmp_path: Path) -> None:
    path = write_images_toml(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "matrix", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path.parent,
        env={"BINK_PYTHON_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert '"tag": "3.13-distroless"' in proc.stdout


@pytest.mark.parametrize(
    ("python", "exact"),
    [
        ("3.13.16", True),
        ("3.13.0", True),
        ("3.13.16rc1", False),
        ("3.13.0a2", False),
        ("3.13.0b1", False),
        ("3.13.16\\n", False),  # TOML escape: a trailing newline in the value
        ("3.13", False),
        ("3.13.16.1", False),
        (" 3.13.16", False),
    ],
)
def test_images_toml_and_the_runtime_agree_on_cpython_versions(
    tmp_path: Path, python: str, exact: bool
) -> None:
    """What images.toml accepts for a tag's python is exactly what the runtime builds."""

    text = images_toml().replace('python = "3.13.15"', f'python = "{python}"')
    try:
        family = load_family(write_images_toml(tmp_path, text))
    except ConfigError:
        config_accepts = False
    else:
        config_accepts = True
        assert family.tag("3.13").version == python
    value = python.replace("\\n", "\n")
    spec = RuntimeSpec(value, "0" * 64, get_distro("debian", "13"), "amd64", "fast")
    try:
        spec.validate()
    except UsageError:
        runtime_accepts = False
    else:
        runtime_accepts = True
    assert config_accepts == runtime_accepts == exact
