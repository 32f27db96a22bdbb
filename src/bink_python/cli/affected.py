"""``bink-python ci affected``: which images a change can alter, as the pull request's matrix.

A change is read as git sees it (the files that differ from the merge base with
``--base``) and the two states of images.toml and images.lock:

* a file of the tool (``src/``, ``pyproject.toml``) or of the machine set-up
  (``scripts/setup.sh``) can change any image: every tag on every arch;
* images.toml: a tag whose table differs, or every tag when anything outside the
  ``[[tag]]`` tables differs (the family, its user, its components);
* images.lock: the tags, and the arches, that use an artifact whose entry differs;
* anything else (the README, docs, tests, benchmarks): no image.

Only tags that may be built today are listed (what ``ci plan`` builds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from ..family.config import Family, Tag, load_family, parse_family
from ..family.policy import check_buildable
from ..host.arch import ARCHES
from ..inputs.lockfile import component_name, cpython_name
from ..settings import settings_of

#: Changed paths (prefixes) that can alter every image.
EVERY_IMAGE = ("src/", "pyproject.toml", "scripts/setup.sh")


def _tag_tables(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(t.get("name")): t for t in data.get("tag", []) if isinstance(t, dict)}


def _artifacts_of(tag: Tag, arch: str, family: Family) -> set[str]:
    names = {cpython_name(tag.version)} if tag.version else set()
    for comp in tag.components:
        names.add(component_name(comp, family.component(comp).version, arch))
    return names


def affected(
    family: Family,
    changed: Iterable[str],
    old_toml: Mapping[str, Any] | None,
    new_toml: Mapping[str, Any],
    old_lock: Mapping[str, Any] | None,
    new_lock: Mapping[str, Any],
    today: dt.date | None = None,
) -> list[tuple[str, str]]:
    """The (tag, arch) pairs of ``family``'s buildable tags that the change can alter.

    ``old_toml``/``old_lock`` are the parsed files before the change (None: they did
    not exist), ``new_*`` after; ``changed`` the paths git reports."""
    paths = list(changed)
    when = today or dt.date.today()
    tags = check_buildable(family.tags, today=when, allow_eol=False, explicit=False).tags
    pairs = [(tag, arch) for tag in tags for arch in tag.arches]
    if any(p.startswith(EVERY_IMAGE) for p in paths) or old_toml is None or old_lock is None:
        return [(tag.name, arch) for tag, arch in pairs]
    old_rest = {k: v for k, v in old_toml.items() if k != "tag"}
    new_rest = {k: v for k, v in new_toml.items() if k != "tag"}
    if old_rest != new_rest:
        return [(tag.name, arch) for tag, arch in pairs]
    old_tags, new_tags = _tag_tables(old_toml), _tag_tables(new_toml)
    edited = {name for name, table in new_tags.items() if old_tags.get(name) != table}
    old_arts = dict(old_lock.get("artifacts", {}))
    new_arts = dict(new_lock.get("artifacts", {}))
    moved = {n for n in set(old_arts) | set(new_arts) if old_arts.get(n) != new_arts.get(n)}
    return [
        (tag.name, arch)
        for tag, arch in pairs
        if tag.name in edited or _artifacts_of(tag, arch, family) & moved
    ]


def matrix_outputs(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``images`` (a GitHub matrix: tag, arch and the arch's native runner) and ``any``."""
    include = [{"tag": tag, "arch": arch, "runner": ARCHES[arch].runner} for tag, arch in pairs]
    return {
        "images": json.dumps({"include": include}, separators=(",", ":")),
        "any": "true" if include else "false",
    }


def _git(*argv: str, cwd: Path) -> str:
    done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"git {' '.join(argv)}: {last}")
    return done.stdout


def _at(base: str, path: Path, cwd: Path) -> str | None:
    """The file at the merge base, or None where it did not exist there."""
    rel = path.resolve().relative_to(Path(_git("rev-parse", "--show-toplevel", cwd=cwd).strip()))
    done = subprocess.run(
        ["git", "show", f"{base}:{rel.as_posix()}"], cwd=cwd, capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def _parsed(text: str | None, parse: Callable[[str], Any], path: Path) -> Any:
    """The base's version of a file, parsed; None where it is missing or does not parse
    (then every image counts as changed)."""
    if text is None:
        return None
    try:
        data = parse(text)
        if path.suffix == ".toml":
            parse_family(data, path)
    except (ValueError, ConfigError):
        return None
    return data


def cmd_affected(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    config = settings.config
    family = load_family(config)
    new_toml = tomllib.loads(config.read_text())
    new_lock = json.loads(family.lock_path.read_text())
    if args.base is None:  # no change to compare with (a manual run): every image
        pairs = affected(family, ["src/"], None, new_toml, None, new_lock, today=settings.clock())
    else:
        cwd = config.resolve().parent
        base = _git("merge-base", args.base, "HEAD", cwd=cwd).strip()
        changed = _git("diff", "--name-only", base, "HEAD", cwd=cwd).split()
        old_toml_text = _at(base, config, cwd)
        old_lock_text = _at(base, family.lock_path, cwd)
        old_toml = _parsed(old_toml_text, tomllib.loads, config)
        old_lock = _parsed(old_lock_text, json.loads, family.lock_path)
        pairs = affected(
            family, changed, old_toml, new_toml, old_lock, new_lock, today=settings.clock()
        )
    for name, value in matrix_outputs(pairs).items():
        print(f"{name}={value}")
    return 0
