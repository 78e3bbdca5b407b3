"""Stage 1 of MemShare: cheap text-level search for blocks worth a KV comparison.

For a new full output block ``q`` of request ``r`` (arXiv 2507.21433, Sec. 3):

1. Its *query* is the bag of words of ``q``'s step (``memshare.core.steps``: majority rule)
   over the step's tokens up to ``q``'s last token.
2. Similar steps: cosine >= ``step_threshold`` (``memshare.core.encoders``) among the
   complete steps of ``r`` that come before ``q``'s step and, with ``cross_request``, all
   complete steps of the other running requests. ``q``'s own step is searched only with
   ``same_step`` (its earlier blocks count as similarity 1, complete or not).
3. Their blocks form the pool, minus blocks in flight as queries, same-request blocks less
   than ``min_gap_blocks`` before ``q`` and other requests' blocks whose KV is not written
   yet. A pool larger than ``POOL_PER_CANDIDATE * max_candidates`` keeps the blocks of the
   most similar steps (newest first on ties).
4. Ranking: the block's own bag-of-words cosine with ``q``'s tokens (the text signal that
   tracks the KV distance best; token ids whatever the step encoder), then its step's
   similarity, then recency; the first ``max_candidates`` are returned, best first.

Cost per query: one index lookup (``encoders``) plus one compiled pass over the blocks of the
searched requests (``kernels.rank_blocks``); nothing loops in Python over past steps or blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from memshare.core.config import MemShareConfig
from memshare.core.encoders import Grow, StepIndex
from memshare.core.kernels import rank_blocks, warm_up
from memshare.core.policy import BlockRef
from memshare.core.steps import BlockDone

POOL_PER_CANDIDATE = 32
_MIN_DEAD_TO_COMPACT = 64


@dataclass(slots=True)
class _Scope:
    """A step index plus the output blocks of the requests it holds, in commit order.

    A block's position in these arrays is its recency; ``slot`` is the index slot of the
    block's step, -1 until that step is complete (or once the request is removed).
    """

    index: StepIndex
    block_size: int
    owner: Grow = field(init=False)  # (n,) owner id, -1 once removed
    block: Grow = field(init=False)  # (n,) block index in the owner's block table
    slot: Grow = field(init=False)  # (n,)
    tokens: Grow = field(init=False)  # (n, block_size) token ids
    self_dot: Grow = field(init=False)  # (n,) squared bag-of-words norm
    num_dead: int = 0

    def __post_init__(self) -> None:
        self.owner, self.block, self.slot = Grow(np.int64), Grow(np.int64), Grow(np.int64)
        self.tokens = Grow(np.int32, width=self.block_size)
        self.self_dot = Grow(np.float64)


@dataclass(slots=True)
class _Request:
    owner: int
    scope: _Scope
    first_block: int
    positions: list[int] = field(default_factory=list)  # scope position of block first_block + i
    open: list[tuple[int, int]] = field(default_factory=list)  # (position, step): step not complete
    step_slot: dict[int, int] = field(default_factory=dict)  # slots of recent complete steps
    # block -> (its step, the step's bag so far = the query, what the query gained since the
    # previous block's: ``BlockDone.added``)
    pending: dict[int, tuple[int, dict[int, int], dict[int, int] | None]] = field(
        default_factory=dict)


class Stage1:
    """Per-policy Stage-1 state: step indexes and blocks of all running requests.

    Args:
        config: the policy settings (thresholds, caps, ``cross_request``).
        new_index: makes an empty ``StepIndex``: one per request or, with
            ``cross_request``, one shared by all requests.
    """

    def __init__(self, config: MemShareConfig, new_index: Callable[[], StepIndex]) -> None:
        warm_up()
        self.config = config
        self._new_index = new_index
        self._shared = _Scope(new_index(), config.block_size) if config.cross_request else None
        self._reqs: dict[str, _Request] = {}
        self._owner_req: dict[int, str] = {}
        self._full_by_owner = Grow(np.int64)  # num_full_blocks, indexed by owner id
        self._table = np.zeros(1024, dtype=np.int32)  # token id -> count: scratch for ``rank_blocks``

    def __contains__(self, req_id: str) -> bool:
        return req_id in self._reqs

    def add_request(self, req_id: str, first_block: int) -> None:
        if req_id in self._reqs:
            raise ValueError(f"request {req_id!r} is already known to Stage 1")
        owner = self._full_by_owner.n
        self._full_by_owner.append(0)
        scope = self._shared or _Scope(self._new_index(), self.config.block_size)
        self._reqs[req_id] = _Request(owner, scope, first_block)
        self._owner_req[owner] = req_id

    def remove_request(self, req_id: str) -> None:
        """Forget a request. In a shared (cross-request) index its steps and blocks are
        marked removed at once and freed by compaction once they outnumber live ones."""
        rq = self._reqs.pop(req_id, None)
        if rq is None:
            return
        del self._owner_req[rq.owner]
        sc = rq.scope
        if sc is not self._shared:
            return  # the request's own scope goes with it
        sc.index.remove_owner(rq.owner)
        dead = sc.owner.view == rq.owner
        sc.owner.view[dead] = -1
        sc.slot.view[dead] = -1
        sc.num_dead += int(dead.sum())
        if sc.num_dead >= _MIN_DEAD_TO_COMPACT and sc.num_dead > sc.owner.n - sc.num_dead:
            self._compact(sc)

    def set_full_blocks(self, req_id: str, num_full_blocks: int) -> None:
        """How many leading blocks of the request have their KV written (engine view)."""
        self._full_by_owner.data[self._reqs[req_id].owner] = num_full_blocks

    def add_step(self, req_id: str, step: int, counts: Mapping[int, int]) -> None:
        """A complete step of the request (``StepEnd``)."""
        rq = self._reqs[req_id]
        slot = rq.scope.index.add_step(rq.owner, step, counts)
        rq.step_slot[step] = slot
        still_open = []
        for pos, s in rq.open:
            if s == step:
                rq.scope.slot.data[pos] = slot
            else:
                still_open.append((pos, s))
        rq.open = still_open

    def add_block(self, req_id: str, block: BlockDone) -> None:
        """A committed output block of the request (``BlockDone``), in order."""
        rq = self._reqs[req_id]
        if block.block_index != rq.first_block + len(rq.positions):
            raise ValueError(f"blocks must arrive in order: got {block.block_index}, "
                             f"expected {rq.first_block + len(rq.positions)}")
        sc = rq.scope
        pos = sc.owner.n
        if min(block.token_ids) < 0:
            raise ValueError(f"token ids must be >= 0, got {min(block.token_ids)}")
        row = np.asarray(block.token_ids, dtype=np.int32)  # (T,); token ids fit any tokenizer
        slot = rq.step_slot.get(block.step, -1)
        sc.owner.append(rq.owner)
        sc.block.append(block.block_index)
        sc.slot.append(slot)
        sc.tokens.append(row)
        sc.self_dot.append(float(sum(c * c for c in block.token_counts.values())))
        if (top := max(block.token_ids)) >= len(self._table):
            self._table = np.zeros(max(top + 1, 2 * len(self._table)), dtype=np.int32)
        rq.positions.append(pos)
        if slot < 0:
            rq.open.append((pos, block.step))
        # NOTE: later blocks belong to this step or later ones (block -> step is monotone).
        for s in [s for s in rq.step_slot if s < block.step]:
            del rq.step_slot[s]
        rq.pending[block.block_index] = (block.step, block.step_counts, block.added)

    def candidates(self, req_id: str, block_index: int,
                   in_flight: Mapping[str, set[int]] | None = None) -> list[BlockRef]:
        """Stage-1 candidates for a committed block, best first (see the module docstring).

        Each block is queried once: its query snapshot is released here.
        """
        cfg, rq = self.config, self._reqs[req_id]
        sc = rq.scope
        step, query, added = rq.pending.pop(block_index)
        slot_sims = sc.index.eligible_similarities(query, owner=rq.owner, before_step=step,
                                                   others=cfg.cross_request, threshold=cfg.step_threshold,
                                                   grown=(block_index, added))
        same_step = self._same_step_positions(rq, step) if cfg.same_step else []
        if not same_step and (slot_sims.size == 0 or np.maximum.reduce(slot_sims) < 0):
            return []
        busy = []  # positions of blocks in flight as queries
        for r, in_flight_blocks in (in_flight or {}).items():
            other = self._reqs.get(r)
            if in_flight_blocks and other is not None and other.scope is sc:
                busy += [other.positions[b - other.first_block] for b in in_flight_blocks
                         if 0 <= b - other.first_block < len(other.positions)]
        limit = block_index - cfg.min_gap_blocks + 1  # own blocks: at least min_gap_blocks back
        shared = sc is self._shared
        best = rank_blocks(slot_sims, sc.slot.view, np.array(same_step, dtype=np.int64),
                           np.array(busy, dtype=np.int64),
                           -1 if shared else max(0, limit - rq.first_block),  # per request: position = block - first
                           sc.owner.data, sc.block.data, rq.owner, limit, self._full_by_owner.data,
                           sc.tokens.data, sc.self_dot.data, self._table,
                           rq.positions[block_index - rq.first_block],
                           POOL_PER_CANDIDATE * cfg.max_candidates, cfg.max_candidates)
        if not shared:
            return [BlockRef(req_id, b) for b in sc.block.data[best].tolist()]
        return [BlockRef(self._owner_req[o], b)
                for o, b in zip(sc.owner.data[best].tolist(), sc.block.data[best].tolist())]

    @staticmethod
    def _same_step_positions(rq: _Request, step: int) -> list[int]:
        """Scope positions of the request's committed blocks that belong to ``step``."""
        out = [pos for pos, s in rq.open if s == step]
        slot = rq.step_slot.get(step)
        if slot is not None:
            out += np.flatnonzero((rq.scope.slot.view == slot) & (rq.scope.owner.view == rq.owner)).tolist()
        return out

    def num_pending(self, req_id: str) -> int:
        return len(self._reqs[req_id].pending)

    def _compact(self, sc: _Scope) -> None:
        """Free removed requests' steps and blocks of a shared scope (renumbers both)."""
        slot_map = sc.index.compact()
        alive = sc.owner.view >= 0
        pos_map = np.where(alive, np.cumsum(alive) - 1, -1)
        for g in (sc.owner, sc.block, sc.slot, sc.tokens, sc.self_dot):
            g.keep(alive)
        slots = sc.slot.view
        slots[slots >= 0] = slot_map[slots[slots >= 0]]
        sc.num_dead = 0
        for rq in self._reqs.values():
            if rq.scope is sc:
                rq.positions = pos_map[rq.positions].tolist()
                rq.open = [(int(pos_map[p]), s) for p, s in rq.open]
                rq.step_slot = {s: int(slot_map[v]) for s, v in rq.step_slot.items()}


def cosine(a: Mapping[int, int], b: Mapping[int, int]) -> float:
    """Bag-of-words cosine of two count maps (reference for tests and tools)."""
    dot = sum(c * b.get(t, 0) for t, c in a.items())
    na = math.sqrt(sum(c * c for c in a.values()))
    nb = math.sqrt(sum(c * c for c in b.values()))
    return dot / (na * nb) if na and nb else 0.0
