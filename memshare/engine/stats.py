"""Per-step engine statistics, counted the same way for every policy, plain vLLM included.

One ``StepStats`` sees every ``Scheduler.schedule()`` result: with the backend loaded the
connector feeds it (``SchedulerSide.build_meta``); for plain vLLM (``vanilla``) the adapter
wraps the scheduler's ``schedule`` (``adapter.scheduler.watch_schedule``). So ``engine_steps``, mean
running requests and KV use mean the same thing in every row of a benchmark table.

With synchronous scheduling and greedy decoding (or seeded sampling) the step sequence is
deterministic, so ``engine_steps`` repeats exactly from run to run on the same machine.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass


@dataclass(slots=True)
class StepStats:
    """Running totals over engine steps that scheduled at least one request."""

    steps: int = 0
    running_sum: int = 0
    kv_used_sum: int = 0  # block-steps held: KV blocks in use, summed over steps
    peak_kv_blocks: int = 0
    num_preemptions: int = 0
    last_kv_blocks: int = 0  # KV blocks in use at the last record
    step_wall_s: float = 0.0
    # KV blocks held out of the pool for a smaller budget (an engine reused across budgets):
    # readings of the whole pool's use (vLLM's stat loggers) subtract them.
    held_out: int = 0
    _last_t: float | None = None

    def reset(self, held_out: int = 0) -> None:
        """Start a new run on the same engine (the stat logger keeps this object)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, f.default)
        self.held_out = held_out

    def record(self, num_scheduled: int, kv_used_blocks: int, num_preempted: int) -> None:
        """One ``schedule()`` result: requests scheduled, KV blocks in use, requests preempted."""
        now = time.perf_counter()
        if self._last_t is not None and num_scheduled:
            self.step_wall_s += now - self._last_t
        self._last_t = now
        if num_scheduled:
            self.steps += 1
            self.running_sum += num_scheduled
            self.kv_used_sum += kv_used_blocks
        self.peak_kv_blocks = max(self.peak_kv_blocks, kv_used_blocks)
        self.last_kv_blocks = kv_used_blocks
        self.num_preemptions += num_preempted

    @property
    def mean_running_requests(self) -> float:
        return self.running_sum / self.steps if self.steps else 0.0

    @property
    def kv_blocks_per_running(self) -> float | None:
        """Physical KV blocks in use per running request, averaged over steps (weighted by requests)."""
        return self.kv_used_sum / self.running_sum if self.running_sum else None

    def report(self) -> dict[str, float | int | None]:
        return {
            "engine_steps": self.steps,
            "mean_running_requests": self.mean_running_requests,
            "kv_blocks_per_running": self.kv_blocks_per_running,
            "block_steps_held": self.kv_used_sum,
            "peak_kv_blocks": self.peak_kv_blocks,
            "num_preemptions": self.num_preemptions,
            "step_ms": 1e3 * self.step_wall_s / max(self.steps, 1),
        }
