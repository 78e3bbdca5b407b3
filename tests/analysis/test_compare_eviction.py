"""Eviction baselines on a tiny random Llama and toy caches: budgets kept exactly, protected
tokens kept, each method's own rule (StreamingLLM's window, H2O's heavy hitters, R-KV's
redundancy), and no eviction = dense bit for bit."""

from __future__ import annotations

import random

import pytest
import torch
from analysis_helpers import VOCAB_SIZE, tiny_model

from memshare.analysis.compare.replay import Evicting, decode
from memshare.analysis.eviction import EVICTION_METHODS, EvictionSettings, make_method
from memshare.analysis.eviction.attention import Evictor
from memshare.analysis.eviction.rkv import redundancy
from memshare.analysis.fidelity import Agreement

SETTINGS = EvictionSettings(n_sink=3, snap_window=4, snap_interval=4, rkv_window=2, rkv_buffer=4, recent=4)
PROMPT, OUT, BUDGET = 12, 40, 24


@pytest.fixture(scope="module")
def lm():
    return tiny_model()


def toy_ids(n, seed=0):
    rng = random.Random(seed)
    return [rng.randrange(VOCAB_SIZE) for _ in range(n)]


@pytest.fixture(scope="module")
def dense(lm):
    prompt, out = toy_ids(PROMPT, 1), toy_ids(OUT, 2)
    return prompt, out, decode(lm, prompt, 0, forced=out, keep_logprobs=True).logprobs


def run(lm, dense, name, budget=BUDGET):
    prompt, out, ref = dense
    ev = Evictor(make_method(name, budget, len(prompt), SETTINGS))
    agreement = Agreement()
    rep = decode(lm, prompt, 0, Evicting(ev), forced=out, reference=ref, agreement=agreement)
    return ev, rep, agreement


@pytest.mark.parametrize("name", list(EVICTION_METHODS))
def test_each_method_keeps_exactly_its_budget_in_every_layer_and_head(lm, dense, name):
    ev, rep, _ = run(lm, dense, name)
    interval = ev.method.interval
    assert rep.peak_kept == BUDGET == ev.peak_kept
    first_full = rep.kept.index(BUDGET)
    # once full, a head holds between budget - interval + 1 and budget tokens at every forward pass
    assert all(BUDGET - interval < k <= BUDGET for k in rep.kept[first_full:])
    assert rep.kept[:first_full] == rep.lengths[:first_full]  # nothing evicted before that
    n = PROMPT + OUT - 1
    counts = {int(c) for layer in range(2) for c in ev.keep_mask(layer).sum(-1)}
    assert counts == {BUDGET - interval if rep.kept[-1] == BUDGET else rep.kept[-1]}  # same in every layer, head
    assert ev.keep_mask(0).shape == (2, n)


@pytest.mark.parametrize("name", list(EVICTION_METHODS))
def test_protected_tokens_are_never_evicted(lm, dense, name):
    ev, _, _ = run(lm, dense, name)
    n = PROMPT + OUT - 1
    protected = ev.method.protected(n)
    for layer in range(2):
        assert ev.keep_mask(layer)[:, protected].all()
    prompt_kept = bool(ev.keep_mask(0)[:, :PROMPT].all())
    assert prompt_kept if ev.method.protects_prompt else not prompt_kept


@pytest.mark.parametrize("name", list(EVICTION_METHODS))
def test_outputs_match_dense_until_the_first_eviction_and_differ_after(lm, dense, name):
    ev, rep, a = run(lm, dense, name)
    assert ev.first_eviction_at is not None and 0 < a.tokens_after < a.tokens
    assert a.agree - a.agree_after == a.tokens - a.tokens_after  # every position before agrees
    assert a.kl_sum == pytest.approx(a.kl_sum_after, abs=0.0) and a.kl_sum_after > 0


@pytest.mark.parametrize("name", list(EVICTION_METHODS))
def test_a_budget_above_the_trace_is_dense_bit_for_bit(lm, dense, name):
    prompt, out, ref = dense
    ev = Evictor(make_method(name, PROMPT + OUT + 1, PROMPT, SETTINGS))
    rep = decode(lm, prompt, 0, Evicting(ev), forced=out, keep_logprobs=True)
    assert torch.equal(rep.logprobs, ref) and ev.first_eviction_at is None
    free_dense = decode(lm, prompt, 8)
    assert decode(lm, prompt, 8, Evicting(Evictor(make_method(name, 100, PROMPT, SETTINGS)))).output_ids \
        == free_dense.output_ids


def test_streaming_keeps_the_sinks_and_the_newest_tokens_on_a_toy_cache():
    m = make_method("streaming", 8, 5, EvictionSettings(n_sink=4))
    keys, keep = torch.randn(2, 20, 4), torch.ones(2, 20, dtype=torch.bool)
    new = m.compress(0, torch.zeros(6, 0, 4), keys, keep)
    assert new[0].nonzero().flatten().tolist() == [0, 1, 2, 3, 17, 18, 19] and torch.equal(new[0], new[1])
    keep = new.clone()
    keep = torch.cat([keep, torch.ones(2, 1, dtype=torch.bool)], dim=1)  # token 20 arrives: 8 held
    assert keep[0].sum() == 8
    assert m.compress(0, torch.zeros(6, 0, 4), torch.randn(2, 21, 4), keep)[0].nonzero().flatten().tolist() \
        == [0, 1, 2, 3, 18, 19, 20]


def test_streaming_window_in_the_model(lm, dense):
    ev, rep, _ = run(lm, dense, "streaming")
    n = PROMPT + OUT - 1
    window = BUDGET - 1 - SETTINGS.n_sink  # after the last forward pass one token made room
    want = list(range(SETTINGS.n_sink)) + list(range(n - window, n))
    for layer in range(2):
        for head in range(2):
            assert ev.keep_mask(layer)[head].nonzero().flatten().tolist() == want


def test_h2o_evicts_the_lightest_token_outside_the_recent_half():
    m = make_method("h2o", 6, 2, EvictionSettings())
    m._acc[0] = torch.tensor([[5.0, 0.1, 3.0, 0.2, 4.0, 9.0], [0.3, 2.0, 1.0, 8.0, 0.0, 0.0]])
    new = m.compress(0, torch.zeros(4, 0, 4), torch.randn(2, 6, 4), torch.ones(2, 6, dtype=torch.bool))
    # recent = 3 tokens (3, 4, 5) stay; of 0..2 the lightest goes
    assert new.tolist() == [[True, False, True, True, True, True], [False, True, True, True, True, True]]


def test_h2o_accumulates_attention_over_every_query(lm, dense):
    ev, _, _ = run(lm, dense, "h2o")
    acc = ev.method._acc[0]  # (H, n): each query spreads 1 per query head over its keys
    g = lm.model.config.num_attention_heads // lm.model.config.num_key_value_heads
    assert acc.sum().item() == pytest.approx(2 * g * (PROMPT + OUT - 1), rel=1e-4)


def test_rkv_redundancy_spares_the_newest_copy():
    keys = torch.eye(16)[:10][None].clone()  # (1, 10, 16): orthogonal keys...
    keys[0, 5] = keys[0, 0]
    keys[0, 9] = keys[0, 0]  # ...but three copies: 0, 5, 9
    r = redundancy(keys, torch.ones(1, 10, dtype=torch.bool), 0.5)[0]
    assert r[0] > r[5] > r[9] and r.sum().item() == pytest.approx(1.0)
    others = [r[i] for i in range(10) if i not in (0, 5, 9)]
    assert r[0] > max(others)


def test_settings_and_budgets_are_validated():
    with pytest.raises(ValueError, match="snap_window"):
        EvictionSettings(snap_window=0)
    with pytest.raises(ValueError, match="at least 2"):
        make_method("h2o", 1, 0)
    with pytest.raises(ValueError, match="unknown eviction method"):
        make_method("quest", 10, 0)
