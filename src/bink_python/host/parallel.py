"""Independent tasks side by side (stages of a build, images of a verification), stopped
together: the first failure or a signal stops every task's external commands."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Hashable
from typing import TypeVar

from . import proc

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def run_parallel(jobs: int, tasks: dict[K, Callable[[], T]]) -> dict[K, T]:
    """Run independent stage tasks; the first failure (or Ctrl-C/SIGTERM) stops the rest.

    Stopping means: tasks not started are cancelled, every running external command
    (of every task) has its process group stopped (:func:`proc.cancel`), later commands
    refuse to start, and this waits until each running task has unwound through its
    own cleanups (temporary cache entries, mounts) before the first error is raised.
    """
    results: dict[K, T] = {}
    if jobs <= 1 or len(tasks) <= 1:
        for name, task in tasks.items():
            results[name] = task()
        return results
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(task): name for name, task in tasks.items()}
    try:
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        proc.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
        proc.reset_cancel()
    return results
