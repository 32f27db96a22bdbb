"""``update.rewrite_toml`` (tomlkit) over generated families: byte-for-byte round trip when
nothing changes, only the intended values changed otherwise, tags added in place."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bink_python.errors import ConfigError
from bink_python.inputs.update import NewTag, rewrite_toml

REPO = Path(__file__).resolve().parents[2]

_VERSION = st.builds(
    lambda a, b: f"3.{a}.{b}", st.integers(min_value=8, max_value=20), st.integers(0, 30)
)
_COMMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    max_size=20,
).map(lambda s: "#" + s)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_BLANKS = st.sampled_from(["", "\n", "\n\n", "\n# a comment line\n", "\n   \n"])


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    literal: bool  # 'x' instead of "x"
    before_eq: str
    after_eq: str
    comment: str | None

    def line(self) -> str:
        quoted = f"'{self.value}'" if self.literal else f'"{self.value}"'
        tail = f"  {self.comment}" if self.comment is not None else ""
        return f"{self.key}{self.before_eq}={self.after_eq}{quoted}{tail}\n"


@st.composite
def entries(draw: st.DrawFn, key: str, value: st.SearchStrategy[str]) -> Entry:
    return Entry(
        key,
        draw(value),
        draw(st.booleans()),
        draw(_SPACE),
        draw(_SPACE),
        draw(st.none() | _COMMENT),
    )


@dataclass(frozen=True)
class GeneratedFamily:
    text: str
    tags: tuple[str, ...]  # tag names in order
    split: bool  # [[tag]] tables split by a component table, or the other way round
    pythons: dict[str, str]  # tag -> python (tags that have one)
    components: dict[str, str]  # component -> version


@st.composite
def families(draw: st.DrawFn) -> GeneratedFamily:
    """An images.toml-shaped document with varied formatting, comments and order."""
    out = [draw(_BLANKS), "# The family\n" if draw(st.booleans()) else ""]
    out.append('[family]\nregistry = "ghcr.io/binkhq/python"\narches = ["amd64", "arm64"]\n')
    out.append(draw(_BLANKS))
    comp_names = draw(
        st.lists(st.sampled_from(["linkerd-await", "tini", "dumb_init"]), unique=True)
    )
    components: dict[str, str] = {}
    sections: list[str] = []
    for name in comp_names:
        version = draw(entries("version", _VERSION))
        components[name] = version.value
        header = f'[components."{name}"]' if draw(st.booleans()) else f"[components.{name}]"
        body = [version.line(), f'path = "/usr/local/bin/{name}"\n']
        if draw(st.booleans()):
            body.reverse()
        sections.append(header + "\n" + "".join(body) + draw(_BLANKS))
    names = draw(
        st.lists(
            st.from_regex(r"3\.[0-9]{1,2}(-distroless|-slim)?", fullmatch=True),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    pythons: dict[str, str] = {}
    for name in names:
        fields = [f'name = "{name}"\n']
        if draw(st.booleans()):
            python = draw(entries("python", _VERSION))
            pythons[name] = python.value
            fields.append(python.line())
        fields.append(f'os = "debian"{"  # base" if draw(st.booleans()) else ""}\n')
        fields.append(f'status = "{draw(st.sampled_from(["supported", "eol", "deprecated"]))}"\n')
        fields = draw(st.permutations(fields))
        sections.append("[[tag]]\n" + "".join(fields) + draw(_BLANKS))
    # components before, between or after the tags: order must survive either way
    order = draw(st.permutations(sections)) if draw(st.booleans()) else sections
    text = "".join(out) + "".join(order)
    parsed = tomllib.loads(text)  # the generator makes valid TOML only
    kinds = "".join("t" if s.startswith("[[tag]]") else "c" for s in order)
    split = len([k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]) > 2
    in_order = tuple(t["name"] for t in parsed["tag"])
    return GeneratedFamily(text, in_order, split, pythons, components)


def together(family: GeneratedFamily) -> bool:
    """Whether rewrite_toml takes the family; it may refuse only a family whose tables are
    split, and then with that reason (tomlkit keeps some split layouts as they are, e.g.
    one [[tag]] between two component tables, which it then need not refuse)."""
    try:
        rewrite_toml(family.text, {}, {})
    except ConfigError as exc:
        refused = str(exc)
    else:
        return True
    assert family.split, f"refused a family whose tables are together: {refused}"
    assert "split by other tables" in refused
    return False


@settings(max_examples=60, deadline=None)
@given(families())
def test_nothing_to_change_round_trips_byte_for_byte(family: GeneratedFamily) -> None:
    if not together(family):
        return
    assert rewrite_toml(family.text, {}, {}) == family.text
    # setting every value to what it already is changes nothing either
    assert rewrite_toml(family.text, family.pythons, family.components) == family.text


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_only_the_intended_values_change(data: st.DataObject) -> None:
    family = data.draw(families())
    if not together(family):
        return
    tags = data.draw(st.lists(st.sampled_from(sorted(family.pythons) or [""]), unique=True))
    python = {t: data.draw(_VERSION) for t in tags if t}
    comps = data.draw(st.lists(st.sampled_from(sorted(family.components) or [""]), unique=True))
    components = {c: data.draw(_VERSION) for c in comps if c}

    out = rewrite_toml(family.text, python, components)

    before, after = tomllib.loads(family.text), tomllib.loads(out)
    for table in before.get("tag", []):
        if table["name"] in python:
            table["python"] = python[table["name"]]
    for name, version in components.items():
        before["components"][name]["version"] = version
    assert after == before
    # line by line: only lines of edited values differ, and only inside their quotes
    old_lines, new_lines = family.text.splitlines(True), out.splitlines(True)
    assert len(old_lines) == len(new_lines)
    changed = [(o, n) for o, n in zip(old_lines, new_lines, strict=True) if o != n]
    wanted = {v for t, v in python.items() if v != family.pythons[t]} | {
        v for c, v in components.items() if v != family.components[c]
    }
    assert len(changed) <= len(python) + len(components)
    for old, new in changed:
        key = old.split("=", 1)[0].strip()
        assert key in ("python", "version"), (old, new)
        value = tomllib.loads(new.strip() if "#" not in new else new)[key]
        assert value in wanted
        old_value = tomllib.loads(old)[key]
        assert new == old.replace(old_value, value, 1)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_new_tag_is_added_and_nothing_else_moves(data: st.DataObject) -> None:
    family = data.draw(families())
    if not together(family):
        return
    after = data.draw(st.none() | st.sampled_from(family.tags))
    new = NewTag((("name", "9.99"), ("python", "9.99.0"), ("status", "supported")), after)

    out = rewrite_toml(family.text, {}, {}, [new])

    parsed = tomllib.loads(out)
    names = [t["name"] for t in parsed["tag"]]
    expected = list(family.tags)
    expected.insert(expected.index(after) + 1 if after else len(expected), "9.99")
    assert names == expected
    assert parsed["tag"][names.index("9.99")] == {
        "name": "9.99",
        "python": "9.99.0",
        "status": "supported",
    }
    # every original line is still there, in order (the new table's lines are inserted)
    old_lines = family.text.splitlines()
    new_lines = iter(out.splitlines())
    assert all(any(line == candidate for candidate in new_lines) for line in old_lines)
    assert rewrite_toml(out, {}, {}) == out


@pytest.mark.parametrize("path", ["images.toml", "examples/offline/images.toml"])
def test_the_real_files_round_trip(path: str) -> None:
    text = (REPO / path).read_text()
    assert rewrite_toml(text, {}, {}) == text


def test_the_real_family_gains_a_tag_after_3_15() -> None:
    text = (REPO / "images.toml").read_text()
    fields = (
        ("name", "3.16"),
        ("python", "3.16.0"),
        ("os", "debian"),
        ("release", "13"),
        ("eol", "2032-04"),
        ("status", "supported"),
    )
    out = rewrite_toml(text, {"3.13": "3.13.17"}, {}, [NewTag(fields, after="3.15")])
    expected = text.replace('python = "3.13.16"', 'python = "3.13.17"', 1).replace(
        'status = "supported"\n\n[[tag]]\nname = "3.12-distroless"',
        'status = "supported"\n\n[[tag]]\nname = "3.16"\npython = "3.16.0"\nos = "debian"\n'
        'release = "13"\neol = "2032-04"\nstatus = "supported"\n\n'
        '[[tag]]\nname = "3.12-distroless"',
    )
    assert out == expected


@pytest.mark.parametrize(
    ("python", "components", "add", "message"),
    [
        ({"3.99": "3.99.1"}, {}, (), "no [[tag]] named '3.99'"),
        ({}, {"tini": "1.0.0"}, (), "no [components.tini]"),
        ({}, {}, (NewTag((("name", "3.13"),)),), "tag '3.13' exists already"),
        ({}, {}, (NewTag((("name", "3.16"),), after="3.99"),), "no tag '3.99'"),
        ({}, {}, (NewTag((("python", "3.16.0"),)),), "needs one name"),
    ],
)
def test_bad_edits_are_config_errors(
    python: dict[str, str], components: dict[str, str], add: tuple[NewTag, ...], message: str
) -> None:
    text = '[components.linkerd-await]\nversion = "0.3.3"\n\n[[tag]]\nname = "3.13"\npython = "3.13.16"\n'
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        rewrite_toml(text, python, components, add)


def test_a_component_table_after_the_tags_is_edited_in_place() -> None:
    text = (
        '[family]\nregistry = "ghcr.io/binkhq/python"\n'
        '[components.tini]\nversion = "1.0.0"\npath = "/usr/local/bin/tini"\n'
        '[[tag]]\nname = "3.13"\nos = "debian"\n'
        '[components.dumb_init]\nversion = "1.0.0"\npath = "/usr/local/bin/dumb_init"\n'
    )
    out = rewrite_toml(text, {}, {"dumb_init": "1.2.0"})
    assert out == text.replace(
        'version = "1.0.0"\npath = "/usr/local/bin/dumb_init"',
        'version = "1.2.0"\npath = "/usr/local/bin/dumb_init"',
    )
