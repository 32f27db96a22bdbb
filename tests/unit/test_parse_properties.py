"""Property-based: no input file makes images.toml or images.lock parsing raise anything
but a ConfigError, and no input makes the command line print a traceback.

Inputs are the offline example's files mutated by Hypothesis: lines deleted, duplicated,
swapped or replaced by arbitrary text; values anywhere in the structure replaced by
arbitrary JSON/TOML values; plus arbitrary bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bink_python.__main__ import main
from bink_python.errors import ConfigError
from bink_python.family.config import load_family, parse_family
from bink_python.inputs.lockfile import Lock

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"
TOML_TEXT = (EXAMPLE / "images.toml").read_text()
LOCK_TEXT = (EXAMPLE / "images.lock").read_text()
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["amd64", "arm64", "debian", "13", "22.04", "3.13.15", "2029-04", "x" * 64]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _mutate(copy[head], rest, value, delete)
    return copy


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    data = original
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)[1:]  # the document itself is always a table/object
        path = draw(st.sampled_from(paths))
        delete = draw(st.booleans())
        data = _mutate(data, path, draw(values), delete)
    return data


@st.composite
def mutated_lines(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not lines:
            break
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "edit"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "replace":
            lines[i] = draw(st.text(max_size=40))
        else:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {draw(st.sampled_from(_TOML_VALUES))}"
    return "\n".join(lines) + "\n"


_TOML_VALUES = [
    '""',
    "0",
    "-1",
    "1e400",
    "true",
    "[]",
    "{}",
    '["riscv64"]',
    '"2029-13"',
    '"../../etc"',
    '"3.13"',
    '"9999999999999999999999"',
    '[1, "a"]',
    "{ a = 1 }",
    '"a\\u0000b"',
    "2026-11-30",
]

_FAMILY = tomllib.loads(TOML_TEXT)
_LOCK = json.loads(LOCK_TEXT)


def _cli(config: Path, *argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([*argv, "--config", str(config)])
    return code, err.getvalue()


def _assert_clean(code: int, err: str) -> None:
    assert code in (0, 3), (code, err)  # success, or "bad images.toml/images.lock"
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1, err


@SETTINGS
@given(data=mutated(_FAMILY))
def test_any_family_structure_is_accepted_or_a_config_error(data: Any) -> None:
    with contextlib.suppress(ConfigError):
        parse_family(data, Path("images.toml"))


@SETTINGS
@given(text=st.one_of(mutated_lines(TOML_TEXT), st.text(max_size=300)))
def test_any_images_toml_text_gives_one_line_and_code_3(tmp_path_factory: Any, text: str) -> None:
    folder = tmp_path_factory.mktemp("toml")
    config = folder / "images.toml"
    config.write_text(text)
    (folder / "images.lock").write_text(LOCK_TEXT)
    with contextlib.suppress(ConfigError):
        load_family(config)
    _assert_clean(*_cli(config, "matrix", "--json"))
    _assert_clean(*_cli(config, "matrix", "--github"))


@SETTINGS
@given(
    text=st.one_of(
        mutated(_LOCK).map(json.dumps),
        mutated_lines(LOCK_TEXT),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    )
)
def test_any_images_lock_gives_one_line_and_code_3(tmp_path_factory: Any, text: str) -> None:
    folder = tmp_path_factory.mktemp("lock")
    (folder / "images.toml").write_text(TOML_TEXT)
    lock = folder / "images.lock"
    lock.write_text(text)
    with contextlib.suppress(ConfigError):
        Lock.load(lock)
    _assert_clean(*_cli(folder / "images.toml", "cache", "ls", "--cache-dir", str(folder / "c")))
