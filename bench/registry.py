"""The one list of comparisons: number, key, name for ``--only``, title and runner.

RESULTS.md shows them in number order; ``python -m bench`` runs those with
``harnessed`` set, in the order of :data:`RUN_ORDER` (the cold build first: it leaves the
warm cache the others start from). The others are measured by their own modules
(several interpreters in one root filesystem, callgrind, finished release builds) and
their runners only say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .comparisons import arm64, assembly, cold, noop, security, sizes, speed
from .comparisons.common import Context
from .harness import BenchError, Outcome


@dataclass(frozen=True)
class Comparison:
    """One comparison: its section number and key in RESULTS.md, its name and its runner."""

    number: int
    name: str  # the name of ``--only`` and of the key after its number
    title: str  # the section heading, starting with the number
    runner: Callable[[Context], Outcome]
    harnessed: bool = True  # run by ``python -m bench`` (else by its own module)

    @property
    def key(self) -> str:
        return f"{self.number}-{self.name}"


def _by_interpreters(ctx: Context) -> Outcome:
    raise BenchError(
        "measured by `python -m bench.interpreters` (several interpreters in one root "
        "filesystem): see its docstring and the commands in RESULTS.md"
    )


def _by_instructions(ctx: Context) -> Outcome:
    raise BenchError(
        "measured by `python -m bench.instructions` (callgrind in one root filesystem): see "
        "its docstring and the command in RESULTS.md"
    )


def _by_release_builds(ctx: Context) -> Outcome:
    raise BenchError(
        "read from two finished release builds by `python -m bench.release_builds` "
        "(about an hour each here): see its docstring and the command in RESULTS.md"
    )


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(2, "cold", "2. Cold build of one tag (amd64), empty caches", cold.run_cold),
    Comparison(
        3, "security", "3. Security rebuild: base changed, Python not", security.run_security
    ),
    Comparison(4, "noop", "4. No-op rebuild", noop.run_noop),
    Comparison(
        5,
        "arm64",
        "5. arm64: cross-compiled vs emulated (qemu), fast profile",
        arm64.run_arm64,
    ),
    Comparison(
        6,
        "sizes",
        "6. Image size and unpack time: ours (regular, distroless; gzip, zstd) vs the reference",
        sizes.run_sizes,
    ),
    Comparison(
        7,
        "speed",
        "7. Python speed: our release runtime vs Debian's python3.13 and the reference",
        speed.run_speed,
    ),
    Comparison(
        8,
        "assembly",
        "8. Assembly overhead: one image vs `tar c | gzip -6`",
        assembly.run_assembly,
    ),
    Comparison(
        9,
        "startup",
        "9. Start-up as uid 10000 on a read-only root filesystem: ours vs Debian's "
        "python3.13 vs the reference",
        _by_interpreters,
        harnessed=False,
    ),
    Comparison(
        10,
        "changes",
        "10. The cost of each interpreter change on its own (static core, BOLT, frame pointers)",
        _by_interpreters,
        harnessed=False,
    ),
    Comparison(
        11,
        "release-builds",
        "11. Release runtime build time: amd64 native vs arm64 cross-compiled, its PGO "
        "profile run under qemu-user",
        _by_release_builds,
        harnessed=False,
    ),
    Comparison(
        12,
        "frame-pointers",
        "12. The cost of frame pointers: one build with and without them",
        _by_interpreters,
        harnessed=False,
    ),
    Comparison(
        13,
        "choices",
        "13. Build choices where ours differed from Debian's python3.13, each on its own: the "
        "stack protector's level, built-in start-up modules, a PIE executable, "
        "_FORTIFY_SOURCE",
        _by_interpreters,
        harnessed=False,
    ),
    Comparison(
        14,
        "instructions",
        "14. Instructions executed (callgrind): ours vs Debian's python3.13 and build "
        "candidates, where the work differs",
        _by_instructions,
        harnessed=False,
    ),
    Comparison(
        15,
        "eval-loop-gcse",
        "15. The eval loop's file without GCSE (GCC's advice for computed-goto dispatch): "
        "recipe 9 against recipe 8",
        _by_interpreters,
        harnessed=False,
    ),
    Comparison(
        16,
        "compiler",
        "16. The compiler: clang 19 against GCC 14, the same recipe otherwise",
        _by_interpreters,
        harnessed=False,
    ),
)

BY_NAME = {c.name: c for c in COMPARISONS}
BY_KEY = {c.key: c for c in COMPARISONS}

#: The order ``python -m bench`` runs the harnessed comparisons in (``--only`` keeps it).
RUN_ORDER = tuple(
    BY_NAME[n] for n in ("assembly", "cold", "noop", "security", "sizes", "arm64", "speed")
)


def titles() -> dict[str, str]:
    """Every comparison's RESULTS.md heading by key, in number order."""
    return {c.key: c.title for c in sorted(COMPARISONS, key=lambda c: c.number)}
