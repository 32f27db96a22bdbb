"""Errors match their stage: what the OCI layout reports while exporting, pushing or
verifying is that stage's error (and exit code), not "a build stage failed"; a missing
layout or ref is the command line's error (exit 2) in every stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from bink_python.errors import (
    BuildError,
    NoSuchLayout,
    NoSuchTag,
    PublishError,
    VerifyError,
    reported_as,
)
from bink_python.oci.layout import Layout
from bink_python.publish.publish import export, plan_push
from bink_python.verify import manifest_for, verify_targets


def test_a_missing_ref_in_export_is_the_command_lines_error(tmp_path: Path) -> None:
    Layout(tmp_path / "oci").init()
    with pytest.raises(NoSuchTag, match=r"ref '3\.12' not in the OCI layout") as info:
        export(tmp_path / "oci", "3.12", "oci-archive", tmp_path / "out.tar")
    assert info.value.exit_code == 2
    assert not (tmp_path / "out.tar").exists()


def test_push_of_a_non_layout_is_the_command_lines_error(tmp_path: Path) -> None:
    with pytest.raises(NoSuchLayout, match="not an OCI image layout"):
        plan_push(tmp_path, ["3.13"], "127.0.0.1:1/python")


def test_verify_of_a_missing_ref_is_the_command_lines_error(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci").init()
    with pytest.raises(NoSuchTag, match=r"ref '3\.13' not in the OCI layout") as info:
        manifest_for(layout, "3.13", "amd64")
    assert info.value.exit_code == 2
    with pytest.raises(NoSuchLayout, match="not an OCI image layout"):
        verify_targets(tmp_path / "nothing", [])


def test_reported_as_keeps_the_message_and_other_errors() -> None:
    with pytest.raises(PublishError, match=r"^boom$"), reported_as(PublishError):
        raise BuildError("boom")
    with pytest.raises(VerifyError, match=r"^own$"), reported_as(PublishError):
        raise VerifyError("own")
    with pytest.raises(NoSuchTag), reported_as(PublishError):
        raise NoSuchTag("not a lower room's error")
