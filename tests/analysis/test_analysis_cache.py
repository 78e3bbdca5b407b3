"""Cache edits and the policy driver on a tiny random Llama: sharing really swaps K/V."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from analysis_helpers import VOCAB, VOCAB_SIZE, reasoning_ids, tiny_model, tiny_rope
from transformers import DynamicCache

from memshare.analysis.fidelity import Agreement, _dry_run_shares, dense_logprobs, match_random, teacher_forced
from memshare.analysis.kvcache import block_kv, cache_block_kv, cache_length, share_block, stacked_kv
from memshare.analysis.sharer import CacheSharer
from memshare.analysis.traces import Trace, greedy_generate, sequence_kv
from memshare.core.config import MemShareConfig
from memshare.core.policies import make_policy
from memshare.core.stage2 import block_distances, block_positions

BS = 8


@pytest.fixture(scope="module")
def lm():
    return tiny_model()


def prefill(lm, ids):
    cache = DynamicCache(config=lm.model.config)
    with torch.inference_mode():
        lm.model(torch.tensor([ids]), past_key_values=cache, use_cache=True)
    return cache


def next_logits(lm, cache, ids):
    with torch.inference_mode():
        return lm.model(torch.tensor([ids]), past_key_values=cache, use_cache=True).logits[0]


def toy_ids(n, seed=0):
    rng = random.Random(seed)
    return [rng.randrange(VOCAB_SIZE) for _ in range(n)]


def test_share_block_replaces_exactly_that_slice_in_every_layer(lm):
    cache = prefill(lm, toy_ids(4 * BS))
    before_k, before_v = stacked_kv(cache)  # (L, H, S, D)
    share_block(cache, 3, 1, BS)
    k, v = stacked_kv(cache)
    q, t = slice(3 * BS, 4 * BS), slice(BS, 2 * BS)
    assert torch.equal(k[:, :, q], before_k[:, :, t]) and torch.equal(v[:, :, q], before_v[:, :, t])
    assert torch.equal(k[:, :, :3 * BS], before_k[:, :, :3 * BS])  # nothing else moved
    assert torch.equal(v[:, :, :3 * BS], before_v[:, :, :3 * BS])
    assert not torch.equal(k[:, :, q], before_k[:, :, q])


def test_share_block_rejects_blocks_that_are_not_full(lm):
    cache = prefill(lm, toy_ids(2 * BS + 3))
    with pytest.raises(ValueError, match="must be full"):
        share_block(cache, 2, 0, BS)
    share_block(cache, 1, 1, BS)  # sharing with itself is a no-op


def test_gathering_blocks_agrees_between_live_and_stacked_cache(lm):
    cache = prefill(lm, toy_ids(3 * BS))
    k, v = cache_block_kv(cache, [2, 0], BS)
    sk, sv = block_kv(*stacked_kv(cache), [2, 0], BS)
    assert k.shape == (2, 2, 2, BS, 8)  # (C, L, H, T, D)
    assert torch.equal(k, sk) and torch.equal(v, sv)
    assert torch.equal(k[1], stacked_kv(cache)[0][:, :, :BS])


def test_sharing_with_an_identical_copy_leaves_logits_unchanged(lm):
    ids, nxt = toy_ids(3 * BS, 1), toy_ids(5, 2)
    cache = prefill(lm, ids)
    share_block(cache, 2, 0, BS)  # block 2 now holds an exact copy of block 0
    other = copy.deepcopy(cache)
    share_block(other, 0, 2, BS)  # share block 0 with its identical copy
    assert torch.equal(next_logits(lm, copy.deepcopy(cache), nxt), next_logits(lm, other, nxt))
    different = copy.deepcopy(cache)
    share_block(different, 1, 0, BS)  # a real change of content changes the output
    assert not torch.allclose(next_logits(lm, copy.deepcopy(cache), nxt), next_logits(lm, different, nxt))


def test_shared_cache_equals_a_cache_built_from_the_edited_tensors(lm):
    """Attention after an edit sees exactly the edited K/V: rebuild a cache from them and compare."""
    ids, nxt = toy_ids(3 * BS, 3), toy_ids(4, 4)
    cache = prefill(lm, ids)
    share_block(cache, 2, 0, BS)
    rebuilt = DynamicCache(config=lm.model.config)
    for layer, (k, v) in enumerate(zip(*stacked_kv(cache))):
        rebuilt.update(k[None].clone(), v[None].clone(), layer)
    assert torch.equal(next_logits(lm, cache, nxt), next_logits(lm, rebuilt, nxt))


def test_sequence_kv_matches_a_single_forward(lm):
    ids = toy_ids(3 * BS + 5, 5)
    k, v = sequence_kv(lm, ids, BS)
    ref_k, ref_v = stacked_kv(prefill(lm, ids))
    assert k.shape == ref_k.shape == (2, 2, len(ids), 8)
    assert torch.allclose(k, ref_k, atol=1e-5) and torch.allclose(v, ref_v, atol=1e-5)


def test_memshare_driver_measures_stage2_on_the_cache_before_sharing(lm):
    cfg = MemShareConfig(block_size=BS, step_threshold=0.0, block_threshold=2.0)
    policy = make_policy(cfg, vocab=VOCAB)
    prompt = toy_ids(BS, 7)
    sharer = CacheSharer(policy, "r", prompt, tiny_rope(lm))
    ids = prompt + reasoning_ids(6)
    cache = DynamicCache(config=lm.model.config)
    checked = 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, BS):
            stop = min(start + BS, len(ids) - 1)
            lm.model(torch.tensor([ids[start:stop]]), past_key_values=cache, use_cache=True)
            keys, values = stacked_kv(cache)
            if stop < len(prompt):
                continue
            for e in sharer.step(cache, ids[:stop + 1]):
                (qk,), (qv,) = block_kv(keys, values, [e.query], BS)
                tk, tv = block_kv(keys, values, [e.target], BS)
                want = block_distances(qk, qv, tk, tv, distance=cfg.distance, q_pos=block_positions(e.query, BS),
                                       c_pos=block_positions([e.target], BS), rope=tiny_rope(lm))
                assert e.distance == pytest.approx(float(want[0]), rel=1e-5)
                k_now, v_now = cache_block_kv(cache, [e.query], BS)
                assert torch.equal(k_now[0], tk[0]) and torch.equal(v_now[0], tv[0])
                checked += 1
    sharer.close()
    assert checked >= 1 and policy.stats.shared_blocks == checked and policy.stats.stage2_queries >= checked
    assert cache_length(cache) == len(ids) - 1


def test_a_policy_that_never_shares_reproduces_dense_teacher_forcing_and_generation(lm):
    prompt = toy_ids(BS + 3, 8)
    out, finished = greedy_generate(lm, prompt, 5 * BS)
    trace = Trace("t", tuple(prompt), tuple(out), finished)
    dense = dense_logprobs(lm, trace, BS)
    assert dense.shape == (len(out), VOCAB_SIZE)
    policy = make_policy(MemShareConfig(block_size=BS, step_threshold=1.0, block_threshold=0.0), vocab=VOCAB)
    agreement = Agreement()
    sharer = CacheSharer(policy, "t", prompt, tiny_rope(lm))
    for row, lp, after in teacher_forced(lm, trace, BS, sharer):
        agreement.add(dense[row:row + len(lp)], lp, after)
    sharer.close()
    assert agreement.tokens == len(out) and agreement.agree == len(out) and agreement.kl_sum == 0.0
    sharer = CacheSharer(policy, "g", prompt, tiny_rope(lm))
    assert greedy_generate(lm, prompt, 5 * BS, sharer) == (out, finished)
    sharer.close()
    assert policy.stats.full_blocks > 0 and policy.stats.shared_blocks == 0


def test_random_sharing_changes_only_positions_after_the_first_share(lm):
    prompt = toy_ids(BS, 9)
    out, finished = greedy_generate(lm, prompt, 6 * BS)
    trace = Trace("t", tuple(prompt), tuple(out), finished)
    dense = dense_logprobs(lm, trace, BS)
    setting = MemShareConfig(policy="random", block_size=BS, random_rate=1.0)
    policy = make_policy(setting)
    sharer = CacheSharer(policy, "t", prompt, None)
    agreement = Agreement()
    for row, lp, after in teacher_forced(lm, trace, BS, sharer):
        if not after:
            assert torch.equal(lp, dense[row:row + len(lp)])
        agreement.add(dense[row:row + len(lp)], lp, after)
    sharer.close()
    assert sharer.events and sharer.first_share_at == sharer.events[0].at_token
    assert all(e.distance is None and e.target < e.query for e in sharer.events)
    assert 0 < agreement.tokens_after < agreement.tokens
    assert agreement.kl_sum_after > 0 and agreement.kl_sum == pytest.approx(agreement.kl_sum_after)
    assert _dry_run_shares(setting, [trace]) == len(sharer.events)  # the dry run mirrors the replay


def test_match_random_finds_a_seed_with_the_target_count():
    out = [TOKEN % VOCAB_SIZE for TOKEN in range(20 * BS)]
    traces = [Trace(str(i), tuple(toy_ids(BS + i, i)), tuple(out), False) for i in range(3)]
    base = MemShareConfig(policy="random", block_size=BS, random_rate=0.3)
    counts = {seed: _dry_run_shares(base.replace(seed=seed), traces) for seed in range(8)}
    for target in set(counts.values()):
        chosen = match_random(base, traces, target)
        assert _dry_run_shares(chosen, traces) == target and chosen.seed == min(k for k, v in counts.items() if v == target)
    assert len(set(counts.values())) > 1
