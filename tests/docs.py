"""The package map in docs/architecture.md, generated from the modules' own docstrings.

``python -m tests.docs`` rewrites the section between the ``modules`` markers; the unit
test ``test_architecture_doc`` fails when it is stale, so the map names every package
and module there is, each with the first sentence of what it says of itself.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "bink_python"
DOC = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- BEGIN GENERATED: modules -->", "<!-- END GENERATED: modules -->"


def first_sentence(path: Path) -> str:
    """The first sentence of the module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "`")
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return match.group(1) if match else paragraph


def modules_section() -> str:
    """One line per package, then one per module in it (the verify probes as one)."""
    lines = []
    top = sorted(p for p in PACKAGE.glob("*.py"))
    for module in top:
        lines.append(f"- `{module.name}`: {first_sentence(module)}")
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        lines.append(f"- **`{package.name}/`**: {first_sentence(package / '__init__.py')}")
        for module in sorted(package.glob("*.py")):
            if module.name != "__init__.py":
                lines.append(f"  - `{module.name}`: {first_sentence(module)}")
        for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
            lines.append(f"  - `{sub.name}/`: {first_sentence(sub / '__init__.py')}")
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with its generated section replaced by :func:`modules_section`."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"{DOC} has no {BEGIN} ... {END} section")
    return f"{head}{BEGIN}\n{modules_section()}\n{END}{tail}"


def main() -> int:
    text = DOC.read_text()
    new = render(text)
    if new != text:
        DOC.write_text(new)
        print(f"{DOC.relative_to(REPO)} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
