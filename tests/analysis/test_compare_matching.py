"""Matched budgets on a tiny random Llama: eviction holds exactly the budget, MemShare's ladder
choice fits it (and the token-by-token replay agrees with the ladder), random sharing shares
as many blocks as MemShare, the prompt is never shared, and the batch changes nothing."""

from __future__ import annotations

import random

import pytest
import torch
from analysis_helpers import VOCAB, VOCAB_SIZE, reasoning_ids, tiny_model, tiny_rope

from memshare.analysis.compare.matching import budget_tokens, dense_kv, memshare_setting
from memshare.analysis.compare.measure import Context, measure_prompt
from memshare.analysis.compare.metrics import method_row
from memshare.analysis.compare.replay import Dense, Evicting, decode, decode_batch
from memshare.analysis.eviction import EvictionSettings, make_method
from memshare.analysis.eviction.attention import Evictor
from memshare.analysis.traces import Trace
from memshare.core.config import MemShareConfig

BS = 8
SETTINGS = EvictionSettings(n_sink=2, snap_window=4, snap_interval=4, rkv_window=2, rkv_buffer=4, recent=4)
METHODS = ("memshare", "random-share", "streaming", "h2o", "snapkv", "rkv", "random-evict")


@pytest.fixture(scope="module")
def lm():
    return tiny_model()


@pytest.fixture(scope="module")
def trace():
    rng = random.Random(3)
    return Trace("p0", tuple(rng.randrange(VOCAB_SIZE) for _ in range(BS + 3)), tuple(reasoning_ids(8)), False)


def context(lm):
    return Context(lm, MemShareConfig(block_size=BS), SETTINGS, VOCAB, tiny_rope(lm), 24,
                   lambda ids, pid: {"extracted": str(ids[-1]), "correct": False})


@pytest.fixture(scope="module")
def rows(lm, trace):
    keys = [(m, b) for m in METHODS for b in (0.6, 0.8)]
    return measure_prompt(context(lm), trace, keys)


def test_budget_is_a_fraction_of_the_dense_trace(trace):
    assert dense_kv(trace) == len(trace.prompt_ids) + len(trace.output_ids)
    assert budget_tokens(0.5, trace) == int(0.5 * dense_kv(trace))


@pytest.mark.parametrize("method", METHODS[2:])
@pytest.mark.parametrize("fraction", [0.6, 0.8])
def test_eviction_holds_exactly_the_budget(rows, trace, method, fraction):
    r = rows[(method, fraction)]
    assert r["budget_tokens"] == budget_tokens(fraction, trace) and r["peak_kept"] == r["budget_tokens"]
    assert r["peak_kept_free"] <= r["budget_tokens"] and r["tf_tokens"] == len(trace.output_ids)
    assert 0 < r["tf_tokens_after"] < r["tf_tokens"] and r["mean_fraction"] < 1.0


@pytest.mark.parametrize("fraction", [0.6, 0.8])
def test_memshare_fits_the_budget_with_the_tightest_ladder_setting(rows, fraction):
    r = rows[("memshare", fraction)]
    assert r["matched"] and r["peak_kept"] <= r["budget_tokens"]
    assert r["peak_kept"] == r["ladder_peak"] and r["shared_blocks"] == r["ladder_shared_blocks"]  # replay = ladder
    assert all(t["peak_kept"] > r["budget_tokens"] for t in r["ladder"][:-1])  # tighter settings did not fit
    assert r["shared_blocks"] >= 1 and r["full_blocks"] >= r["shared_blocks"]


@pytest.mark.parametrize("fraction", [0.6, 0.8])
def test_random_share_shares_as_many_blocks_as_memshare(rows, fraction):
    ms, rs = rows[("memshare", fraction)], rows[("random-share", fraction)]
    assert rs["shared_blocks"] == ms["shared_blocks"] >= 1
    assert rs["random_rate"] == pytest.approx(ms["ladder_shared_blocks"] / ms["ladder_full_blocks"])


def test_tighter_budgets_hold_less(rows):
    for m in METHODS:
        assert rows[(m, 0.6)]["peak_kept"] <= rows[(m, 0.8)]["peak_kept"]


def test_memshare_never_shares_prompt_blocks_and_reports_unmatched(lm, trace):
    ctx = context(lm)
    setting, matched, tried = memshare_setting(lm, trace, ctx.sharing, len(trace.prompt_ids), VOCAB, ctx.rope)
    assert not matched and len(tried) == 6  # the prompt alone is over this budget
    assert all(t["peak_kept"] > len(trace.prompt_ids) for t in tried)


def test_rows_summarize_into_matching_fractions(rows, trace):
    dense = [{"problem_id": "p0", "sample_index": 0, "output_token_ids": list(trace.output_ids), "output_tokens":
              len(trace.output_ids), "finish_reason": "length", "extracted": None, "correct": False}]
    for m in METHODS[2:]:
        row = method_row(m, 0.6, [rows[(m, 0.6)]], dense)
        assert row["kv_fraction"] == pytest.approx(budget_tokens(0.6, trace) / dense_kv(trace))
        assert row["budget_met"] == "1/1" and 0.0 <= row["top1_agreement"] <= 1.0 and row["kl"] >= 0.0


def test_a_batch_gives_each_row_what_it_gives_alone(lm, trace):
    prompt, out = trace.prompt_ids, trace.output_ids

    def ev():
        return Evicting(Evictor(make_method("h2o", 20, len(prompt), SETTINGS)))

    alone = decode(lm, prompt, 0, ev(), forced=out, keep_logprobs=True).logprobs
    dense = decode(lm, prompt, 0, forced=out, keep_logprobs=True).logprobs
    both = decode_batch(lm, prompt, 0, [Dense(), ev()], forced=out, keep_logprobs=True)
    assert torch.allclose(both[0].logprobs, dense, atol=1e-4) and torch.allclose(both[1].logprobs, alone, atol=1e-4)
