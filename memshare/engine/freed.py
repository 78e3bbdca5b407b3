"""Freed memory over time: how many block-steps a request's shares kept free.

A share frees one block (``BlockPins`` counts it in ``freed_blocks``). From the step of the share
until its request is dropped (finish or preemption: vLLM then frees the whole table) that block
is free for others, so the run's ``block_steps_freed`` grows by one per step per live share:
the memory a share saved, weighted by how long it saved it. One ``BlockStepsSince`` per request.

The same sum over *eligible* blocks (``eligible_block_steps``: every output block from the step it
could first be shared under the share delay) is what sharing every eligible block at once would
free: ``block_steps_freed / eligible_block_steps`` is the rate at which a random policy frees as
much memory-time (``memshare bench --match-random freed``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BlockStepsSince:
    """Blocks of one request that count block-steps until it is dropped: its shares' freed blocks,
    or its eligible blocks."""

    blocks: int = 0
    step_sum: int = 0  # sum of the steps the blocks started counting at

    def add(self, step: int, n: int = 1) -> None:
        """``n`` blocks start counting at ``step``."""
        self.blocks += n
        self.step_sum += n * step

    def close(self, step: int) -> int:
        """The request is dropped at ``step``: the block-steps its blocks counted; starts over."""
        block_steps = self.blocks * step - self.step_sum
        self.blocks = self.step_sum = 0
        return block_steps
