"""Drive a real ``SharingPolicy`` on one request whose KV lives in a Hugging Face cache.

This is the engine's side of the policy contract (``memshare.core.policy``) on a CPU model:
after every forward pass, ``step`` calls ``on_tokens`` with the tokens so far and the number
of full blocks, measures Stage 2 with ``block_distances`` on the cache's own K/V, calls
``decide`` and, when a block is shared, overwrites it with its target (``share_block``) and
reports ``on_shared``. One request at a time; Stage-2 time goes into the policy's stats.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from memshare.analysis.kvcache import cache_block_kv, cache_length, share_block
from memshare.core.policy import SharingPolicy
from memshare.core.rope import RopeSpec
from memshare.core.stage2 import block_distances, block_positions


@dataclass(frozen=True, slots=True)
class ShareEvent:
    """Block ``query`` now holds block ``target``'s K/V from cache length ``at_token`` on."""

    query: int
    target: int
    distance: float | None  # None: the policy shares without measuring (random)
    at_token: int


class CacheSharer:
    """One request's sharing decisions applied to its cache.

    Args:
        policy: a fresh or reused policy (``make_policy``); the request is added here.
        req_id: a name unique among the policy's running requests.
        prompt_ids: the request's prompt tokens.
        rope: the model's RoPE (needed by the ``k_unrope`` distances).
    """

    def __init__(self, policy: SharingPolicy, req_id: str, prompt_ids: Sequence[int], rope: RopeSpec | None) -> None:
        self.policy = policy
        self.req_id = req_id
        self.rope = rope
        self.block_size = policy.config.block_size
        self.events: list[ShareEvent] = []
        self._num_full = 0
        policy.add_request(req_id, list(prompt_ids))

    @property
    def first_share_at(self) -> int | None:
        """Cache length when the first block was shared (later positions see shared K/V)."""
        return self.events[0].at_token if self.events else None

    def step(self, cache, token_ids: Sequence[int]) -> list[ShareEvent]:
        """Call after a forward pass; ``token_ids`` = prompt + output so far (incl. the newest)."""
        n = cache_length(cache)
        num_full = n // self.block_size
        if num_full == self._num_full:
            return []
        self._num_full = num_full
        new = []
        for proposal in self.policy.on_tokens(self.req_id, token_ids, num_full):
            q = proposal.query.block_index
            if any(c.req_id != self.req_id for c in proposal.candidates):
                raise ValueError("CacheSharer runs one request at a time (cross_request must be off)")
            cands = [c.block_index for c in proposal.candidates]
            if proposal.needs_distance:
                t0 = time.perf_counter()
                (q_k,), (q_v,) = cache_block_kv(cache, [q], self.block_size)
                c_k, c_v = cache_block_kv(cache, cands, self.block_size)
                cfg = self.policy.config
                dist = block_distances(q_k, q_v, c_k, c_v, distance=cfg.distance, metric=cfg.metric,
                                       q_pos=block_positions(q, self.block_size),
                                       c_pos=block_positions(cands, self.block_size), rope=self.rope)
                self.policy.stats.add_stage2(1, len(cands), time.perf_counter() - t0)
                target = self.policy.decide(proposal, dist)
                measured = None if target is None else float(dist[proposal.candidates.index(target)])
            else:
                target, measured = proposal.candidates[0], None
            if target is None:
                continue
            share_block(cache, q, target.block_index, self.block_size)
            self.policy.on_shared(proposal.query, target)
            new.append(ShareEvent(q, target.block_index, measured, n))
        self.events += new
        return new

    def close(self) -> None:
        self.policy.remove_request(self.req_id)
