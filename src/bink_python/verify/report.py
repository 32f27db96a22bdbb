"""What verify found: one result per check, per image, and the whole report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import VerifyError

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str  # one line: what was found (or why it failed / was skipped)
    output: str = ""  # the failing command's output or the offending paths
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "detail": self.detail,
            "output": self.output,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class ImageReport:
    tag: str
    arch: str
    digest: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "arch": self.arch,
            "digest": self.digest,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class VerifyReport:
    images: tuple[ImageReport, ...]

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.images)

    def table(self) -> str:
        """One row per tag/arch/check; failing checks followed by their command output."""
        rows = [("TAG", "ARCH", "CHECK", "RESULT", "DETAIL")]
        notes: list[str] = []
        for image in self.images:
            for check in image.checks:
                rows.append((image.tag, image.arch, check.name, check.status, check.detail))
                if not check.ok and check.output:
                    notes.append(
                        f"--- {image.tag} {image.arch} {check.name}\n{check.output.rstrip()}"
                    )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
            for row in rows
        ]
        passed = sum(1 for i in self.images for c in i.checks if c.status == PASS)
        failed = sum(1 for i in self.images for c in i.checks if c.status == FAIL)
        lines.append(f"{len(self.images)} image(s): {passed} passed, {failed} failed")
        return "\n".join(line.rstrip() for line in lines + notes) + "\n"

    def to_json(self) -> str:
        data = {"ok": self.ok, "images": [i.to_json() for i in self.images]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def failures(self) -> list[tuple[ImageReport, CheckResult]]:
        return [(i, c) for i in self.images for c in i.failed]

    def raise_for_failures(self) -> None:
        """VerifyError (exit 8) naming every failed check, when any failed."""
        failed = self.failures()
        if failed:
            listed = "; ".join(f"{i.tag} {i.arch} {c.name}: {c.detail}" for i, c in failed)
            raise ChecksFailed(
                f"{len(failed)} check(s) failed: {listed} (see the table for the output)", self
            )


class ChecksFailed(VerifyError):
    """Checks failed (exit 8); ``report`` is the whole report, for its table."""

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report
