"""Skipping verification is explicit (BuildOptions.verify=False) and visible in the result."""

from __future__ import annotations

import inspect
from pathlib import Path

from bink_python.pipeline.build import BuildOptions, BuildSummary, build_family
from bink_python.pipeline.summary import ImageRow
from bink_python.verify import CheckResult, ImageReport, VerifyReport

ROW = ImageRow("3.13", "amd64", "sha256:" + "a" * 64, 1000, ())


def test_unverified_build_says_so() -> None:
    summary = BuildSummary(Path("oci"), (ROW,), {"3.13": "sha256:" + "b" * 64})
    assert not summary.verified
    assert "NOT VERIFIED" in summary.table()
    assert summary.to_json()["verified"] is False
    assert summary.to_json()["verify"] is None


def test_verified_build_carries_its_report() -> None:
    report = VerifyReport(
        (ImageReport("3.13", "amd64", ROW.digest, (CheckResult("pip", "pass", "ok"),)),)
    )
    summary = BuildSummary(Path("oci"), (ROW,), {}, report=report)
    assert summary.verified
    assert "verified: 1 image(s), 1 checks passed, 0 not applicable" in summary.table()
    data = summary.to_json()
    assert data["verified"] is True
    assert isinstance(data["verify"], dict) and data["verify"]["ok"] is True


def test_verification_is_a_stage_not_a_callback() -> None:
    assert BuildOptions().verify is True
    assert "verifier" not in inspect.signature(build_family).parameters
