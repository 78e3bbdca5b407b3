"""The sharing study's pieces (issue 29): schedules, the batched replay, the control's traces, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memshare.analysis.study import schedule as S
from memshare.analysis.study.cache import buffered_cache
from memshare.analysis.study.config import StudyConfig
from memshare.analysis.study.control import with_repeats
from memshare.analysis.study.dense import DensePass, dense_pass
from memshare.analysis.study.replay import RowTotals, replay_schedules
from memshare.analysis.study.run import _measure
from memshare.analysis.traces import Trace
from memshare.errors import UserError
from memshare.replay import CHOICE_TRACES, split_rows
from tests.analysis.analysis_helpers import reasoning_ids, tiny_model


def fake_dense(prompt_len=40, length=320, bs=16, mass=None) -> DensePass:
    nb = -(-length // bs)
    m = np.ones((nb, nb)) if mass is None else mass
    return DensePass(torch.zeros(1), torch.zeros(1), m, np.full(nb, 10.0), torch.zeros(1), prompt_len, bs, length)


def test_streaming_keeps_the_newest_window():
    d = fake_dense()  # blocks 3..19 are output blocks, 20 fill
    acts = S.streaming_drops(d, window=4)
    assert [a.block for a in acts] == list(range(3, 20 - 4))
    assert all(a.at_full == a.block + 1 + 4 and a.target is None for a in acts)


def test_heavy_hitters_hold_the_cap_and_drop_the_least_read():
    nb = 20
    mass = np.zeros((nb, nb))
    mass[:, 5] = 9.0  # block 5 is read a lot: it must survive
    d = fake_dense(mass=mass)
    acts = S.heavy_hitter_drops(d, cap=4, recent=2)
    dropped = [a.block for a in acts]
    assert 5 not in dropped
    assert len(dropped) == len(set(dropped)) == (20 - 3) - 4  # every step over the cap drops one
    for a in acts:
        assert a.block < a.at_full - 2  # never one of the 2 newest full blocks


def test_matched_random_frees_the_same_memory_time():
    d = fake_dense()
    ref = [S.Action(8, 6, 4), S.Action(8, 7, 3), S.Action(12, 11, 5), S.Action(15, 14, 9)]
    acts = S.matched_random(ref, d, seed=3)
    assert sorted(a.at_full for a in acts) == sorted(a.at_full for a in ref)
    assert len({a.block for a in acts}) == len(acts)
    assert all(d.first_output_block <= a.target < a.block < a.at_full for a in acts)
    assert acts == S.matched_random(ref, d, seed=3) and acts != S.matched_random(ref, d, seed=4)


def test_cheapest_select_and_drops():
    scored = [S.Scored(S.Action(b + 1, b, b - 1), s) for b, s in [(5, 0.3), (6, 0.1), (7, 0.9), (8, 0.2)]]
    assert [a.block for a in S.cheapest(scored, 0.5, eligible=4)] == [6, 8]
    assert [a.block for a in S.select(scored, 0.25)] == [6, 8]
    assert all(a.target is None for a in S.as_drops(scored and S.select(scored, 1.0)))


def test_relative_mass_is_one_under_uniform_attention():
    bs, nb = 16, 12
    mass = np.zeros((nb, nb))
    queries = np.zeros(nb)
    for k in range(3, nb):
        seen = k * bs + bs / 2  # tokens a query of block k sees, on average
        queries[k] = 7.0 * bs
        mass[k, :k] = queries[k] * bs / seen  # every earlier block gets its uniform share
    d = DensePass(torch.zeros(1), torch.zeros(1), mass, queries, torch.zeros(1), 40, bs, nb * bs)
    assert d.future_mass(4) == pytest.approx(1.0)
    assert d.past_mass(4, 3) == pytest.approx(1.0)


def test_row_totals_figures():
    t = RowTotals(tokens=100, agree=90, kl_sum=5.0, tokens_after=50, agree_after=40, kl_sum_after=4.0, held=750,
                  dense=1000, actions=5, eligible=20)
    f = t.figures()
    assert f["freed_memory_time"] == pytest.approx(0.25) and f["top1"] == pytest.approx(0.9)
    assert f["top1_after"] == pytest.approx(0.8) and f["misses_per_action"] == pytest.approx(2.0)
    assert f["affected"] == pytest.approx(0.25)
    assert (t + t).figures()["top1"] == pytest.approx(0.9)
    assert RowTotals.from_dict(t.to_dict()) == t


def test_measure_replays_each_distinct_schedule_once():
    calls = []

    def fake_replay(lm, trace, bs, schedules, eligible):
        calls.append(len(schedules))
        return [RowTotals(tokens=10, agree=k, eligible=eligible) for k in range(len(schedules))]

    trace = Trace("t", tuple(range(20)), tuple(range(64)), False)
    a, b = [S.Action(3, 2, 1)], [S.Action(4, 3, 1)]
    out = _measure(None, trace, 16, [a, [], b, list(a)], 5, fake_replay)
    assert calls == [2]
    assert out[0].agree == out[3].agree != out[2].agree
    assert out[1].agree == out[1].tokens == 64 and out[1].held == out[1].dense  # empty: the dense row


def test_with_repeats_copies_whole_earlier_blocks_verbatim():
    trace = Trace("t", tuple(range(1000, 1037)), tuple(range(600)), False)
    c = with_repeats(trace, 16, max_tokens=400, gap_blocks=3, span_blocks=2, seed=1)
    ids, bs = c.trace.token_ids, 16
    assert len(c.trace.output_ids) <= 400 and c.copies
    for copy, orig in c.copies.items():
        assert orig < copy - 1 and orig not in c.copies
        assert ids[copy * bs:(copy + 1) * bs] == ids[orig * bs:(orig + 1) * bs]
        assert (copy + 1) * bs <= len(ids)


def test_config_errors_are_one_line():
    with pytest.raises(UserError, match="--split"):
        StudyConfig(split="test")
    with pytest.raises(UserError, match="unknown line"):
        StudyConfig(lines=("nope",))
    with pytest.raises(UserError, match="--max-tokens"):
        StudyConfig(max_tokens=10)
    assert list(split_rows(45, "choice")) == list(range(CHOICE_TRACES))
    assert list(split_rows(45, "report")) == list(range(CHOICE_TRACES, 45))


def test_buffered_cache_matches_dynamic_cache():
    from transformers import DynamicCache

    lm = tiny_model()
    ids = torch.tensor([reasoning_ids(12)[:70]])
    with torch.inference_mode():
        ref = lm.model(ids, past_key_values=DynamicCache(config=lm.model.config), use_cache=True).logits
        cache = buffered_cache(lm.model.config, 70)
        got = torch.cat([lm.model(ids[:, s:s + 16], past_key_values=cache, use_cache=True).logits
                         for s in range(0, 70, 16)], dim=1)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


def test_replay_rows_follow_their_schedules():
    lm = tiny_model()
    ids = reasoning_ids(30)
    trace = Trace("t", tuple(ids[:20]), tuple(ids[20:180]), False)
    d = dense_pass(lm, trace, 16)
    # every query's weights sum to 1 over the keys it sees
    rows = d.queries > 0
    np.testing.assert_allclose(d.mass[rows].sum(1), d.queries[rows], rtol=1e-6)
    share = [S.Action(6, 4, 2), S.Action(9, 7, 3)]
    out = replay_schedules(lm, trace, 16, [[S.Action(99, 4, 2)], share, S.as_drops(share)], eligible=9)
    never, shared, dropped = out
    assert never.actions == 0 and never.agree == never.tokens and never.kl_sum == pytest.approx(0.0, abs=1e-6)
    assert shared.actions == dropped.actions == 2
    assert shared.kl_sum > 0 and dropped.kl_sum > 0 and shared.kl_sum != dropped.kl_sum
    # 16 tokens less held by every position after each action (cache lengths 96 and 144; the
    # positions run to 178, the last one predicting the trace's last token)
    assert shared.dense - shared.held == dropped.dense - dropped.held == 16 * ((179 - 96) + (179 - 144))
    assert shared.tokens_after < shared.tokens
