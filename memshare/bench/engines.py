"""The engine processes of one ``bench`` / ``ablate`` invocation: one alive at a time, reused.

A run goes to the live engine process when that engine can serve it (``engine_key``: the same
settings but the KV budget, the same kind: plain vLLM or the backend); otherwise the live one is
stopped first and a new one started, so a GPU never holds two models. Engines are built with the
invocation's largest KV budget (``capacity``); a run at a smaller one holds the difference out of
the pool (``memshare.engine.session``). ``per_run=True`` (``--engine-per-run``) starts a fresh
engine sized to each run's budget, as every run did before engines were reused.

This module never imports vLLM: the engine lives in ``python -m memshare.engine.batch --session``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

from memshare.engine.protocol import BatchSpec, Done, Failed, Progress, decode_event
from memshare.engine.session import engine_key
from memshare.errors import UserError
from memshare.results import Events


def pool_capacity(budgets: Iterable[int | None]) -> int | None:
    """The KV blocks to build engines with: the largest budget (None: one run lets vLLM size the pool)."""
    budgets = list(budgets)
    return None if not budgets or None in budgets else max(b for b in budgets if b is not None)


class Engines:
    """Engine processes, at most one alive; use as a context manager (``close`` stops the live one)."""

    def __init__(self, capacity: int | None = None, *, per_run: bool = False) -> None:
        self.capacity = capacity
        self.per_run = per_run
        self.started = 0  # engine processes started
        self.build_s = 0.0  # seconds the engines took to build (model load, KV pool, warm-up)
        self.runs = 0
        self._proc: subprocess.Popen | None = None
        self._key: str | None = None
        self._log: Any = None

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def summary(self) -> dict[str, Any]:
        return {"engines_started": self.started, "engine_build_s": round(self.build_s, 2), "runs": self.runs,
                "engine_per_run": self.per_run, "pool_blocks": self.capacity}

    def run(self, spec: BatchSpec, emit: Events, label: str) -> dict[str, Any]:
        """Run ``spec`` on a suitable engine; its report (``memshare.engine.batch``). A failure raises
        ``UserError`` naming ``label`` and stops the engine, so the next run gets a fresh one."""
        key = engine_key(spec)
        if self._proc is not None and (self.per_run or key != self._key or self._proc.poll() is not None):
            self.close()
        if self._proc is None:
            self._start(spec, key)
        capacity = spec.engine.kv_blocks if self.per_run else self.capacity
        command = json.dumps({"spec": spec.to_dict(), "capacity": capacity}) + "\n"
        report: dict[str, Any] | None = None
        error = None
        try:
            self._proc.stdin.write(command)
            self._proc.stdin.flush()
            for line in self._proc.stdout:
                event = decode_event(line)
                if isinstance(event, Progress):
                    emit("progress", {"policy": label, **event.to_dict()})
                elif isinstance(event, Done):
                    report = event.report
                    break
                elif isinstance(event, Failed):
                    error = event.message
                    break
        except BrokenPipeError:
            pass
        if report is None:
            tail = self._log_tail()
            self.close()
            if error:
                raise UserError(f"{label}: {error}")
            raise UserError(f"{label}: the engine process failed: {tail}")
        self.runs += 1
        session = (report.get("engine_facts") or {}).get("session") or {}
        self.build_s += float(session.get("start_s") or 0.0)
        return report

    def _start(self, spec: BatchSpec, key: str) -> None:
        from memshare.engine.adapter import engine_env

        env = engine_env({**os.environ, "PYTHONUNBUFFERED": "1"}, in_process=True, quiet=True,
                         vllm_defaults=spec.engine.engine_mode == "defaults",
                         tensor_parallel_size=spec.engine.tensor_parallel_size)
        self._log = tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="memshare-engine-", delete=False)
        self._proc = subprocess.Popen([sys.executable, "-m", "memshare.engine.batch", "--session"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                      env=env)
        self._key = key
        self.started += 1

    def close(self) -> None:
        """Stop the live engine process (end of input, then a kill if it lingers)."""
        proc, self._proc, self._key = self._proc, None, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            proc.kill()
            proc.wait()
        if proc.returncode == 0 and self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None

    def _log_tail(self) -> str:
        if self._log is None:
            return "(no log)"
        self._log.flush()
        self._log.seek(0)
        lines = [ln for ln in self._log.read().splitlines() if ln.strip()]
        return f"{(lines or ['(no output)'])[-1][:300]} [full log: {self._log.name}]"
