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

Cost per query: one index lookup (``encoders``) plus a few vectorized passes over the blocks
of the searched requests; nothing loops in Python over past steps or blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from memshare.core.config import MemShareConfig
from memshare.core.encoders import Grow, StepIndex
from memshare.core.policy import BlockRef
from memshare.core.steps import BlockDone, token_counts

POOL_PER_CANDIDATE = 32
_MIN_DEAD_TO_COMPACT = 64
_MINUS_ONE = np.array([-1.0])


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
    # block -> (its step, the step's bag so far = the query, the block's own token counts, what
    # the query gained since the previous block's: ``BlockDone.added``)
    pending: dict[int, tuple[int, dict[int, int], dict[int, int], dict[int, int] | None]] = field(
        default_factory=dict)


def bag_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bag-of-words dot products of token rows: ``a (n, T)``, ``b (T,)`` -> ``(n,)``.

    ``sum_t count_a(t) * count_b(t)`` = the sum, over the tokens of a row, of their count in ``b``.
    """
    uniq, counts = np.unique(b, return_counts=True)  # (k,)
    idx = np.minimum(np.searchsorted(uniq, a), len(uniq) - 1)  # (n, T)
    return np.where(uniq[idx] == a, counts[idx], 0).sum(axis=1)  # (n,)


def most_similar(pool: np.ndarray, step_sim: np.ndarray, cap: int) -> np.ndarray:
    """The ``cap`` blocks of ``pool`` (ascending positions) with the most similar steps, the newest
    on ties (as a set: the order is left to ``top_k``). Needs ``pool.size > cap``."""
    kth = np.partition(step_sim, step_sim.size - cap)[step_sim.size - cap]  # the cap-th highest similarity
    above = pool[step_sim > kth]  # fewer than cap
    return np.concatenate([above, pool[step_sim == kth][above.size - cap:]])  # + the newest tied ones


def top_k(pool: np.ndarray, block_cos: np.ndarray, step_sim: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``pool`` by block cosine, then step similarity, then recency (higher
    position), best first: ``pool[lexsort((-pool, -step_sim, -block_cos))[:k]]``, sorting only
    the blocks tied with or above the k-th best cosine."""
    if pool.size > 2 * k:
        kth = np.partition(block_cos, pool.size - k)[pool.size - k]  # the k-th best cosine
        keep = (block_cos >= kth).nonzero()[0]
        pool, block_cos, step_sim = pool[keep], block_cos[keep], step_sim[keep]
    # Positions are distinct, so the order is strict: descending is ascending reversed.
    return pool[np.lexsort((pool, step_sim, block_cos))[::-1][:k]]


class _CountTable:
    """``bag_dot`` through a dense token id -> count table, set and cleared around each query.

    One fancy-index pass over the candidate rows instead of a sort and a binary search; the
    table grows with the largest token id seen. Negative ids (never produced by a tokenizer)
    switch it off for good, and ``bag_dot`` takes over.
    """

    def __init__(self) -> None:
        self.table: np.ndarray | None = np.zeros(1024, dtype=np.int32)

    def see(self, tokens) -> None:
        if self.table is None:
            return
        if min(tokens) < 0:
            self.table = None
        elif (top := max(tokens)) >= len(self.table):
            self.table = np.zeros(max(top + 1, 2 * len(self.table)), dtype=np.int32)

    def dots(self, rows: np.ndarray, query: np.ndarray, counts: dict[int, int] | None = None) -> np.ndarray:
        """Same as ``bag_dot(rows, query)``: ``(n, T)``, ``(T,)`` -> ``(n,)``; ``counts``: the query
        row's token counts when the caller has them already."""
        t = self.table
        if t is None:
            return bag_dot(rows, query)
        if counts is None:
            counts = token_counts(query.tolist())
        keys = list(counts)
        t[keys] = list(counts.values())
        out = np.add.reduce(t[rows], axis=1)
        t[keys] = 0
        return out


class Stage1:
    """Per-policy Stage-1 state: step indexes and blocks of all running requests.

    Args:
        config: the policy settings (thresholds, caps, ``cross_request``).
        new_index: makes an empty ``StepIndex``: one per request or, with
            ``cross_request``, one shared by all requests.
    """

    def __init__(self, config: MemShareConfig, new_index: Callable[[], StepIndex]) -> None:
        self.config = config
        self._new_index = new_index
        self._shared = _Scope(new_index(), config.block_size) if config.cross_request else None
        self._reqs: dict[str, _Request] = {}
        self._owner_req: dict[int, str] = {}
        self._full_by_owner = Grow(np.int64)  # num_full_blocks, indexed by owner id
        self._table = _CountTable()

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
        row = np.asarray(block.token_ids, dtype=np.int32)  # (T,); token ids fit any tokenizer
        slot = rq.step_slot.get(block.step, -1)
        sc.owner.append(rq.owner)
        sc.block.append(block.block_index)
        sc.slot.append(slot)
        sc.tokens.append(row)
        own = block.token_counts
        sc.self_dot.append(float(sum(c * c for c in own.values())))
        self._table.see(block.token_ids)
        rq.positions.append(pos)
        if slot < 0:
            rq.open.append((pos, block.step))
        # NOTE: later blocks belong to this step or later ones (block -> step is monotone).
        for s in [s for s in rq.step_slot if s < block.step]:
            del rq.step_slot[s]
        rq.pending[block.block_index] = (block.step, block.step_counts, own, block.added)

    def candidates(self, req_id: str, block_index: int,
                   in_flight: Mapping[str, set[int]] | None = None) -> list[BlockRef]:
        """Stage-1 candidates for a committed block, best first (see the module docstring).

        Each block is queried once: its query snapshot is released here.
        """
        cfg, rq = self.config, self._reqs[req_id]
        sc = rq.scope
        step, query, own, added = rq.pending.pop(block_index)
        slot_sims = sc.index.eligible_similarities(query, owner=rq.owner, before_step=step,
                                                   others=cfg.cross_request, threshold=cfg.step_threshold,
                                                   grown=(block_index, added))
        same_step = self._same_step_positions(rq, step) if cfg.same_step else []
        if not same_step and (slot_sims.size == 0 or np.maximum.reduce(slot_sims) < 0):
            return []
        slots, owners, blocks = sc.slot.view, sc.owner.view, sc.block.view
        block_sim = np.concatenate((slot_sims, _MINUS_ONE))[slots]  # (n,); slot -1 (step not complete) reads the -1
        if same_step:
            block_sim[same_step] = 1.0  # the query's own step: similar by definition
        limit = block_index - cfg.min_gap_blocks + 1  # own blocks: at least min_gap_blocks back
        ok = block_sim >= 0
        if sc is self._shared:  # other requests' blocks: their KV must be written
            ok &= blocks < np.where(owners == rq.owner, limit, self._full_by_owner.data[np.maximum(owners, 0)])
        else:  # the request's own blocks, in order: position i holds block first_block + i
            ok[max(0, limit - rq.first_block):] = False
        for r, busy in (in_flight or {}).items():
            other = self._reqs.get(r)
            if busy and other is not None and other.scope is sc:
                for b in busy:
                    if 0 <= b - other.first_block < len(other.positions):
                        ok[other.positions[b - other.first_block]] = False
        pool = ok.nonzero()[0]
        if pool.size == 0:
            return []
        cap = POOL_PER_CANDIDATE * cfg.max_candidates
        if pool.size > cap:
            pool = most_similar(pool, block_sim[pool], cap)
        q_pos = rq.positions[block_index - rq.first_block]
        q_dot = sc.self_dot.data[q_pos]
        block_cos = (self._table.dots(sc.tokens.data[pool], sc.tokens.data[q_pos], own)
                     / np.sqrt(sc.self_dot.data[pool] * q_dot))
        best = top_k(pool, block_cos, block_sim[pool], cfg.max_candidates)
        if sc is not self._shared:
            return [BlockRef(req_id, b) for b in blocks[best].tolist()]
        return [BlockRef(self._owner_req[o], b) for o, b in zip(owners[best].tolist(), blocks[best].tolist())]

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
