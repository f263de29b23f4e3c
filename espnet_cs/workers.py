"""Worker processes that end with their parent, and a worker's death told in one line.

A ``ProcessPoolExecutor``'s workers wait for work from their parent: if the parent is killed
(``kill -9``, the out-of-memory killer), they would wait on. Here each worker asks the kernel
for ``SIGKILL`` when its parent dies (Linux's ``PR_SET_PDEATHSIG``). A worker that dies
itself breaks the pool; :func:`map_in_processes` turns that into a :class:`WorkerDied` that
names the work, the worker's exit (its signal) and the likely cause.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class WorkerDied(RuntimeError):
    """A worker process ended without returning its work; the message says how and what to do."""


def end_with_parent(parent: int) -> None:
    """Make this process receive ``SIGKILL`` when its parent dies (no-op where prctl is missing);
    if the parent ``parent`` is gone already, exit now."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, from its ``exitcode`` (negative: the signal), with the likely cause."""
    if exitcode is None:
        return "ended"
    if exitcode >= 0:
        return f"exited with status {exitcode}"
    name = signal.Signals(-exitcode).name
    if -exitcode == signal.SIGKILL:
        return f"was killed by {name} (most often the out-of-memory killer: see dmesg, or use fewer jobs)"
    return f"was killed by {name}"


class _TrackingContext(multiprocessing.context.ForkContext):
    """The fork context, remembering every process it makes (to read a dead worker's exit code)."""

    def __init__(self) -> None:
        super().__init__()
        self.processes: list[multiprocessing.Process] = []

    def Process(self, *args: Any, **kwargs: Any) -> multiprocessing.Process:  # noqa: N802 (the context's name)
        process = super().Process(*args, **kwargs)
        self.processes.append(process)
        return process


def map_in_processes(
    function: Callable[[T], R], items: list[T], nj: int, what: str, progress: Callable[[Iterator], Iterable] = iter
) -> list[R]:
    """``[function(item) for item in items]`` over ``nj`` worker processes that end with this one.

    Args:
        function: a picklable function of one item.
        items: its inputs; results come back in their order.
        nj: number of worker processes.
        what: the work, as errors name it (e.g. ``formatting data/test into dump/raw/test``).
        progress: wraps the iterator of results (e.g. a tqdm bar).
    Raises:
        WorkerDied: a worker ended before returning its result, naming ``what`` and how it ended.
    """
    context = _TrackingContext()
    with ProcessPoolExecutor(nj, mp_context=context, initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
        try:
            return list(progress(pool.map(function, items, chunksize=max(1, len(items) // (nj * 50)))))
        except BrokenProcessPool:
            for process in context.processes:
                process.join(timeout=5)
            dead = [p for p in context.processes if p.exitcode not in (None, 0)]
            dead = [p for p in dead if p.exitcode != -signal.SIGTERM] or dead  # the pool ends the others by SIGTERM
            how = "; ".join(f"worker {p.pid} {describe_exit(p.exitcode)}" for p in dead) or "a worker ended"
            raise WorkerDied(f"{what}: {how}") from None
