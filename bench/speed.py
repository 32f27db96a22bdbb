"""Small CPU benchmarks modelled on pyperformance's (stdlib only, runs offline).

Copied into the image and run by each interpreter under test::

    python3 speed.py NAME LOOPS        -> prints {"name": ..., "seconds": [...]} (per loop)

pyperformance itself creates virtual environments and pip-installs pyperf and
benchmark dependencies per run; these workloads are the same algorithms (nbody,
fannkuch, richards, float, json_dumps, regex_compile-style regex) without the
dependencies, so both interpreters run byte-identical code.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable

# ----------------------------------------------------------------------------- nbody

_PI = math.pi
_SOLAR_MASS = 4 * _PI * _PI
_DAYS = 365.24


def _bodies() -> list[list[float]]:
    return [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, _SOLAR_MASS],
        [
            4.84143144246472090e00,
            -1.16032004402742839e00,
            -1.03622044471123109e-01,
            1.66007664274403694e-03 * _DAYS,
            7.69901118419740425e-03 * _DAYS,
            -6.90460016972063023e-05 * _DAYS,
            9.54791938424326609e-04 * _SOLAR_MASS,
        ],
        [
            8.34336671824457987e00,
            4.12479856412430479e00,
            -4.03523417114321381e-01,
            -2.76742510726862411e-03 * _DAYS,
            4.99852801234917238e-03 * _DAYS,
            2.30417297573763929e-05 * _DAYS,
            2.85885980666130812e-04 * _SOLAR_MASS,
        ],
        [
            1.28943695621391310e01,
            -1.51111514016986312e01,
            -2.23307578892655734e-01,
            2.96460137564761618e-03 * _DAYS,
            2.37847173959480950e-03 * _DAYS,
            -2.96589568540237556e-05 * _DAYS,
            4.36624404335156298e-05 * _SOLAR_MASS,
        ],
        [
            1.53796971148509165e01,
            -2.59193146099879641e01,
            1.79258772950371181e-01,
            2.68067772490389322e-03 * _DAYS,
            1.62824170038242295e-03 * _DAYS,
            -9.51592254519715870e-05 * _DAYS,
            5.15138902046611451e-05 * _SOLAR_MASS,
        ],
    ]


def bench_nbody() -> None:
    bodies = _bodies()
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
    dt = 0.01
    for _ in range(20000):
        for b1, b2 in pairs:
            dx, dy, dz = b1[0] - b2[0], b1[1] - b2[1], b1[2] - b2[2]
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            b1m, b2m = b1[6] * mag, b2[6] * mag
            b1[3] -= dx * b2m
            b1[4] -= dy * b2m
            b1[5] -= dz * b2m
            b2[3] += dx * b1m
            b2[4] += dy * b1m
            b2[5] += dz * b1m
        for b in bodies:
            b[0] += dt * b[3]
            b[1] += dt * b[4]
            b[2] += dt * b[5]


# ----------------------------------------------------------------------------- fannkuch


def bench_fannkuch() -> None:
    n = 9
    count = list(range(1, n + 1))
    max_flips = 0
    m = n - 1
    r = n
    perm1 = list(range(n))
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        if perm1[0] != 0 and perm1[m] != m:
            perm = perm1[:]
            flips = 0
            k = perm[0]
            while k:
                perm[: k + 1] = perm[k::-1]
                flips += 1
                k = perm[0]
            max_flips = max(max_flips, flips)
        while r != n:
            perm1.insert(r, perm1.pop(0))
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        else:
            return


# ----------------------------------------------------------------------------- richards


class _Task:
    def __init__(self, ident: int, prio: int, work: int) -> None:
        self.ident, self.prio, self.work = ident, prio, work
        self.packets: list[int] = []
        self.held = False

    def run(self, sched: _Scheduler) -> _Task | None:
        if self.packets:
            packet = self.packets.pop(0)
            self.work = (self.work * 31 + packet) % 1009
            target = sched.tasks[(self.ident + packet) % len(sched.tasks)]
            target.packets.append((packet + self.work) % 7)
            return target
        self.held = not self.held
        return None


class _Scheduler:
    def __init__(self) -> None:
        self.tasks = [_Task(i, i % 3, i * 7) for i in range(10)]
        for task in self.tasks:
            task.packets = [task.ident % 5, (task.ident * 3) % 5]

    def schedule(self, steps: int) -> int:
        current = self.tasks[0]
        done = 0
        for step in range(steps):
            nxt = current.run(self)
            if nxt is None:
                nxt = self.tasks[(current.ident + 1 + step % 3) % len(self.tasks)]
            current = nxt
            done += current.prio
        return done


def bench_richards() -> None:
    _Scheduler().schedule(200000)


# ----------------------------------------------------------------------------- float


class _Point:
    __slots__ = ("x", "y", "z")

    def __init__(self, i: float) -> None:
        self.x = x = math.sin(i)
        self.y = math.cos(i) * 3
        self.z = (x * x) / 2

    def normalize(self) -> None:
        norm = math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)
        self.x /= norm
        self.y /= norm
        self.z /= norm

    def maximize(self, other: _Point) -> _Point:
        self.x = max(self.x, other.x)
        self.y = max(self.y, other.y)
        self.z = max(self.z, other.z)
        return self


def bench_float() -> None:
    points = [_Point(i) for i in range(100000)]
    for p in points:
        p.normalize()
    nxt = points[0]
    for p in points[1:]:
        nxt = nxt.maximize(p)


# ----------------------------------------------------------------------------- json_dumps

_JSON_DATA = {
    "key": "value",
    "list": list(range(100)),
    "nested": {"a": [1.5, 2.5, {"b": "c" * 20}], "unicode": "\u00e9\u4e2d" * 10},
    "bools": [True, False, None] * 20,
}


def bench_json_dumps() -> None:
    for _ in range(1000):
        json.dumps(_JSON_DATA)
        json.dumps(_JSON_DATA, sort_keys=True, indent=2)


# ----------------------------------------------------------------------------- regex

_REGEXES = [
    r"(\w+)@(\w+)\.(com|org|net)",
    r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\s*$",
    r"(?P<key>[a-z_]+)\s*=\s*(?P<value>\"[^\"]*\"|\S+)",
    r"(a|b|c)*d+[e-h]{2,5}(?:ij|kl)?$",
]
_TEXT = 'user@example.com 192.168.0.1 name = "value" aaabcddddefg ' * 200


def bench_regex() -> None:
    for _ in range(40):
        re.purge()
        compiled = [re.compile(p) for p in _REGEXES]
        for pattern in compiled:
            pattern.findall(_TEXT)


BENCHMARKS: dict[str, Callable[[], None]] = {
    "nbody": bench_nbody,
    "fannkuch": bench_fannkuch,
    "richards": bench_richards,
    "float": bench_float,
    "json_dumps": bench_json_dumps,
    "regex": bench_regex,
}


def run(name: str, loops: int) -> list[float]:
    """Seconds of each of ``loops`` runs of benchmark ``name`` (after one warm-up run)."""
    func = BENCHMARKS[name]
    func()
    times = []
    for _ in range(loops):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in BENCHMARKS:
        print(f"usage: speed.py {{{','.join(BENCHMARKS)}}} LOOPS", file=sys.stderr)
        return 2
    seconds = run(argv[0], int(argv[1]))
    print(json.dumps({"name": argv[0], "python": sys.version.split()[0], "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
