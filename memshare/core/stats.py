"""Counters every policy keeps; the engine adds its own (freed blocks, timings)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class SharingStats:
    """Running totals for one run.

    ``full_blocks``: full output blocks the policy saw (the denominator of the
    affected ratio); ``shared_blocks``: blocks the engine really remapped.
    """

    full_blocks: int = 0
    stage1_queries: int = 0
    stage1_candidates: int = 0
    stage2_queries: int = 0
    stage2_candidates: int = 0
    matches: int = 0
    shared_blocks: int = 0
    stage1_s: float = 0.0
    stage2_s: float = 0.0

    @property
    def affected_ratio(self) -> float:
        return self.shared_blocks / self.full_blocks if self.full_blocks else 0.0

    def to_dict(self) -> dict[str, float]:
        d = dataclasses.asdict(self)
        d["affected_ratio"] = self.affected_ratio
        return d
