"""``random``: the paper's random-sharing baseline (arXiv 2507.21433, Sec. 4).

Each newly eligible block draws once: with probability ``random_rate`` (a seeded RNG) it
is shared with one uniformly chosen earlier full output block of the same request at least
``min_gap_blocks`` back or, with ``cross_request``, any full output block of any running
request. No distance is measured (``needs_distance=False``).

So that the ratio of proposals to eligible blocks tracks ``random_rate`` (and a run can
match another run's affected ratio), a hit on a block that has no possible target (e.g. a
request's first output block) is owed and paid by the next block that has one (at most
``MAX_OWED`` hits are carried).
"""

from __future__ import annotations

import random

from memshare.core.config import MemShareConfig
from memshare.core.policies.common import BlockPolicy, RequestState
from memshare.core.policy import BlockRef, Proposal

MAX_OWED = 64
_TRIES = 4


class RandomPolicy(BlockPolicy):
    name = "random"

    def __init__(self, config: MemShareConfig, *, vocab=None, embedding=None) -> None:
        super().__init__(config)
        self._rng = random.Random(config.seed)
        self._owed = 0

    def propose(self, req_id: str, req: RequestState, block: int) -> Proposal | None:
        if self._rng.random() < self.config.random_rate:
            self._owed = min(self._owed + 1, MAX_OWED)
        if self._owed == 0:
            return None
        target = self._sample_target(req_id, req, block)
        if target is None:
            return None
        self._owed -= 1
        return Proposal(BlockRef(req_id, block), (target,), needs_distance=False)

    def _sample_target(self, req_id: str, req: RequestState, block: int) -> BlockRef | None:
        # (request, first block, number of blocks) ranges a target is drawn from, uniformly.
        ranges = [(req_id, req.first_block, block - self.config.min_gap_blocks + 1 - req.first_block)]
        if self.config.cross_request:
            ranges += [(r, s.first_block, s.num_full_blocks - s.first_block)
                       for r, s in self._reqs.items() if r != req_id]
        ranges = [r for r in ranges if r[2] > 0]
        total = sum(n for _, _, n in ranges)
        if total == 0:
            return None
        for _ in range(_TRIES):
            k = self._rng.randrange(total)
            for r, first, n in ranges:  # noqa: B007 (the loop stops at the drawn range; used below)
                if k < n:
                    break
                k -= n
            if first + k not in self._in_flight.get(r, ()):
                return BlockRef(r, first + k)
        return None
