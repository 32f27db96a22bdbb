"""docs/architecture.md names every package and module there is, as each describes itself."""

from __future__ import annotations

import pytest

from ..docs import DOC, PACKAGE, modules_section, render


def test_the_module_map_is_generated_from_todays_modules() -> None:
    text = DOC.read_text()
    assert render(text) == text, "docs/architecture.md is stale: run `python -m tests.docs`"


def test_every_package_is_in_the_layer_table_and_every_module_in_the_map() -> None:
    text = DOC.read_text()
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    for name in packages:
        assert f"`{name}/`" in text.split("## Every module")[0], name
    section = modules_section()
    for module in PACKAGE.rglob("*.py"):
        if "probes" not in module.parts:
            assert f"`{module.name}`" in section, module


def test_render_refuses_a_document_without_the_markers() -> None:
    with pytest.raises(ValueError, match="no <!-- BEGIN GENERATED"):
        render("no markers here")
