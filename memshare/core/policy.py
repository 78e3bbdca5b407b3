"""The small interface an engine drives: the contract between the algorithm and vLLM.

The engine (``memshare.engine``) calls, per running request:

1. ``add_request(req_id, prompt_token_ids)`` once when the request starts;
2. after every engine step, ``on_tokens(req_id, token_ids, num_full_blocks)`` with the
   request's whole token list (prompt + output) and the number of leading blocks
   whose KV is complete and will never be written again. The policy returns one
   ``Proposal`` per block it wants to share now (at most one per newly eligible block);
3. for proposals with ``needs_distance`` it measures the Stage-2 distance between the
   query block and each candidate (where the KV lives) and calls
   ``decide(proposal, distances)``, which returns the chosen candidate or ``None``;
   proposals without ``needs_distance`` (random sharing) are shared with
   ``proposal.candidates[0]`` directly;
4. ``on_shared(query, target)`` when the engine really remapped ``query`` to the
   physical block behind ``target`` (it may drop a decision that went stale);
   ``cancel(proposal)`` when the engine will not measure a proposal after all (its blocks are gone);
5. ``remove_request(req_id)`` on finish, abort or preemption (a preempted request
   restarts from scratch and is added again).

Blocks are named logically (``BlockRef``: request id + index in that request's block
table, prompt blocks included), so the same policy works in any engine; the engine
maps them to physical block ids and drops references that are no longer valid.
A block's token positions are ``block_index * block_size + range(block_size)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from memshare.core.config import MemShareConfig
from memshare.core.stats import SharingStats


class BlockRef(NamedTuple):
    """A block by request and index in that request's block table (a tuple: cheap to make, and
    Stage 1 makes one per candidate)."""

    req_id: str
    block_index: int


@dataclass(frozen=True, slots=True)
class Proposal:
    """A block the policy wants to share, with where it could point to.

    ``candidates`` are ordered best first (Stage-1 score). ``needs_distance`` tells the
    engine to run Stage 2 before calling ``decide``.
    """

    query: BlockRef
    candidates: tuple[BlockRef, ...]
    needs_distance: bool


class SharingPolicy(ABC):
    """Base class of ``dense``, ``random`` and ``memshare``."""

    name: str = "base"

    def __init__(self, config: MemShareConfig) -> None:
        self.config = config
        self.stats = SharingStats()

    @abstractmethod
    def add_request(self, req_id: str, prompt_token_ids: Sequence[int]) -> None: ...

    @abstractmethod
    def on_tokens(self, req_id: str, token_ids: Sequence[int], num_full_blocks: int) -> list[Proposal]: ...

    def decide(self, proposal: Proposal, distances: Sequence[float]) -> BlockRef | None:
        """Pick the closest candidate at or below ``block_threshold`` (None: no match)."""
        best, best_d = None, None
        for cand, d in zip(proposal.candidates, distances):
            if d <= self.config.block_threshold and (best_d is None or d < best_d):
                best, best_d = cand, d
        return best

    def cancel(self, proposal: Proposal) -> None:
        """The engine will not measure ``proposal``: release whatever the policy holds for it."""
        # NOTE: no candidate passes an infinite distance, so this is a decision without a match.
        self.decide(proposal, [math.inf] * len(proposal.candidates))

    def on_shared(self, query: BlockRef, target: BlockRef) -> None:
        self.stats.shared_blocks += 1

    @abstractmethod
    def remove_request(self, req_id: str) -> None: ...
