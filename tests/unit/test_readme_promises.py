"""The README's promises about the images each name what proves them, and that exists.

The README's "What every image promises" table has a promise and, in its last column,
the proofs: verify check names (`` `pip` ``) and test functions
(`` `tests/integration/test_x.py::test_name` ``). A check renamed or dropped from the
verify registry, or a test renamed or deleted, fails here instead of leaving a promise
that nothing proves. Test files are parsed with :mod:`ast`, never imported (integration
modules pull in fixtures and real tools).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bink_python.verify import CHECKS

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
HEADING = "## What every image promises"

_CODE = re.compile(r"`([^`]+)`")
_TEST_PATH = re.compile(r"\btests/[\w/]+\.py\b")


def promises(text: str) -> list[tuple[str, list[str]]]:
    """(promise, proofs) per row of the promises table under :data:`HEADING`."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    assert start is not None, f"README has no {HEADING!r} section"
    rows: list[tuple[str, list[str]]] = []
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            if in_table:
                break
            continue
        in_table = True
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= {"-", " ", ":"} or cells[-1] == "proved by":
            continue  # the header and its separator
        rows.append((cells[0], _CODE.findall(cells[-1])))
    return rows


def _defined(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every function a test file defines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, functions)}
    return names


def dangling(proofs: list[str], repo: Path = REPO) -> list[str]:
    """The proofs that name no verify check and no test function of the repository."""
    missing: list[str] = []
    for proof in proofs:
        if "::" not in proof:
            if proof not in CHECKS:
                missing.append(f"{proof}: not a verify check")
            continue
        rel, name = proof.split("::", 1)
        path = repo / rel
        if not rel.startswith("tests/") or not path.is_file():
            missing.append(f"{proof}: no file {rel} under tests/")
        elif name not in _defined(path):
            missing.append(f"{proof}: {rel} defines no {name}")
    return missing


def test_every_promise_names_a_proof_that_exists() -> None:
    rows = promises(README.read_text())
    assert len(rows) >= 10, rows
    unproved = [promise for promise, proofs in rows if not proofs]
    assert unproved == [], f"promises without a proof: {unproved}"
    problems = [p for _, proofs in rows for p in dangling(proofs)]
    assert problems == [], "dangling proofs in the README's promises:\n" + "\n".join(problems)


def test_every_verify_check_backs_a_promise() -> None:
    cited = {p for _, proofs in promises(README.read_text()) for p in proofs}
    assert sorted(set(CHECKS) - cited) == []


def test_every_test_file_the_readme_names_exists() -> None:
    named = set(_TEST_PATH.findall(README.read_text()))
    assert named, "the README names no test file"
    assert sorted(n for n in named if not (REPO / n).is_file()) == []


def test_a_bogus_proof_is_caught() -> None:
    """The table's checker fails on names that do not exist (so the tests above can fail)."""
    text = (
        f"{HEADING}\n\n| promise | proved by |\n| --- | --- |\n"
        "| a | `pip`, `no-such-check` |\n"
        "| b | `tests/unit/test_readme_promises.py::test_no_such_test` |\n"
        "| c | `tests/unit/test_readme_promises.py::test_a_bogus_proof_is_caught` |\n"
        "| d | `tests/unit/no_such_file.py::test_x` |\n\n## Next\n| x | `y` |\n"
    )
    rows = promises(text)
    assert [promise for promise, _ in rows] == ["a", "b", "c", "d"]
    problems = [p for _, proofs in rows for p in dangling(proofs)]
    assert problems == [
        "no-such-check: not a verify check",
        "tests/unit/test_readme_promises.py::test_no_such_test: "
        "tests/unit/test_readme_promises.py defines no test_no_such_test",
        "tests/unit/no_such_file.py::test_x: no file tests/unit/no_such_file.py under tests/",
    ]
