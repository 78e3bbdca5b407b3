"""Bookkeeping every block-sharing policy shares: requests, eligibility, in-flight queries.

Eligibility (one rule for all policies, so their affected ratios are comparable): block
``b`` of a request is *eligible* once

* it holds output tokens only (``b * block_size >= prompt_len``),
* its KV is complete and ``share_delay_blocks`` newer blocks are too
  (``b < num_full_blocks - share_delay_blocks``), and
* the policy has seen all its tokens (``ready_blocks``; MemShare waits until the step
  splitter committed them).

The engine's ``eligible_block_steps`` counts blocks by the first two rules only
(``SchedulerSide._count_eligible``). Each eligible block is counted once in
``stats.full_blocks`` and offered to ``propose`` once. In flight (kept simple): the query blocks a request's latest ``on_tokens`` proposed
stay in flight until ``decide``/``on_shared`` sees them or that request's next
``on_tokens`` call; a block in flight is never offered as a candidate. A candidate may
itself be proposed later, and a block may be the candidate of several queries.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from memshare.core.config import MemShareConfig
from memshare.core.policy import BlockRef, Proposal, SharingPolicy


@dataclass(slots=True)
class RequestState:
    prompt_len: int
    first_block: int  # first block made only of output tokens
    next_block: int  # next block to test for eligibility
    prompt_key: int = 0  # equal for requests with the same prompt (siblings of --samples n)
    num_full_blocks: int = 0


def first_output_block(prompt_len: int, block_size: int) -> int:
    """The first block made only of output tokens (blocks before it hold prompt tokens)."""
    return -(-prompt_len // block_size)


class BlockPolicy(SharingPolicy):
    """Base of the concrete policies: subclasses implement ``propose``."""

    def __init__(self, config: MemShareConfig, *, vocab=None, embedding=None) -> None:
        if self.name != config.policy:
            raise ValueError(f"{type(self).__name__} needs config.policy={self.name!r}, got {config.policy!r}")
        super().__init__(config)
        self._reqs: dict[str, RequestState] = {}
        self._in_flight: dict[str, set[int]] = {}
        self._siblings: dict[int, list[str]] = {}  # prompt key -> requests, in arrival order

    @property
    def num_requests(self) -> int:
        return len(self._reqs)

    def add_request(self, req_id: str, prompt_token_ids: Sequence[int]) -> None:
        if req_id in self._reqs:
            raise ValueError(f"request {req_id!r} was added twice (remove it first)")
        prompt_len = len(prompt_token_ids)
        first = first_output_block(prompt_len, self.config.block_size)
        key = hash(tuple(prompt_token_ids))
        self._reqs[req_id] = RequestState(prompt_len, first, first, key)
        self._siblings.setdefault(key, []).append(req_id)
        self._on_add(req_id, prompt_len, first)

    def on_tokens(self, req_id: str, token_ids: Sequence[int], num_full_blocks: int) -> list[Proposal]:
        t0 = time.perf_counter()
        req = self._request(req_id)
        self._in_flight.pop(req_id, None)  # the engine handled this request's last proposals
        req.num_full_blocks = num_full_blocks
        ready = self._observe(req_id, req, token_ids)
        limit = min(num_full_blocks - self.config.share_delay_blocks, ready)
        proposals = []
        while req.next_block < limit:
            block = req.next_block
            req.next_block += 1
            self.stats.full_blocks += 1
            proposal = self.propose(req_id, req, block)
            if proposal is not None:
                proposals.append(proposal)
                self._in_flight.setdefault(req_id, set()).add(block)
        self.stats.stage1_s += time.perf_counter() - t0
        return proposals

    def decide(self, proposal: Proposal, distances: Sequence[float]) -> BlockRef | None:
        if hasattr(distances, "tolist"):
            distances = distances.tolist()
        if len(distances) != len(proposal.candidates):
            raise ValueError(f"got {len(distances)} distances for {len(proposal.candidates)} candidates")
        self._release(proposal.query)
        target = super().decide(proposal, distances)
        if target is not None:
            self.stats.matches += 1
        return target

    def on_shared(self, query: BlockRef, target: BlockRef) -> None:
        super().on_shared(query, target)
        self._release(query)

    def remove_request(self, req_id: str) -> None:
        req = self._reqs.pop(req_id, None)
        if req is not None:
            self._in_flight.pop(req_id, None)
            group = self._siblings[req.prompt_key]
            group.remove(req_id)
            if not group:
                del self._siblings[req.prompt_key]
            self._on_remove(req_id)

    def sibling_blocks(self, req_id: str, block: int) -> list[BlockRef]:
        """Block ``block`` of each earlier request with the same prompt whose KV there is written.

        NOTE: only *earlier* siblings (arrival order), so two queries never point at each other
        and siblings that fill a block in the same step all point at the first one's block.
        """
        out = []
        for other in self._siblings[self._reqs[req_id].prompt_key]:
            if other == req_id:
                break
            if self._reqs[other].num_full_blocks > block:
                out.append(BlockRef(other, block))
        return out

    @abstractmethod
    def propose(self, req_id: str, req: RequestState, block: int) -> Proposal | None:
        """A proposal for newly eligible ``block`` of ``req_id``, or None."""

    def _observe(self, req_id: str, req: RequestState, token_ids: Sequence[int]) -> int:
        """Take in the request's tokens; return how many leading blocks the policy has seen."""
        return len(token_ids) // self.config.block_size

    def _on_add(self, req_id: str, prompt_len: int, first_block: int) -> None:
        pass

    def _on_remove(self, req_id: str) -> None:
        pass

    def _request(self, req_id: str) -> RequestState:
        try:
            return self._reqs[req_id]
        except KeyError:
            raise ValueError(f"unknown request {req_id!r} (add_request first)") from None

    def _release(self, query: BlockRef) -> None:
        busy = self._in_flight.get(query.req_id)
        if busy is not None:
            busy.discard(query.block_index)
