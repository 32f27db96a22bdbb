"""Steps 3-5 of ``bink-python build``: fetch the inputs, then bases and runtimes concurrently."""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..base.base import BaseResult, build_base
from ..base.spec import BaseSpec
from ..host.parallel import run_parallel
from ..host.progress import Progress
from ..inputs.cache import Cache
from ..inputs.fetch import fetch_artifact
from ..inputs.lockfile import Lock
from ..runtime.build import BuildMode, build_runtime
from ..runtime.spec import RuntimeResult, RuntimeSpec
from ..store.store import Store
from .plan import BuildOptions, Plan


def remove_stale_staging(output: Path) -> None:
    """Remove staging layouts left by builds that were killed (their process is gone)."""
    pattern = re.compile(rf"\.{re.escape(output.name)}-staging-(\d+)-")
    try:
        candidates = list(output.parent.iterdir())
    except FileNotFoundError:
        return
    for path in candidates:
        found = pattern.match(path.name)
        if found is None or not path.is_dir():
            continue
        pid = int(found.group(1))
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def fetch_inputs(
    plan: Plan, lock: Lock, store: Store, options: BuildOptions, progress: Progress
) -> dict[str, Path]:
    """Step 3: CPython sources and component binaries, verified, by lock artifact name."""
    cache = Cache(store.root)
    sources: dict[str, Path] = {}
    with progress.step("fetch", f"{len(plan.inputs)} inputs"):
        for name in plan.inputs:
            sources[name] = fetch_artifact(
                lock.entry(name),
                cache,
                offline=options.offline,
                progress=progress,
                settings=options.fetch,
            )
    return sources


@dataclass(frozen=True)
class Stages:
    """The bases and runtimes of a build, by spec (filled in as their tasks finish)."""

    bases: dict[BaseSpec, BaseResult] = field(default_factory=dict)
    runtimes: dict[RuntimeSpec, RuntimeResult] = field(default_factory=dict)


@dataclass(frozen=True)
class StageRunner:
    """What every stage task of one build shares."""

    store: Store
    options: BuildOptions
    epoch: int
    progress: Progress
    stages: Stages

    def base(self, spec: BaseSpec) -> None:
        # build_base announces its own progress step
        self.stages.bases[spec] = build_base(
            spec, self.store, epoch=self.epoch, mirrors=self.options.mirrors, progress=self.progress
        )

    def runtime(self, spec: RuntimeSpec, source: Path) -> None:
        subject = f"CPython {spec.version} {spec.distro.ident} {spec.arch} {spec.profile}"
        with self.progress.step("runtime", subject):
            self.stages.runtimes[spec] = build_runtime(
                spec,
                source,
                self.store,
                epoch=self.epoch,
                mirrors=self.options.mirrors,
                progress=self.progress,
                build_host=dict(self.options.runtime_hosts).get(spec.arch),
                mode=BuildMode.CACHED_ONLY if self.options.cached_runtimes else BuildMode.REUSE,
            )


def build_stages(
    plan: Plan,
    sources: dict[str, Path],
    store: Store,
    options: BuildOptions,
    *,
    epoch: int,
    progress: Progress,
) -> Stages:
    """Steps 4-5: every base and runtime of ``plan``, up to ``options.jobs`` at once."""
    runner = StageRunner(store, options, epoch, progress, Stages())
    tasks: dict[BaseSpec | RuntimeSpec, Callable[[], None]] = {}
    for bspec in plan.bases:
        tasks[bspec] = functools.partial(runner.base, bspec)
    # amd64 runtimes first: an arm64 cross build reuses the build Python of its version
    for rspec in sorted(plan.runtimes, key=lambda s: (s.arch != "amd64", s.version)):
        tasks[rspec] = functools.partial(runner.runtime, rspec, sources[plan.runtimes[rspec]])
    run_parallel(max(1, options.jobs), tasks)
    return runner.stages
