"""Settings are resolved once, from the command line over the environment over the
defaults, and no other module of the tool reads the environment."""

from __future__ import annotations

import argparse
import ast
import datetime as dt
from pathlib import Path

import pytest

from bink_python.cli.commands import build_parser
from bink_python.errors import FetchError, UsageError
from bink_python.host import mirrors, proc
from bink_python.inputs.fetch import FetchSettings
from bink_python.settings import (
    GITHUB_API_DEFAULT,
    GITHUB_DEFAULT,
    PYTHON_ORG_DEFAULT,
    Settings,
    settings_of,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "bink_python"

#: The modules that may read the environment, and why: a child's environment is this
#: process's (proc); --debug is read before parsing, and the settings are resolved there.
ALLOWED = {"host/proc.py", "__main__.py"}


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_config_option_over_environment_over_default() -> None:
    env = {"BINK_PYTHON_CONFIG": "/env/images.toml"}
    assert Settings.resolve(_args("matrix", "--config", "/cli.toml"), env).config == Path(
        "/cli.toml"
    )
    assert Settings.resolve(_args("matrix"), env).config == Path("/env/images.toml")
    assert Settings.resolve(_args("matrix"), {}).config == Path("images.toml")


def test_cache_dir_option_over_environment_over_xdg_over_home(tmp_path: Path) -> None:
    env = {"BINK_PYTHON_CACHE": str(tmp_path / "env"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    given = _args("cache", "ls", "--cache-dir", str(tmp_path / "cli"))
    assert Settings.resolve(given, env).cache_dir == (tmp_path / "cli").resolve()
    assert Settings.resolve(_args("cache", "ls"), env).cache_dir == (tmp_path / "env").resolve()
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert Settings.resolve(None, xdg).cache_dir == (tmp_path / "xdg/bink-python").resolve()
    home = (Path.home() / ".cache" / "bink-python").resolve()
    assert Settings.resolve(None, {}).cache_dir == home
    # the common option stands before the command too
    before = _args("--cache-dir", str(tmp_path / "first"), "cache", "ls")
    assert Settings.resolve(before, env).cache_dir == (tmp_path / "first").resolve()


def test_a_cache_dir_option_naming_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    given = Settings.resolve(_args("cache", "ls", "--cache-dir", str(tmp_path / "file")), {})
    with pytest.raises(UsageError, match="not a directory"):
        given.checked_cache_dir()
    # the same path from the environment is left to the stage that uses it
    from_env = Settings.resolve(None, {"BINK_PYTHON_CACHE": str(tmp_path / "file")})
    assert from_env.checked_cache_dir() == (tmp_path / "file").resolve()


def test_source_date_epoch_option_over_environment_over_none() -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    option = ("base", "build", "--arch", "amd64", "--source-date-epoch", "5")
    assert Settings.resolve(_args(*option), env).source_date_epoch() == 5
    assert Settings.resolve(_args("base", "build", "--arch", "amd64"), env).source_date_epoch() == (
        1700000000
    )
    assert (
        Settings.resolve(_args("base", "build", "--arch", "amd64"), {}).source_date_epoch() is None
    )
    # a malformed value fails where it is used, not where it is read
    bad = Settings.resolve(None, {"SOURCE_DATE_EPOCH": "soon"})
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH='soon'"):
        bad.source_date_epoch()


def test_today_environment_over_the_clock() -> None:
    assert Settings.resolve(None, {"BINK_PYTHON_TODAY": "2031-02-03"}).clock() == dt.date(
        2031, 2, 3
    )
    assert Settings.resolve(None, {}).clock() == dt.date.today()
    with pytest.raises(UsageError, match="BINK_PYTHON_TODAY='tomorrow'"):
        Settings.resolve(None, {"BINK_PYTHON_TODAY": "tomorrow"}).clock()


def test_revision_environment_over_none() -> None:
    assert Settings.resolve(None, {"GITHUB_SHA": "abc123"}).revision == "abc123"
    assert Settings.resolve(None, {}).revision is None


def test_mirror_option_over_environment_over_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "BINK_PYTHON_DEBIAN_MIRROR": "http://env.invalid/debian/",
        "BINK_PYTHON_DEBIAN_SECURITY_MIRROR": "http://env.invalid/security",
        "BINK_PYTHON_UBUNTU_MIRROR": "http://env.invalid/ubuntu",
        "BINK_PYTHON_UBUNTU_PORTS_MIRROR": "http://env.invalid/ports",
    }
    cli = Settings.resolve(_args("build", "--mirror", "http://cli.invalid/debian"), env).mirrors
    assert mirrors.debian_mirror(cli) == "http://cli.invalid/debian"
    assert mirrors.ubuntu_mirror(cli) == "http://cli.invalid/debian"
    # --mirror names the main archive only: security and the build root's ports stay
    assert mirrors.debian_security_mirror(cli) == "http://env.invalid/security"
    assert mirrors.ubuntu_ports_mirror(cli.machine()) == "http://env.invalid/ports"
    envs = Settings.resolve(_args("build"), env).mirrors
    assert mirrors.debian_mirror(envs) == "http://env.invalid/debian"
    assert mirrors.ubuntu_mirror(envs) == "http://env.invalid/ubuntu"
    assert mirrors.ubuntu_ports_mirror(envs) == "http://env.invalid/ports"
    # apt's configuration comes last, and without a security mirror anywhere it is the
    # configured main archive's (never --mirror's)
    monkeypatch.setattr(mirrors, "_find", lambda suites, security: "http://apt.invalid/x")
    assert mirrors.debian_mirror(Settings.resolve(None, {}).mirrors) == "http://apt.invalid/x"
    monkeypatch.setattr(mirrors, "_find", lambda suites, security: None)
    main_only = Settings.resolve(
        _args("build", "--mirror", "http://cli.invalid/debian"),
        {"BINK_PYTHON_DEBIAN_MIRROR": "http://m.invalid/d"},
    )
    assert mirrors.debian_security_mirror(main_only.mirrors) == "http://m.invalid/d-security"


def test_image_archives_and_keyrings_from_the_environment_only() -> None:
    env = {
        "BINK_PYTHON_IMAGE_DEBIAN_ARCHIVE": "http://archive.invalid/debian/",
        "BINK_PYTHON_DEBIAN_KEYRING": "/keys/debian.gpg",
    }
    given = Settings.resolve(_args("build"), env).mirrors
    assert mirrors.image_archive(given, "debian", "amd64", security=False) == (
        "http://archive.invalid/debian"
    )
    assert mirrors.image_archive(given, "debian", "amd64", security=True) is None
    assert given.keyring("debian", "/default.gpg") == "/keys/debian.gpg"
    assert given.keyring("ubuntu", "/default.gpg") == "/default.gpg"
    none = Settings.resolve(_args("build"), {}).mirrors
    assert mirrors.image_archive(none, "debian", "amd64", security=False) is None


def test_upstream_urls_environment_over_default() -> None:
    env = {
        "BINK_PYTHON_PYTHON_ORG_URL": "http://127.0.0.1:9/py/",
        "BINK_PYTHON_GITHUB_URL": "http://127.0.0.1:9/gh",
        "BINK_PYTHON_GITHUB_API_URL": "http://127.0.0.1:9/api",
    }
    given = Settings.resolve(None, env).upstream
    assert (given.python_org, given.github, given.github_api) == (
        "http://127.0.0.1:9/py",
        "http://127.0.0.1:9/gh",
        "http://127.0.0.1:9/api",
    )
    default = Settings.resolve(None, {}).upstream
    assert (default.python_org, default.github, default.github_api) == (
        PYTHON_ORG_DEFAULT,
        GITHUB_DEFAULT,
        GITHUB_API_DEFAULT,
    )


def test_fetch_limits_environment_over_default() -> None:
    env = {"BINK_PYTHON_FETCH_TIMEOUT": "2.5", "BINK_PYTHON_FETCH_ATTEMPTS": "0"}
    given = FetchSettings.of(Settings.resolve(None, env))
    assert (given.timeout, given.attempts) == (2.5, 1)  # at least one attempt
    default = FetchSettings.of(Settings.resolve(None, {}))
    assert (default.timeout, default.attempts) == (FetchSettings.timeout, FetchSettings.attempts)
    with pytest.raises(FetchError, match="must be numbers"):
        FetchSettings.of(Settings.resolve(None, {"BINK_PYTHON_FETCH_TIMEOUT": "long"}))


def test_fetch_mirror_follows_the_option_unless_told_otherwise() -> None:
    env = {"BINK_PYTHON_DEBIAN_MIRROR": "http://env.invalid/debian"}
    given = Settings.resolve(_args("lock", "--mirror", "http://cli.invalid/debian"), env)
    assert mirrors.debian_mirror(FetchSettings.of(given).mirrors) == "http://cli.invalid/debian"
    machine = FetchSettings.of(given, mirror_option=False).mirrors
    assert mirrors.debian_mirror(machine) == "http://env.invalid/debian"


def test_time_limits_environment_over_default() -> None:
    env = {"BINK_PYTHON_TIMEOUT_MMDEBSTRAP": "7", "BINK_PYTHON_TIMEOUT_PROBE": "0"}
    try:
        proc.set_timeouts(Settings.resolve(None, env).timeouts)
        assert proc.timeout_for("mmdebstrap") == 7.0
        assert proc.timeout_for("probe") is None
        assert proc.timeout_for("compile") == proc.TIMEOUTS["compile"]
    finally:
        proc.set_timeouts(())
    assert proc.timeout_for("mmdebstrap") == proc.TIMEOUTS["mmdebstrap"]


def test_handlers_get_the_settings_main_resolved() -> None:
    args = _args("matrix", "--config", "/cli.toml")
    resolved = Settings.resolve(args, {"GITHUB_SHA": "abc"})
    args.settings = resolved
    assert settings_of(args) is resolved
    # a namespace parsed without main: the options over the defaults, no environment
    assert settings_of(_args("matrix")) == Settings.resolve(_args("matrix"), {})


def _environment_reads(tree: ast.AST) -> list[int]:
    """The lines of ``tree`` that read the environment (``os.environ``, ``os.getenv``,
    ``os.environb`` or those names imported from ``os``)."""
    names = {"environ", "getenv", "environb", "putenv"}
    found: list[int] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in names for alias in node.names)
        ):
            found.append(node.lineno)
    return found


def test_the_scan_finds_every_way_of_reading_the_environment() -> None:
    text = "import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\nc = 1\n"
    assert _environment_reads(ast.parse(text)) == [2, 3, 4]


def test_only_the_allowed_modules_read_the_environment() -> None:
    readers = {}
    for path in sorted(SRC.rglob("*.py")):
        lines = _environment_reads(ast.parse(path.read_text(), str(path)))
        if lines:
            readers[path.relative_to(SRC).as_posix()] = lines
    assert set(readers) <= ALLOWED, {k: v for k, v in readers.items() if k not in ALLOWED}
    assert set(readers) == ALLOWED  # each exception is still needed (else drop it here)
