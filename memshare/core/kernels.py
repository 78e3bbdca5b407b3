"""Compiled inner loops of Stage 1 (numba), one call per query block.

At 256 running requests a GPU engine step makes about 16 new full blocks, and each is a Stage-1
query inside ``schedule()``. Written with numpy, a query is some 50 small array calls whose
fixed cost, not their arithmetic, dominates; here each part is one compiled call. vLLM's own
n-gram proposer runs on the scheduler's host the same way (numba ``njit``).

Every function is exact: integer counts are summed exactly in float64, and the float formulas
are the ones the module docstrings of ``stage1`` and ``encoders`` define, in the same order, so
results equal the numpy definitions bit for bit (``tests/core/test_core_kernels.py``).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import njit

# Identical steps must pass step_threshold = 1.0 despite float rounding.
SIM_TOLERANCE = 1e-9


def _compiled(fn):
    """``njit`` cached on disk (next to this file, else in the user's cache or ``NUMBA_CACHE_DIR``);
    where no location is writable, compiled once per process instead (about 10 s)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_compiled
def add_pair_counts(dot: np.ndarray, pairs: np.ndarray, times: int) -> None:
    """``dot[slot] += times * count`` for each packed int32 ``(slot, count)`` pair of ``pairs``."""
    for i in range(0, pairs.shape[0], 2):
        dot[pairs[i]] += times * pairs[i + 1]


@_compiled
def prefix_similarities(dot: np.ndarray, norms: np.ndarray, query_norm: float, steps: np.ndarray,
                        before_step: int, threshold: float) -> np.ndarray:
    """Eligible cosines of one owner's steps (``steps``: ascending step numbers): (n,).

    ``min(dot / (query_norm * norm), 1)`` (0 where the denominator is 0) for the steps before
    ``before_step`` at or above ``threshold`` (less ``SIM_TOLERANCE``), -1 elsewhere.
    """
    n = dot.shape[0]
    end = np.searchsorted(steps, before_step)
    out = np.full(n, -1.0)
    cut = threshold - SIM_TOLERANCE
    for i in range(min(end, n)):
        den = query_norm * norms[i]
        s = min(dot[i] / den, 1.0) if den > 0 else 0.0
        if s >= cut:
            out[i] = s
    return out


@_compiled
def rank_blocks(slot_sims: np.ndarray, slots: np.ndarray, same_step: np.ndarray, busy: np.ndarray,
                end: int, owners: np.ndarray, blocks: np.ndarray, own: int, limit: int,
                full_by_owner: np.ndarray, tokens: np.ndarray, self_dot: np.ndarray, table: np.ndarray,
                q_pos: int, cap: int, k: int) -> np.ndarray:
    """Stage-1 pooling and ranking of one query block (``stage1`` module docstring, 3 and 4).

    Args:
        slot_sims: (num_slots,) eligible step similarities, -1 where not eligible.
        slots: (n,) the step slot of each block of the scope, -1 if its step is not complete.
        same_step: positions of the query's own step (similarity 1); busy: positions in flight.
        end: a per-request scope's first position too recent to share (``owners``, ``blocks``,
            ``own``, ``limit`` and ``full_by_owner`` are then not read); -1 for a shared scope,
            where block ``p`` qualifies if ``blocks[p] < limit`` (owner ``own``) or
            ``blocks[p] < full_by_owner[owners[p]]``.
        tokens: (>= n, T) int32 token rows; self_dot: their squared bag-of-words norms.
        table: int32 zeros longer than the largest token id (used as scratch, left zeroed).
        q_pos: the query block's position; cap: pool size kept (most similar steps, newest on
            ties); k: blocks returned.
    Returns:
        Up to ``k`` positions, best first: block cosine with the query, then step similarity,
        then recency.
    """
    n = slots.shape[0]
    stop = n if end < 0 else min(end, n)
    sim = np.empty(stop)
    for p in range(stop):
        s = slots[p]
        sim[p] = slot_sims[s] if s >= 0 else -1.0
    for p in same_step:
        if p < stop:
            sim[p] = 1.0
    for p in busy:
        if p < stop:
            sim[p] = -1.0
    pool = np.empty(stop, dtype=np.int64)
    size = 0
    for p in range(stop):
        if sim[p] < 0:
            continue
        if end < 0:
            o = owners[p]
            if blocks[p] >= (limit if o == own else full_by_owner[max(o, 0)]):
                continue
        pool[size] = p
        size += 1
    if size == 0:
        return pool[:0]
    pool = pool[:size]
    if size > cap:  # keep the cap most similar steps' blocks, the newest on ties
        kth = np.partition(sim[pool], size - cap)[size - cap]
        kept = np.empty(cap, dtype=np.int64)
        m = 0
        for p in pool:
            if sim[p] > kth:
                kept[m] = p
                m += 1
        ties = cap - m
        for i in range(size - 1, -1, -1):
            if ties == 0:
                break
            if sim[pool[i]] == kth:
                ties -= 1
                kept[m + ties] = pool[i]
        pool = kept
    width = tokens.shape[1]
    for j in range(width):
        table[tokens[q_pos, j]] += 1
    q_dot = self_dot[q_pos]
    best = np.empty(k, dtype=np.int64)
    best_cos = np.empty(k)
    got = 0
    for p in pool:
        dot = 0
        for j in range(width):
            dot += table[tokens[p, j]]
        c = dot / math.sqrt(self_dot[p] * q_dot)
        # insert (c, sim, p) into the descending top list
        i = got
        while i > 0 and _before(c, sim[p], p, best_cos[i - 1], sim[best[i - 1]], best[i - 1]):
            i -= 1
        if i >= k:
            continue
        j = min(got, k - 1)
        while j > i:
            best[j], best_cos[j] = best[j - 1], best_cos[j - 1]
            j -= 1
        best[i], best_cos[i] = p, c
        got = min(got + 1, k)
    for j in range(width):
        table[tokens[q_pos, j]] = 0
    return best[:got]


@njit(nogil=True, inline="always")
def _before(c1: float, s1: float, p1: int, c2: float, s2: float, p2: int) -> bool:
    """(c1, s1, p1) ranks before (c2, s2, p2): higher cosine, then similarity, then position."""
    if c1 != c2:
        return c1 > c2
    if s1 != s2:
        return s1 > s2
    return p1 > p2


@cache
def warm_up() -> None:
    """Compile (or load from numba's cache, ~0.5 s) every kernel now, not at the first query."""
    none, one = np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for buf in (bytes(8), bytearray(8)):  # joined postings are read-only, a single one is not
        add_pair_counts(np.zeros(1), np.frombuffer(buf, dtype=np.int32), 1)
    prefix_similarities(np.zeros(1), np.ones(1), 1.0, np.zeros(1, dtype=np.int64), 1, 0.5)
    rank_blocks(np.zeros(1), one, none, none, 1, none, none, 0, 1, none, np.zeros((1, 1), dtype=np.int32),
                np.ones(1), np.zeros(1, dtype=np.int32), 0, 1, 1)
