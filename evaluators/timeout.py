"""Run sympy work under a wall-clock deadline, from any thread.

``signal.alarm`` only works in the main thread and cannot interrupt C code
(a big-integer power inside sympy), so work runs in a persistent pool of
worker processes instead. A call sends a task to an idle worker and waits on
its pipe until the deadline; a worker that misses it is killed (SIGKILL) and
a fresh one is started when next needed. The deadline covers waiting for a
free worker too, so a call returns within ``timeout`` plus a few
milliseconds, whatever the input and however many threads call at once.

Workers come from a ``forkserver`` that has preloaded ``evaluators.tasks``
(sympy, the LaTeX grammar, warm caches): starting one costs milliseconds,
which keeps kill-and-restart cheap. As with any multiprocessing start method
other than fork, a script that grades at import time needs the usual
``if __name__ == "__main__":`` guard.

Tasks are named ``"module:function"`` so that the caller never imports the
heavy modules itself.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from evaluators.settings import PoolSettings

PRELOAD = "evaluators.tasks"


class TaskTimeout(Exception):
    """The task did not finish (or could not start) before its deadline."""


class TaskFailed(Exception):
    """The task raised inside the worker; the message names the error."""


def _limit_memory(headroom_mb: int | None) -> None:
    if headroom_mb is None:
        return
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return  # not Linux: no cap, the deadline still holds
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + headroom_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(conn: Any, headroom_mb: int | None) -> None:
    """Worker loop: receive ``(target, args)``, reply ``(ok, payload)``."""
    # Ctrl-C belongs to the parent, which kills workers when it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(headroom_mb)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        target, args = message
        try:
            module, name = target.split(":")
            result = getattr(importlib.import_module(module), name)(*args)
            reply = (True, result)
        except Exception as exc:  # any task error, MemoryError and RecursionError included
            reply = (False, f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Any


def _context(method: str) -> Any:
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload([PRELOAD])
    return ctx


class WorkerPool:
    """A growing pool of worker processes with per-call deadlines.

    Thread-safe: any number of threads may call ``call`` at once; at most
    ``settings.max_workers`` processes run, the rest wait (within their
    deadline) for one to become free.
    """

    def __init__(self, settings: PoolSettings = PoolSettings()) -> None:
        """Create an empty pool; workers start on demand.

        Args:
            settings: size, memory cap and start method.
        """
        self.settings = settings
        self._ctx = _context(settings.start_method)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0
        self._spawning = 0
        self._waiting = 0
        self._closed = False
        self.restarts = 0
        self._started = False
        self._start_lock = threading.Lock()

    def _spawn_in_background(self) -> None:
        try:
            parent, child = self._ctx.Pipe(duplex=True)
            process = self._ctx.Process(
                target=_worker_main, args=(child, self.settings.memory_limit_mb), daemon=True
            )
            process.start()
            child.close()
            worker: _Worker | None = _Worker(process, parent)
        except Exception:  # a failed start frees the slot; callers time out
            worker = None
        with self._cond:
            self._spawning -= 1
            if worker is None or self._closed:
                self._live -= 1
            else:
                self._idle.append(worker)
            self._cond.notify_all()
        if worker is not None and self._closed:
            self._kill(worker)

    def _acquire(self, deadline: float) -> _Worker | None:
        with self._cond:
            self._waiting += 1
            try:
                while not self._closed:
                    if self._idle:
                        return self._idle.pop()
                    if self._live < self.settings.max_workers and self._spawning < self._waiting:
                        self._live += 1
                        self._spawning += 1
                        threading.Thread(target=self._spawn_in_background, daemon=True).start()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
                return None
            finally:
                self._waiting -= 1

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                self._live -= 1
            else:
                self._idle.append(worker)
            self._cond.notify_all()
        if self._closed:
            self._kill(worker)

    @staticmethod
    def _kill(worker: _Worker) -> None:
        try:
            worker.process.kill()
        except (OSError, AttributeError, ValueError):
            pass
        worker.conn.close()
        # Reap in the background: the caller's deadline must not wait on it.
        threading.Thread(target=worker.process.join, args=(5,), daemon=True).start()

    def _discard(self, worker: _Worker) -> None:
        self._kill(worker)
        with self._cond:
            self._live -= 1
            self.restarts += 1
            self._cond.notify_all()

    def call(self, target: str, args: tuple, timeout: float) -> Any:
        """Run ``module:function(*args)`` in a worker, within ``timeout`` seconds.

        Args:
            target: ``"module:function"``; the function and its result must
                be picklable.
            args: positional arguments (picklable).
            timeout: wall-clock seconds for the whole call, waiting included.

        Returns:
            The function's return value.

        Raises:
            TaskTimeout: the deadline passed; the worker (if any) was killed.
            TaskFailed: the function raised, or the worker died.
        """
        deadline = time.monotonic() + timeout
        worker = self._acquire(deadline)
        if worker is None:
            raise TaskTimeout(f"no free worker within {timeout}s")
        try:
            worker.conn.send((target, args))
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not worker.conn.poll(remaining):
                self._discard(worker)
                raise TaskTimeout(f"task exceeded {timeout}s")
            ok, payload = worker.conn.recv()
        except (EOFError, OSError) as exc:
            self._discard(worker)
            raise TaskFailed(f"worker died: {type(exc).__name__}") from None
        self._release(worker)
        if not ok:
            raise TaskFailed(payload)
        return payload

    def ensure_started(self, target: str, timeout: float) -> float:
        """Start the pool once (forkserver, preload, first worker), outside any task's deadline.

        Args:
            target: a cheap ``"module:function"`` to run as the first task.
            timeout: the most seconds to wait for it.

        Returns:
            Seconds spent here (0 once the pool has started); the caller
            does not count them against its own deadline.
        """
        if self._started:
            return 0.0
        began = time.monotonic()
        with self._start_lock:
            if not self._started:
                try:
                    self.call(target, (), timeout)
                except (TaskTimeout, TaskFailed):
                    pass  # tasks then run (and time out) under their own deadlines
                # NOTE: one attempt per pool: a pool that cannot start must not
                # cost every later answer another start-up wait.
                self._started = True
        return time.monotonic() - began

    def close(self) -> None:
        """Stop every worker; later calls fail fast with ``TaskTimeout``."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            self._kill(worker)


_POOLS: dict[tuple[int, PoolSettings], WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(settings: PoolSettings = PoolSettings()) -> WorkerPool:
    """The process-wide pool for these settings (created on first use).

    A forked child gets its own pool: pipes to the parent's workers are not
    shared across processes.

    Args:
        settings: pool settings; equal settings share a pool.

    Returns:
        The shared ``WorkerPool``.
    """
    key = (os.getpid(), settings)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = WorkerPool(settings)
        return pool


def run_with_deadline(target: str, args: tuple, timeout: float, settings: PoolSettings = PoolSettings()) -> Any:
    """Run ``module:function(*args)`` in the shared pool within ``timeout``.

    Args:
        target: ``"module:function"``.
        args: picklable positional arguments.
        timeout: wall-clock seconds, waiting for a worker included.
        settings: which shared pool to use.

    Returns:
        The function's return value.

    Raises:
        TaskTimeout: past the deadline.
        TaskFailed: the task raised or its worker died.
    """
    return get_pool(settings).call(target, args, timeout)


@atexit.register
def _close_pools() -> None:
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
