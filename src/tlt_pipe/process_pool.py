"""Process pools for the work tltpipe spreads over the cores (converting images, reading labels).

Workers are forked when this process has a single thread (instant: nothing is re-imported),
start with Ctrl-C ignored (the driver handles it for the whole process group) and SIGTERM
fatal (the pool's stop signal), and are terminated and joined before the pool's context
exits, so nothing is still running when the caller cleans up after an error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["ignore_interrupts", "imap_ordered", "usable_cpus"]

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def imap_ordered(
    function: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    chunksize: int = 1,
) -> Iterator[Iterator[R]]:
    """``function`` over ``items`` in ``workers`` processes, results in item order.

    ``initializer(*initargs)`` runs once in each worker (with fork, ``initargs`` are inherited,
    not pickled).
    """
    context = multiprocessing.get_context(_start_method())
    with _child_signals():
        pool = context.Pool(workers, initializer=initializer, initargs=initargs)
    try:
        yield pool.imap(function, items, chunksize=chunksize)
    finally:
        pool.terminate()
        pool.join()


def ignore_interrupts() -> None:
    """In a worker: leave Ctrl-C to the driver, and let the pool's SIGTERM stop it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _child_signals():
    """Forked workers start with Ctrl-C ignored and SIGTERM fatal, not with this process's
    handlers (they are set while the pool forks)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), saved):
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(signum, handler)


def _start_method() -> str:
    """fork when this process has a single thread (instant, nothing to re-import); with
    other threads around (a progress display, say) forking is unsafe: forkserver."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"
