"""The command line as a newcomer meets it: options before or after the command, a
description and help for everything, a hint for a typo, usage when nothing is given."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from bink_python.__main__ import main
from bink_python.cli.commands import build_parser

CONFIG = str(Path(__file__).resolve().parents[2] / "examples" / "offline" / "images.toml")


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_command_has_a_description_and_every_option_help() -> None:
    missing = []
    for parser in list(_parsers(build_parser()))[1:]:
        if not parser.description:
            missing.append(f"{parser.prog}: no description")
        for action in parser._actions:
            if action.help is None and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", CONFIG, "--cache-dir", "/tmp/c", "-q", "matrix"],
        ["matrix", "--config", CONFIG, "--cache-dir", "/tmp/c", "-q"],
        [
            "--config",
            "/elsewhere.toml",
            "matrix",
            "--config",
            CONFIG,
            "--cache-dir",
            "/tmp/c",
            "-q",
        ],
    ],
)
def test_common_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.config, args.cache_dir, args.quiet) == (CONFIG, "/tmp/c", True)


def test_common_options_default_when_not_given() -> None:
    args = build_parser().parse_args(["matrix"])
    assert (args.config, args.cache_dir, args.quiet, args.debug) == (None, None, False, False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_typo_gets_the_nearest_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "matrx")
    assert code == 2 and err.count("\n") == 1 and "did you mean 'matrix'?" in err


def test_no_command_prints_the_usage_and_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys)
    assert code == 2 and err.startswith("usage: bink-python") and "matrix" in err


def test_dash_v_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["-V"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("bink-python ")


def test_push_names_only_what_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "push")
    assert code == 2 and err.rstrip().endswith("the following arguments are required: REGISTRY")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--older-than", "nan"], "--older-than nan: expected a number of days >= 0"),
        (["--older-than", "-1"], "expected a number of days >= 0"),
        (["--max-size", "-5G"], "is given as --max-size=VALUE"),
        (["--max-size=-5G"], "expected a size such as 500M"),
    ],
)
def test_prune_refuses_values_that_are_no_age_or_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    cache = ["--cache-dir", str(tmp_path), "--config", CONFIG]
    code, _, err = _run(capsys, "cache", "prune", "--dry-run", *argv, *cache)
    assert code == 2 and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize(
    "argv",
    [
        [
            "runtime",
            "key",
            "3.13.15",
            "--arch",
            "amd64",
            "--build-host",
            "amd64",
            "--release",
            "99",
        ],
        ["runtime", "key", "3.13.15", "--arch", "amd64", "--build-host", "amd64", "--os", "ubuntu"],
        ["lock", "--offline", "--pin", "garbage"],
    ],
)
def test_command_line_mistakes_exit_2_not_the_config_code(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = _run(capsys, *argv, "--config", CONFIG)
    assert code == 2 and err.count("\n") == 1, err
