"""Stage 1: step indexes (memshare.core.encoders) and candidate search (memshare.core.stage1)."""

from __future__ import annotations

import random
from functools import partial

import numpy as np
import pytest
from core_helpers import TEXTS, VOCAB, reasoning_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from memshare.core.config import MemShareConfig
from memshare.core.encoders import DenseStepIndex, SparseStepIndex, make_step_index
from memshare.core.stage1 import Stage1, cosine
from memshare.core.steps import BlockDone, StepEnd, StepTracker

bags = st.dictionaries(st.integers(0, 30), st.integers(1, 5), min_size=1, max_size=12)


# --- indexes ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(steps=st.lists(bags, min_size=1, max_size=12), query=bags)
def test_sparse_similarities_equal_brute_force(steps, query):
    index = SparseStepIndex()
    for i, bag in enumerate(steps):
        index.add_step(0, i, bag)
    sims = index.similarities(query)
    assert np.allclose(sims, [cosine(query, b) for b in steps], atol=1e-12)
    assert ((sims >= 0) & (sims <= 1)).all()


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.dictionaries(st.integers(0, 30), st.integers(1, 60), min_size=1, max_size=12),
                      min_size=1, max_size=12),
       query=st.dictionaries(st.integers(0, 40), st.integers(1, 60), min_size=1, max_size=12))
def test_sparse_dot_products_are_exact_for_any_count(steps, query):
    """Tokens counted once are read in one joined call, the others scaled: both give the exact integers."""
    index = SparseStepIndex()
    for i, bag in enumerate(steps):
        index.add_step(0, i, bag)
    expect = [sum(c * bag.get(t, 0) for t, c in query.items()) for bag in steps]
    dot = np.zeros(len(steps))
    index._add_dots(dot, query)
    assert dot.tolist() == expect


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(bags, min_size=1, max_size=8), query=bags)
def test_dense_similarities_are_clamped_mean_embedding_cosines(steps, query):
    emb = np.random.default_rng(0).normal(size=(31, 6)).astype(np.float32)
    index = DenseStepIndex(emb)
    for i, bag in enumerate(steps):
        index.add_step(0, i, bag)

    def mean(bag):
        return sum(c * emb[t].astype(np.float64) for t, c in bag.items()) / sum(bag.values())

    q = mean(query)
    ref = [max(0.0, float(q @ mean(b) / np.linalg.norm(q) / np.linalg.norm(mean(b)))) for b in steps]
    assert np.allclose(index.similarities(query), ref, atol=1e-5)


def test_search_filters_and_orders():
    index = SparseStepIndex()
    a, b = {1: 1, 2: 1}, {1: 1, 3: 1}
    index.add_step(0, 0, a)  # slot 0
    index.add_step(0, 1, a)  # slot 1, same text, newer
    index.add_step(0, 2, b)
    index.add_step(1, 0, a)  # another owner
    hits = index.search(a, owner=0, before_step=2, others=False, threshold=0.9)
    assert hits.steps.tolist() == [1, 0] and hits.owners.tolist() == [0, 0]  # ties: newest first
    hits = index.search(a, owner=0, before_step=3, others=True, threshold=0.0)
    assert hits.owners.tolist() == [1, 0, 0, 0] and hits.steps.tolist() == [0, 1, 0, 2]
    assert index.search(a, owner=0, before_step=1, others=False, threshold=1.0).steps.tolist() == [0]


def test_remove_owner_and_compaction_keep_other_owners_results():
    rng = random.Random(0)
    index = SparseStepIndex()
    bags_by_owner = {o: [{rng.randrange(20): rng.randint(1, 3) for _ in range(5)} for _ in range(40)]
                     for o in range(4)}
    for o, bs in bags_by_owner.items():
        for s, bag in enumerate(bs):
            index.add_step(o, s, bag)
    query = {3: 1, 5: 2}
    before = index.search(query, owner=3, before_step=99, others=True, threshold=0.1)
    for o in (0, 1, 2):
        index.remove_owner(o)
    assert len(index) == 40 and index.num_slots == 160 and index.num_dead == 120
    remap = index.compact()
    assert len(index) == index.num_slots == 40 and index.num_dead == 0
    assert remap.tolist() == [-1] * 120 + list(range(40))
    after = index.search(query, owner=3, before_step=99, others=True, threshold=0.1)
    want = [(int(s), float(x)) for o, s, x in zip(before.owners, before.steps, before.sims) if o == 3]
    assert after.owners.tolist() == [3] * len(want)
    assert list(zip(after.steps.tolist(), after.sims.tolist())) == want


def test_make_step_index():
    assert isinstance(make_step_index("tokenizer"), SparseStepIndex)
    assert isinstance(make_step_index("embedding", np.ones((3, 2), np.float32)), DenseStepIndex)
    with pytest.raises(ValueError, match="embedding matrix"):
        make_step_index("embedding")
    with pytest.raises(ValueError, match="float"):
        DenseStepIndex(np.ones(3))


# --- Stage 1 over traces ------------------------------------------------------------------

def drive(stage1: Stage1, req: str, tokens: list[int], prompt_len: int, bs: int, chunk: int | None):
    """Feed a trace (in chunks or at once); return candidates per block, queried as blocks complete."""
    tracker = StepTracker(VOCAB, prompt_len, bs)
    stage1.add_request(req, tracker.first_output_block)
    got = {}
    cuts = range(prompt_len + 1, len(tokens) + 1, chunk) if chunk else [len(tokens)]
    for cut in list(cuts) + [len(tokens)]:
        for ev in tracker.feed(tokens[:cut]):
            if isinstance(ev, StepEnd):
                stage1.add_step(req, ev.step, ev.counts)
            else:
                stage1.add_block(req, ev)
        stage1.set_full_blocks(req, cut // bs)
        for b in sorted(stage1._reqs[req].pending):
            got[b] = stage1.candidates(req, b)
    return got, tracker


def make_stage1(**kw) -> Stage1:
    cfg = MemShareConfig(**{"block_size": 8, "step_threshold": 0.5, "max_candidates": 3, **kw})
    return Stage1(cfg, partial(make_step_index, cfg.encoder))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), prompt_len=st.integers(0, 20), chunk=st.integers(1, 40),
       gap=st.integers(1, 3), thr=st.sampled_from([0.0, 0.5, 0.9]))
def test_incremental_equals_batch_and_candidates_are_valid(seed, prompt_len, chunk, gap, thr):
    rng = random.Random(seed)
    tokens = [rng.randrange(len(TEXTS)) for _ in range(prompt_len)] + reasoning_trace(rng, 12)
    bs = 8
    inc, tracker = drive(make_stage1(min_gap_blocks=gap, step_threshold=thr), "r", tokens, prompt_len, bs, chunk)
    batch, _ = drive(make_stage1(min_gap_blocks=gap, step_threshold=thr), "r", tokens, prompt_len, bs, None)
    assert inc == batch
    # Rebuild every block's step and query to check each candidate against the definition.
    ev = StepTracker(VOCAB, prompt_len, bs).feed(tokens)
    blocks = {e.block_index: e for e in ev if isinstance(e, BlockDone)}
    steps = {e.step: e.counts for e in ev if isinstance(e, StepEnd)}
    for q, cands in inc.items():
        assert len(cands) <= 3
        for c in cands:
            assert c.req_id == "r" and c.block_index != q
            assert tracker.first_output_block <= c.block_index <= q - gap  # earlier, never a prompt block
            cb = blocks[c.block_index]
            assert cb.step < blocks[q].step
            assert cosine(blocks[q].step_counts, steps[cb.step]) >= thr - 1e-9


def test_verbatim_repeated_step_ranks_the_repeated_block_first():
    rng = random.Random(1)
    bs = 8
    step_a = [rng.randrange(20, len(TEXTS)) for _ in range(2 * bs - 1)] + [VOCAB.texts.index("\n\n")]
    filler = [rng.randrange(20, len(TEXTS)) for _ in range(2 * bs - 1)] + [VOCAB.texts.index("\n\n")]
    tokens = step_a + filler + step_a  # blocks 0,1 | 2,3 | 4,5 ; block 4 repeats block 0
    stage1 = make_stage1(step_threshold=0.8)
    got, _ = drive(stage1, "r", tokens, 0, bs, 1)
    assert got[4][0].block_index == 0 and got[5][0].block_index == 1
    assert got[0] == [] and got[2] == []


def test_cross_request_candidates_and_removal():
    rng = random.Random(2)
    trace = reasoning_trace(rng, 8, repeat_prob=0.0)
    st1 = make_stage1(cross_request=True, step_threshold=0.9)
    drive(st1, "a", trace, 0, 8, 5)
    got, _ = drive(st1, "b", trace, 0, 8, 5)
    assert any(c.req_id == "a" for cands in got.values() for c in cands)
    full_a = len(trace) // 8
    assert all(c.block_index < full_a for cands in got.values() for c in cands if c.req_id == "a")
    st1.remove_request("a")
    st1.remove_request("b")
    assert len(st1._shared.index) == 0 and not st1._reqs


class Feeder:
    """Feeds one request's trace into Stage 1 up to a given length; collects candidates."""

    def __init__(self, stage1: Stage1, req: str, tokens: list[int], bs: int = 8) -> None:
        self.stage1, self.req, self.tokens, self.bs = stage1, req, tokens, bs
        self.tracker = StepTracker(VOCAB, 0, bs)
        stage1.add_request(req, 0)
        self.got: dict[int, list] = {}

    def feed_to(self, n: int) -> dict[int, list]:
        for ev in self.tracker.feed(self.tokens[:n]):
            if isinstance(ev, StepEnd):
                self.stage1.add_step(self.req, ev.step, ev.counts)
            else:
                self.stage1.add_block(self.req, ev)
        self.stage1.set_full_blocks(self.req, n // self.bs)
        for b in sorted(self.stage1._reqs[self.req].pending):
            self.got[b] = self.stage1.candidates(self.req, b)
        return self.got


def test_shared_scope_compaction_keeps_live_requests_working():
    rng = random.Random(3)
    a, b = reasoning_trace(rng, 12, repeat_prob=0.3), reasoning_trace(rng, 12, repeat_prob=0.3)
    olds = [reasoning_trace(rng, 30, repeat_prob=0.0) for _ in range(2)]
    half = len(a) // 2 + 3

    st1 = make_stage1(cross_request=True, step_threshold=0.6)
    fa = Feeder(st1, "a", a)
    fa.feed_to(half)
    for i, old in enumerate(olds):
        Feeder(st1, f"old{i}", old).feed_to(len(old))
    st1.remove_request("old0")
    st1.remove_request("old1")  # dead blocks outnumber live ones: compacted
    assert (st1._shared.owner.view >= 0).all() and st1._shared.index.num_dead == 0
    got_a = fa.feed_to(len(a))
    got_b = Feeder(st1, "b", b).feed_to(len(b))

    ref = make_stage1(cross_request=True, step_threshold=0.6)
    ra = Feeder(ref, "a", a)
    ra.feed_to(half)
    want_a = ra.feed_to(len(a))
    want_b = Feeder(ref, "b", b).feed_to(len(b))
    later = [k for k in want_a if k >= half // 8]
    assert {k: got_a[k] for k in later} == {k: want_a[k] for k in later}
    assert got_b == want_b and any(c.req_id == "a" for cands in got_b.values() for c in cands)


def test_in_flight_blocks_are_not_candidates():
    rng = random.Random(1)
    bs = 8
    step_a = [rng.randrange(20, len(TEXTS)) for _ in range(bs - 1)] + [VOCAB.texts.index("\n\n")]
    tokens = step_a + step_a + step_a
    st1 = make_stage1(step_threshold=0.8)
    tracker = StepTracker(VOCAB, 0, bs)
    st1.add_request("r", 0)
    for ev in tracker.feed(tokens):
        (st1.add_block if isinstance(ev, BlockDone) else lambda r, e: st1.add_step(r, e.step, e.counts))("r", ev)
    st1.set_full_blocks("r", 3)
    assert [c.block_index for c in st1.candidates("r", 2, {"r": {1}})] == [0]


def test_negative_token_ids_are_refused_and_large_ones_grow_the_count_table():
    """The ranking's count table is indexed by token id: ids must be >= 0 (tokenizers never
    make others), and an id past the table's end grows it."""
    st1 = make_stage1()
    st1.add_request("r", 0)
    with pytest.raises(ValueError, match="token ids must be >= 0"):
        st1.add_block("r", BlockDone(0, 0, (5, -1, 7, 7, 1, 2, 3, 4), {5: 1}, {5: 1}, None))
    big = (70_000, 1, 2, 3, 4, 5, 6, 7)
    st1.add_block("r", BlockDone(0, 0, big, {t: 1 for t in big}, {t: 1 for t in big}, None))
    assert len(st1._table) > 70_000 and not st1._table.any()


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(bags, min_size=1, max_size=8), growth=st.lists(bags, min_size=1, max_size=6),
       seed=st.integers(0, 1000))
def test_sparse_memo_gives_the_same_similarities_as_a_fresh_query(steps, growth, seed):
    """A step's bag grows block by block, steps of other owners arrive and go, a new step starts
    or a block goes unannounced (added None): the memoized answer equals the one computed from
    scratch, to the bit."""
    rng = random.Random(seed)
    index = SparseStepIndex()
    for i, bag in enumerate(steps):
        index.add_step(i % 2, i, bag)
    query: dict[int, int] = {}
    step = 99
    for block, more in enumerate(growth):
        added = dict(more)
        if rng.random() < 0.15:
            query, step, added = {}, step + 1, None  # a new step: its first block starts over
        for tok, c in more.items():
            query[tok] = query.get(tok, 0) + c
        if rng.random() < 0.1:
            added = None
        if rng.random() < 0.3:
            index.add_step(1, 100 + block, more)
        if rng.random() < 0.1:
            index.remove_owner(1)
        memo = index.eligible_similarities(query, owner=0, before_step=step, others=True, threshold=0.0,
                                           grown=(block, added))
        fresh = SparseStepIndex.similarities(index, query)  # no memo
        expect = np.where(memo >= 0, fresh, -1.0)
        assert memo.tolist() == expect.tolist()


def test_sparse_memo_is_used_only_for_the_next_block_of_the_same_step():
    index = SparseStepIndex()
    index.add_step(0, 0, {1: 2, 2: 1})
    index.add_step(0, 1, {3: 1})
    calls = []
    add_dots = index._add_dots
    index._add_dots = lambda dot, counts: calls.append(dict(counts)) or add_dots(dot, counts)
    q = {1: 1}
    index.eligible_similarities(q, owner=0, before_step=5, others=False, threshold=0.0, grown=(7, None))
    q2 = {1: 1, 3: 2}
    got = index.eligible_similarities(q2, owner=0, before_step=5, others=False, threshold=0.0, grown=(8, {3: 2}))
    assert calls == [{1: 1}, {3: 2}]  # block 8 continues block 7: only its new tokens are read
    assert got.tolist() == SparseStepIndex.similarities(index, q2).tolist()
    index.eligible_similarities(q2, owner=0, before_step=5, others=False, threshold=0.0, grown=(10, {3: 2}))
    assert calls[-1] == q2  # block 9 is missing: starts over


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(bags, min_size=1, max_size=10), query=bags, before=st.integers(0, 11),
       thr=st.sampled_from([0.0, 0.3, 0.8, 1.0]), extra_owner=st.booleans())
def test_eligible_similarities_of_a_one_owner_index_equal_the_general_rule(steps, query, before, thr, extra_owner):
    index = SparseStepIndex()
    for i, bag in enumerate(steps):
        index.add_step(0, i, bag)
    if extra_owner:  # another owner's step: the general path
        index.add_step(1, 0, query)
    got = index.eligible_similarities(query, owner=0, before_step=before, others=False, threshold=thr)
    sims = SparseStepIndex.similarities(index, query)
    owners = np.array([0] * len(steps) + [1] * extra_owner)
    ok = (owners == 0) & (np.arange(len(owners)) < before) & (sims >= thr - 1e-9)
    assert got.tolist() == np.where(ok, sims, -1.0).tolist()
