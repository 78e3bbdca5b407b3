"""Pins: blocks held alive between a Stage-2 proposal and its decision, and the freed-block count.

A query block and its candidates are pinned (ref count +1 through the pool's own verb) when a
Stage-2 job is sent, so none of them can be reallocated and overwritten before the decision;
every pin is released on every path. A block whose owner shared it away while a pin still held
it is *released*: it counts as freed only when the last pin lets go (unless a share took it).
"""

from __future__ import annotations

from typing import Any

from memshare.core.stats import SharingStats
from memshare.engine.adapter import scheduler as vllm_scheduler


class BlockPins:
    """Counts each freed block in ``stats.freed_blocks`` (the run's one stats object)."""

    def __init__(self, block_pool: Any, stats: SharingStats) -> None:
        self._pool = block_pool
        self._count: dict[int, int] = {}  # block_id -> pins held
        self._released: set[int] = set()  # shared-away blocks kept alive only by pins
        self.stats = stats

    def __len__(self) -> int:
        return len(self._count)

    def pin(self, blocks: list[Any]) -> None:
        vllm_scheduler.add_refs(self._pool, blocks)
        count = self._count
        for bid in vllm_scheduler.block_ids(blocks):
            count[bid] = count.get(bid, 0) + 1

    def unpin(self, blocks: list[Any]) -> None:
        count, ids = self._count, vllm_scheduler.block_ids(blocks)
        for bid in ids:
            left = count[bid] - 1
            if left:
                count[bid] = left
            else:
                del count[bid]
        vllm_scheduler.drop_refs(self._pool, blocks)
        if self._released:
            for b, bid in zip(blocks, ids):
                if bid in self._released and vllm_scheduler.ref_count(b) == 0:
                    self._released.discard(bid)
                    self.stats.freed_blocks += 1

    def sole_owner(self, block: Any) -> bool:
        """Only its request holds ``block``; every other reference is one of our pins.

        NOTE: a block pinned as another job's candidate may still be shared away: the pin
        keeps it allocated with its exact KV, and if that job picks it, it takes a real
        reference to that exact content.
        """
        return vllm_scheduler.ref_count(block) == 1 + self._count.get(vllm_scheduler.block_id(block), 0)

    def taken(self, block: Any) -> None:
        """A share now references ``block``: a released block that is re-used is not freed."""
        self._released.discard(vllm_scheduler.block_id(block))

    def dropped(self, block: Any) -> None:
        """Its request no longer references ``block`` (shared away): count it once it is free."""
        if vllm_scheduler.ref_count(block) == 0:
            self.stats.freed_blocks += 1
        else:
            self._released.add(vllm_scheduler.block_id(block))
