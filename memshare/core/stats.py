"""One statistics object per run: every counter, and one timer per stage.

The policy and the engine write into the same ``SharingStats``: the policy counts the blocks it
saw, its Stage-1 queries and its matches; the scheduler side counts shares, frees, dropped
decisions and the remap; the workers' Stage-2 time is added when their results come back.

Timers (seconds, summed over the run), one per stage:

* ``stage1_s``: step splitting and the Stage-1 search (scheduler process, in ``schedule()``);
* ``stage2_s``: KV gather and distances (workers, before the forward);
* ``remap_s``: decisions, pins, remaps and frees (scheduler process, after the step).

``report`` turns the totals into the run report (per-step times need the engine's step count,
which ``memshare.engine.stats.StepStats`` keeps for every policy, plain vLLM included).
``counters`` is what vLLM's Prometheus endpoint exports (``memshare.engine.metrics``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class SharingStats:
    """Running totals for one run.

    ``full_blocks``: full output blocks the policy saw (the denominator of the affected
    ratio); ``shared_blocks``: blocks the engine really remapped; ``freed_blocks``: blocks a
    share returned to the free pool (a block a pin still holds counts when the pin lets go).
    """

    full_blocks: int = 0
    stage1_queries: int = 0
    stage1_candidates: int = 0
    stage2_queries: int = 0
    stage2_candidates: int = 0
    matches: int = 0
    shared_blocks: int = 0
    freed_blocks: int = 0
    dropped_stale: int = 0  # a match whose query block changed hands before the decision
    prefix_caching_stopped: int = 0  # requests whose hashing stopped at their first share
    # Memory-time saved: for each share, the engine steps its freed block stayed free while its
    # request still ran (added when the request finishes or is preempted).
    block_steps_freed: int = 0
    # The same over every eligible output block from the step it became eligible (share delay
    # applied, whatever the policy): what sharing all of them at once would free.
    eligible_block_steps: int = 0
    stage1_s: float = 0.0
    stage2_s: float = 0.0
    remap_s: float = 0.0

    @property
    def affected_ratio(self) -> float:
        return self.shared_blocks / self.full_blocks if self.full_blocks else 0.0

    def add_stage2(self, num_queries: int, num_candidates: int, seconds: float) -> None:
        """One batch of Stage-2 work (called by whoever runs Stage 2)."""
        self.stage2_queries += num_queries
        self.stage2_candidates += num_candidates
        self.stage2_s += seconds

    def counters(self) -> dict[str, float]:
        """Every total (monotone over a run), by field name."""
        return {name: getattr(self, name) for name in FIELDS}

    def to_dict(self) -> dict[str, float]:
        return {**self.counters(), "affected_ratio": self.affected_ratio}

    def report(self, engine_steps: int) -> dict[str, float]:
        """The run report's sharing part: counts, the affected ratio and ms per engine step."""
        steps = max(engine_steps, 1)
        return {
            "affected_ratio": self.affected_ratio,
            "full_blocks": self.full_blocks,
            "shared_blocks": self.shared_blocks,
            "freed_blocks": self.freed_blocks,
            "stage1_candidates": self.stage1_candidates,
            "stage2_candidates": self.stage2_candidates,
            "matches": self.matches,
            "dropped_stale": self.dropped_stale,
            "prefix_caching_stopped": self.prefix_caching_stopped,
            "block_steps_freed": self.block_steps_freed,
            "eligible_block_steps": self.eligible_block_steps,
            "stage1_ms_per_step": 1e3 * self.stage1_s / steps,
            "stage2_ms_per_step": 1e3 * self.stage2_s / steps,
            "remap_ms_per_step": 1e3 * self.remap_s / steps,
        }


FIELDS = tuple(f.name for f in dataclasses.fields(SharingStats))
