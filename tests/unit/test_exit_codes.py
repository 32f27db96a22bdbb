"""Exit codes against the README's table: every error class of the package maps to the row
of its kind, and every command that reads a layout or a tag gives the same code (a bad
command line) with one line naming it when the layout or the tag does not exist."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import bink_python
from bink_python.__main__ import main
from bink_python.cli.commands import build_parser
from bink_python.errors import INTERNAL_EXIT, INTERRUPT_EXIT
from tests.support.family_toml import images_toml, write_images_toml
from tests.support.images import BASE, make_image

README = Path(__file__).resolve().parents[2] / "README.md"

#: Each error class's kind: words of the meaning of its row in the README's table. A new
#: class fails the test until it is given one here.
KIND = {
    "BinkError": "a check found a problem",
    "UsageError": "bad command line",
    "NoSuchLayout": "bad command line",
    "NoSuchTag": "bad command line",
    "ConfigError": "bad `images.toml` or `images.lock`",
    "PolicyError": "refused by policy",
    "FetchError": "could not be fetched",
    "ToolError": "host tool is missing",
    "BuildError": "a build stage failed",
    "VerifyError": "an image failed verification",
    "ChecksFailed": "an image failed verification",
    "PublishError": "publishing or exporting failed",
    "HostError": "the host refused",
    "Cancelled": "interrupted by Ctrl-C",
}


def readme_codes() -> dict[int, str]:
    """The README's exit-code table: code -> meaning (``130 / 143`` is two codes)."""
    lines = iter(README.read_text().splitlines())
    for line in lines:
        if line.replace(" ", "") == "|exitcode|meaning|":
            break
    else:
        raise AssertionError("README.md has no exit-code table")
    codes: dict[int, str] = {}
    for line in lines:
        if not line.startswith("|"):
            break
        code, meaning = (cell.strip() for cell in line.strip("|").split("|", 1))
        if set(code) <= set("- "):
            continue
        for number in re.findall(r"\d+", code):
            codes[int(number)] = meaning
    return codes


def error_classes() -> list[type[BaseException]]:
    """Every exception class of the package that carries an exit code (each module
    imported first, so a class in a module nothing imports yet is found too)."""
    for info in pkgutil.walk_packages(bink_python.__path__, "bink_python."):
        importlib.import_module(info.name)
    found: list[type[BaseException]] = []
    todo: list[type[BaseException]] = [BaseException]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("bink_python") and isinstance(
            getattr(cls, "exit_code", None), int
        ):
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


def test_the_readme_table_is_read() -> None:
    codes = readme_codes()
    assert {0, 1, 2, 70, 130, 143} <= set(codes)
    assert "bad command line" in codes[2]


def test_every_error_class_exits_with_its_kinds_code_in_the_readme() -> None:
    codes = readme_codes()
    classes = error_classes()
    assert {"UsageError", "BuildError", "HostError"} <= {c.__name__ for c in classes}
    for cls in classes:
        assert cls.__name__ in KIND, f"{cls.__qualname__}: give its kind in KIND"
        code = cls.exit_code  # type: ignore[attr-defined]
        assert code in codes, f"{cls.__name__} exits {code}, not a code of the README's table"
        assert KIND[cls.__name__] in codes[code], (
            f"{cls.__name__} exits {code} ({codes[code]!r}), not {KIND[cls.__name__]!r}'s code"
        )
    assert "internal error" in codes[INTERNAL_EXIT]
    assert "Ctrl-C" in codes[INTERRUPT_EXIT["SIGINT"]]
    assert "SIGTERM" in codes[INTERRUPT_EXIT["SIGTERM"]]
    used = {c.exit_code for c in classes} | {INTERNAL_EXIT, *INTERRUPT_EXIT.values()}  # type: ignore[attr-defined]
    assert set(codes) - used == {0}, "a row of the README's table that no error gives"


#: The code of a layout or a tag that does not exist, in every command: a bad command line.
NOT_FOUND = 2

REGISTRY = "127.0.0.1:1/python"


def reads_a_layout(layout: str, tag: str, other: str) -> list[list[str]]:
    """Every command line that reads ``layout`` (and ``tag`` in it); ``other`` is an image
    reference that exists, for diff's other side."""
    return [
        ["verify", tag, "--layout", layout],
        ["layers", tag, "--arch", "amd64", "--layout", layout],
        ["sbom", tag, "--arch", "amd64", "--layout", layout],
        ["export", tag, "--format", "oci-archive", f"{layout}.tar", "--layout", layout],
        ["push", REGISTRY, tag, "--layout", layout],
        ["push", REGISTRY, tag, "--dry-run", "--layout", layout],
        ["ci", "published", REGISTRY, tag, "--layout", layout],
        ["diff", f"oci:{layout}:{tag}", other],
        ["diff", other, f"oci:{layout}:{tag}"],
    ]


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def test_the_walk_covers_every_command_that_reads_a_layout() -> None:
    walked = {
        tuple(argv[:2]) if argv[0] == "ci" else (argv[0],)
        for argv in reads_a_layout("L", "T", "oci:O:T")
    }
    for path, parser in _commands(build_parser()):
        if any(a.dest == "layout" for a in parser._actions):
            assert path in walked, f"{' '.join(path)} reads a layout: add it to reads_a_layout"


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A family (tags 3.13 and 3.14) and a layout of the real assembler holding 3.13 only."""
    tmp = tmp_path_factory.mktemp("exit-codes")
    config = write_images_toml(tmp, images_toml(TAG_3_14))
    return config, make_image(tmp, "oci", packages=BASE)


TAG_3_14 = """
[[tag]]
name = "3.14"
python = "3.14.0"
os = "debian"
release = "13"
eol = "2030-04"
status = "supported"
"""


def _run(
    capsys: pytest.CaptureFixture[str], family: tuple[Path, str], argv: list[str]
) -> tuple[int, str]:
    config, _ = family
    code = main([*argv, "--config", str(config), "--cache-dir", str(config.parent / "cache")])
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


@pytest.mark.parametrize("case", range(len(reads_a_layout("L", "T", "O"))))
def test_no_such_layout_exits_2_in_every_command(
    case: int, family: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(family[0].parent / "no-such-layout")
    argv = reads_a_layout(missing, "3.13", family[1])[case]
    code, err = _run(capsys, family, argv)
    assert (code, err.count("\n")) == (NOT_FOUND, 1), (argv, code, err)
    assert err.startswith("error: ") and missing in err, err


@pytest.mark.parametrize("case", range(len(reads_a_layout("L", "T", "O"))))
def test_no_such_tag_exits_2_in_every_command(
    case: int, family: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout = family[1].removeprefix("oci:").rpartition(":")[0]
    argv = reads_a_layout(layout, "3.14", family[1])[case]
    code, err = _run(capsys, family, argv)
    assert (code, err.count("\n")) == (NOT_FOUND, 1), (argv, code, err)
    assert err.startswith("error: ") and ("'3.14'" in err or " 3.14" in err), err
    assert layout in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--layout", "{missing}"],
        ["push", REGISTRY, "--layout", "{missing}"],
        ["build", "9.99*"],
        ["verify", "9.99*"],
        ["push", REGISTRY, "9.99*"],
        ["matrix", "9.99*"],
    ],
)
def test_default_tags_and_patterns_matching_nothing_exit_2(
    argv: list[str], family: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(family[0].parent / "no-such-layout")
    argv = [a.replace("{missing}", missing) for a in argv]
    code, err = _run(capsys, family, argv)
    assert (code, err.count("\n")) == (NOT_FOUND, 1), (argv, code, err)
    assert (missing in err) if "--layout" in argv else ("'9.99*'" in err), err
