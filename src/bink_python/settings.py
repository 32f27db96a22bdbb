"""Settings: the command line and the environment, resolved once into one frozen object.

:meth:`Settings.resolve` is the one place that reads the tool's environment variables
(``__main__`` hands it ``os.environ``); every stage takes what it needs from the
result, or from an explicit parameter, and never reads the environment itself. A
value a command may never use (``$SOURCE_DATE_EPOCH``, ``$BINK_PYTHON_TODAY``, the
fetch limits, the time limits) is kept as given and checked when it is used, so a
malformed one fails only the commands that need it, as the README says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import FetchError, UsageError

CONFIG_ENV = "BINK_PYTHON_CONFIG"
DEFAULT_CONFIG = "images.toml"
CACHE_ENV = "BINK_PYTHON_CACHE"
TODAY_ENV = "BINK_PYTHON_TODAY"
EPOCH_ENV = "SOURCE_DATE_EPOCH"
REVISION_ENV = "GITHUB_SHA"
PYTHON_ORG_ENV = "BINK_PYTHON_PYTHON_ORG_URL"
GITHUB_ENV = "BINK_PYTHON_GITHUB_URL"
GITHUB_API_ENV = "BINK_PYTHON_GITHUB_API_URL"
FETCH_TIMEOUT_ENV = "BINK_PYTHON_FETCH_TIMEOUT"
FETCH_ATTEMPTS_ENV = "BINK_PYTHON_FETCH_ATTEMPTS"
TIMEOUT_ENV_PREFIX = "BINK_PYTHON_TIMEOUT_"

PYTHON_ORG_DEFAULT = "https://www.python.org"
GITHUB_DEFAULT = "https://github.com"
GITHUB_API_DEFAULT = "https://api.github.com"

#: The environment variables naming the archive written into images, by (OS, arch
#: group, security). Ubuntu serves arm64 (with its security suite) from "ports".
IMAGE_ARCHIVE_ENV = {
    ("debian", "any", False): "BINK_PYTHON_IMAGE_DEBIAN_ARCHIVE",
    ("debian", "any", True): "BINK_PYTHON_IMAGE_DEBIAN_SECURITY",
    ("ubuntu", "amd64", False): "BINK_PYTHON_IMAGE_UBUNTU_ARCHIVE",
    ("ubuntu", "amd64", True): "BINK_PYTHON_IMAGE_UBUNTU_SECURITY",
    ("ubuntu", "ports", False): "BINK_PYTHON_IMAGE_UBUNTU_PORTS",
    ("ubuntu", "ports", True): "BINK_PYTHON_IMAGE_UBUNTU_PORTS",
}

#: The distributions whose archive keyring ``$BINK_PYTHON_<OS>_KEYRING`` may replace.
KEYRING_OSES = ("debian", "ubuntu")


@dataclass(frozen=True)
class Mirrors:
    """Where the build reaches the distribution archives, and what images name.

    Unset (None) mirrors fall back to apt's own configuration, read by
    :mod:`bink_python.host.mirrors` when a stage needs them.
    """

    build: str | None = None  # --mirror: the main archive of this build
    debian: str | None = None  # $BINK_PYTHON_DEBIAN_MIRROR
    debian_security: str | None = None  # $BINK_PYTHON_DEBIAN_SECURITY_MIRROR
    ubuntu: str | None = None  # $BINK_PYTHON_UBUNTU_MIRROR
    ubuntu_ports: str | None = None  # $BINK_PYTHON_UBUNTU_PORTS_MIRROR
    #: (variable, value) of each image archive setting given (``BINK_PYTHON_IMAGE_*``)
    image: tuple[tuple[str, str], ...] = ()
    #: (OS, keyring path) of each ``$BINK_PYTHON_<OS>_KEYRING`` given
    keyrings: tuple[tuple[str, str], ...] = ()

    def machine(self) -> Mirrors:
        """The mirrors without the command line's ``--mirror``."""
        return replace(self, build=None)

    def image_archive(self, variable: str) -> str:
        """The value of image archive setting ``variable``, stripped ("" when unset)."""
        return dict(self.image).get(variable, "").strip()

    def keyring(self, os_name: str, default: str) -> str:
        """The keyring apt checks the archive's signatures with: ``$BINK_PYTHON_<OS>_KEYRING``
        (e.g. a private mirror's own key, or a test archive's), else the distribution's."""
        return dict(self.keyrings).get(os_name) or default

    @classmethod
    def resolve(cls, mirror: str | None, environ: Mapping[str, str]) -> Mirrors:
        def env(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            build=mirror or None,
            debian=env("BINK_PYTHON_DEBIAN_MIRROR"),
            debian_security=env("BINK_PYTHON_DEBIAN_SECURITY_MIRROR"),
            ubuntu=env("BINK_PYTHON_UBUNTU_MIRROR"),
            ubuntu_ports=env("BINK_PYTHON_UBUNTU_PORTS_MIRROR"),
            image=tuple(
                (name, environ[name])
                for name in sorted(set(IMAGE_ARCHIVE_ENV.values()))
                if name in environ
            ),
            keyrings=tuple(
                (os_name, value)
                for os_name in KEYRING_OSES
                if (value := environ.get(f"BINK_PYTHON_{os_name.upper()}_KEYRING"))
            ),
        )


@dataclass(frozen=True)
class Upstream:
    """The base URLs of what upstream publishes (overridden by tests to 127.0.0.1)."""

    python_org: str = PYTHON_ORG_DEFAULT
    github: str = GITHUB_DEFAULT
    github_api: str = GITHUB_API_DEFAULT

    @classmethod
    def resolve(cls, environ: Mapping[str, str]) -> Upstream:
        return cls(
            python_org=(environ.get(PYTHON_ORG_ENV) or PYTHON_ORG_DEFAULT).rstrip("/"),
            github=(environ.get(GITHUB_ENV) or GITHUB_DEFAULT).rstrip("/"),
            github_api=(environ.get(GITHUB_API_ENV) or GITHUB_API_DEFAULT).rstrip("/"),
        )


@dataclass(frozen=True)
class FetchLimits:
    """Per-read timeout and attempts per URL, as given (checked by :meth:`checked`)."""

    timeout: str | None = None  # $BINK_PYTHON_FETCH_TIMEOUT
    attempts: str | None = None  # $BINK_PYTHON_FETCH_ATTEMPTS

    def checked(self, timeout: float, attempts: int) -> tuple[float, int]:
        """(timeout, attempts): the given values, else the defaults passed in."""
        try:
            return (
                float(self.timeout) if self.timeout else timeout,
                max(1, int(self.attempts)) if self.attempts else attempts,
            )
        except ValueError:
            raise FetchError(
                f"{FETCH_TIMEOUT_ENV} / {FETCH_ATTEMPTS_ENV} must be numbers"
            ) from None


def _default_cache_dir(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "bink-python").resolve()


@dataclass(frozen=True)
class Settings:
    """Everything the command line and the environment set, resolved once."""

    config: Path = Path(DEFAULT_CONFIG)  # --config, $BINK_PYTHON_CONFIG, ./images.toml
    #: --cache-dir, $BINK_PYTHON_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/bink-python
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir({}))
    #: --cache-dir as given (checked to be a directory); None: not given
    cache_dir_option: str | None = None
    epoch: str | None = None  # --source-date-epoch, else $SOURCE_DATE_EPOCH, as given
    today: str | None = None  # $BINK_PYTHON_TODAY (YYYY-MM-DD), as given; None: the clock
    revision: str | None = None  # $GITHUB_SHA; None: git, else 'unknown'
    mirrors: Mirrors = Mirrors()
    upstream: Upstream = Upstream()
    fetch: FetchLimits = FetchLimits()
    #: (KIND, seconds as given) of each ``$BINK_PYTHON_TIMEOUT_<KIND>``
    timeouts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def resolve(cls, args: Any = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the parsed command line ``args`` (any object with the options
        as attributes; None: no options) over ``environ`` (None: empty) over defaults."""
        env: Mapping[str, str] = environ or {}

        def option(name: str) -> Any:
            return getattr(args, name, None) if args is not None else None

        cache_option = option("cache_dir")
        if cache_option:
            cache_dir = Path(cache_option).expanduser().resolve()
        elif env.get(CACHE_ENV):
            cache_dir = Path(env[CACHE_ENV]).expanduser().resolve()
        else:
            cache_dir = _default_cache_dir(env)
        epoch_option = option("source_date_epoch")
        prefix = TIMEOUT_ENV_PREFIX
        return cls(
            config=Path(option("config") or env.get(CONFIG_ENV) or DEFAULT_CONFIG),
            cache_dir=cache_dir,
            cache_dir_option=str(cache_option) if cache_option else None,
            epoch=str(epoch_option) if epoch_option is not None else env.get(EPOCH_ENV) or None,
            today=env.get(TODAY_ENV) or None,
            revision=env.get(REVISION_ENV) or None,
            mirrors=Mirrors.resolve(option("mirror"), env),
            upstream=Upstream.resolve(env),
            fetch=FetchLimits(env.get(FETCH_TIMEOUT_ENV), env.get(FETCH_ATTEMPTS_ENV)),
            timeouts=tuple(
                (name[len(prefix) :], value)
                for name, value in sorted(env.items())
                if name.startswith(prefix) and name != prefix
            ),
        )

    def source_date_epoch(self) -> int | None:
        """The SOURCE_DATE_EPOCH given (None: the caller's fallback)."""
        if self.epoch is None:
            return None
        try:
            return int(self.epoch)
        except ValueError:
            raise UsageError(
                f"{EPOCH_ENV}={self.epoch!r}: expected an integer (seconds since 1970)"
            ) from None

    def clock(self) -> dt.date:
        """Today, or ``$BINK_PYTHON_TODAY`` when set."""
        if self.today:
            try:
                return dt.date.fromisoformat(self.today)
            except ValueError:
                raise UsageError(
                    f"{TODAY_ENV}={self.today!r}: expected a date YYYY-MM-DD"
                ) from None
        return dt.date.today()

    def checked_cache_dir(self) -> Path:
        """The cache directory; a ``--cache-dir`` that is not a directory is refused."""
        given = self.cache_dir_option
        if given and self.cache_dir.exists() and not self.cache_dir.is_dir():
            raise UsageError(f"--cache-dir {given}: not a directory (expected a cache root)")
        return self.cache_dir


def settings_of(args: Any) -> Settings:
    """The settings ``bink-python`` resolved for the parsed command line ``args``; for
    options parsed without it (a test's parser), the options over the defaults alone."""
    found = getattr(args, "settings", None)
    return found if isinstance(found, Settings) else Settings.resolve(args)
