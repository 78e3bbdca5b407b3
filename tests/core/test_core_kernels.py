"""Stage 1's compiled kernels against plain-numpy statements of their definitions (exact)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memshare.core.kernels import SIM_TOLERANCE, add_pair_counts, prefix_similarities, rank_blocks


def reference_rank(slot_sims, slots, same_step, busy, end, owners, blocks, own, limit, full_by_owner,
                   tokens, self_dot, q_pos, cap, k):
    """The ranking of ``memshare.core.stage1`` (module docstring, 3 and 4), written plainly."""
    n = len(slots)
    sim = np.where(slots >= 0, np.concatenate([slot_sims, [-1.0]])[slots], -1.0)
    sim[list(same_step)] = 1.0
    ok = sim >= 0
    ok[list(busy)] = False
    if end >= 0:
        ok[end:] = False
    else:
        ok &= blocks[:n] < np.where(owners[:n] == own, limit, full_by_owner[np.maximum(owners[:n], 0)])
    pool = np.flatnonzero(ok)
    if len(pool) > cap:  # most similar steps first, newest first on ties
        pool = pool[np.lexsort((-pool, -sim[pool]))[:cap]]
    q = tokens[q_pos]
    dots = np.array([sum(int((q == t).sum()) for t in tokens[p]) for p in pool], dtype=np.int64)
    cos = dots / np.sqrt(self_dot[pool] * self_dot[q_pos])
    return pool[np.lexsort((-pool, -sim[pool], -cos))[:k]]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 120), width=st.integers(1, 6), vocab=st.integers(1, 12), levels=st.integers(1, 4),
       shared=st.booleans(), cap=st.integers(1, 40), k=st.integers(1, 9), seed=st.integers(0, 10_000))
def test_rank_blocks_equals_the_definition(n, width, vocab, levels, shared, cap, k, seed):
    """Few token ids and similarity levels, so that cosines and similarities tie often."""
    rng = np.random.default_rng(seed)
    num_slots = int(rng.integers(1, 10))
    slot_sims = np.where(rng.random(num_slots) < 0.3, -1.0, rng.integers(0, levels + 1, num_slots) / levels)
    slots = rng.integers(-1, num_slots, n).astype(np.int64)
    tokens = rng.integers(0, vocab, (n + 3, width)).astype(np.int32)  # storage longer than the view
    self_dot = np.array([sum(int((r == t).sum()) ** 2 for t in set(r.tolist())) for r in tokens], dtype=np.float64)
    same_step = np.unique(rng.integers(0, n, int(rng.integers(0, 3)))).astype(np.int64)
    busy = np.unique(rng.integers(0, n, int(rng.integers(0, 4)))).astype(np.int64)
    owners = rng.integers(-1, 4, n + 3).astype(np.int64)
    blocks = rng.integers(0, 50, n + 3).astype(np.int64)
    full_by_owner = rng.integers(0, 50, 4).astype(np.int64)
    end = -1 if shared else int(rng.integers(0, n + 2))
    own, limit, q_pos = int(rng.integers(0, 4)), int(rng.integers(0, 50)), int(rng.integers(0, n))
    table = np.zeros(vocab + int(rng.integers(0, 5)), dtype=np.int32)
    args = (slot_sims, slots, same_step, busy, end, owners, blocks, own, limit, full_by_owner)
    got = rank_blocks(*args, tokens, self_dot, table, q_pos, cap, k)
    assert got.tolist() == reference_rank(*args, tokens, self_dot, q_pos, cap, k).tolist()
    assert not table.any()  # scratch left zeroed


def test_rank_blocks_orders_by_cosine_then_similarity_then_recency():
    tokens = np.array([[1, 2], [1, 3], [1, 2], [4, 5], [1, 2]], dtype=np.int32)  # query: position 4
    self_dot = np.full(5, 2.0)
    slot_sims = np.array([0.5, 0.9])
    slots = np.array([0, 1, 0, 1, 0], dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    got = rank_blocks(slot_sims, slots, none, none, 4, none, none, 0, 0, none, tokens, self_dot,
                      np.zeros(8, dtype=np.int32), 4, 100, 3)
    # 0 and 2 share the query's tokens (cosine 1; same similarity: the newer first); 1 shares one
    assert got.tolist() == [2, 0, 1]
    capped = rank_blocks(slot_sims, slots, none, none, 4, none, none, 0, 0, none, tokens, self_dot,
                         np.zeros(8, dtype=np.int32), 4, 2, 3)
    assert capped.tolist() == [1, 3]  # a pool of 2 keeps slot 1's blocks (the more similar step)


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 60)), max_size=30), times=st.integers(1, 70))
def test_add_pair_counts_is_exact(pairs, times):
    dot = np.arange(10, dtype=np.float64)
    add_pair_counts(dot, np.array(pairs, dtype=np.int32).reshape(-1), times)
    expect = list(range(10))
    for slot, count in pairs:
        expect[slot] += times * count
    assert dot.tolist() == expect


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 30), before=st.integers(-1, 35), thr=st.sampled_from([0.0, 0.3, 0.8, 1.0]),
       query_norm=st.sampled_from([0.0, 1.0, 2.5]), seed=st.integers(0, 1000))
def test_prefix_similarities_equal_the_numpy_rule(n, before, thr, query_norm, seed):
    rng = np.random.default_rng(seed)
    norms = np.where(rng.random(n) < 0.1, 0.0, rng.integers(1, 9, n) ** 0.5)
    dot = np.floor(norms * query_norm * rng.random(n) * 1.2)  # some above the norm product: clamped to 1
    steps = np.sort(rng.integers(0, 30, n)).astype(np.int64)
    got = prefix_similarities(dot, norms, query_norm, steps, before, thr)
    den = query_norm * norms
    sims = np.minimum(np.divide(dot, den, out=np.zeros(n), where=den > 0), 1.0)
    ok = (np.arange(n) < np.searchsorted(steps, before)) & (sims >= thr - SIM_TOLERANCE)
    assert got.tolist() == np.where(ok, sims, -1.0).tolist()


def test_identical_steps_pass_a_threshold_of_one():
    norm = math.sqrt(3)
    got = prefix_similarities(np.array([3.0]), np.array([norm]), norm, np.array([0]), 1, 1.0)
    assert got.tolist() == [1.0]  # not -1: rounding cannot drop an identical step


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    """numba raises at decoration when no cache location is writable: compile per process then."""
    from memshare.core import kernels

    calls = []

    def fake_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return lambda fn: fn

    monkeypatch.setattr(kernels, "njit", fake_njit)
    assert kernels._compiled(abs)(-2) == 2
    assert calls == [{"cache": True, "nogil": True}, {"nogil": True}]
