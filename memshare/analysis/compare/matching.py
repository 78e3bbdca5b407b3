"""Matching every method to a KV budget, per prompt.

* Eviction methods take the budget directly: ``budget_tokens(fraction, trace)`` tokens per KV
  head, where the dense trace's KV is its prompt plus output tokens.
* MemShare has thresholds, not a budget. ``memshare_setting`` walks ``MEMSHARE_LADDER`` from
  the tightest pair and keeps the first whose teacher-forced replay of the dense trace never
  holds more than the budget (its unique blocks, in tokens); if none does, the loosest pair,
  marked unmatched. The choice looks at KV only, never at quality.
* Random sharing is matched to MemShare's shares on the same prompt (``match_random``): same
  number of shared blocks, so the same physical KV in the teacher-forced replay.
"""

from __future__ import annotations

import copy

import torch

from memshare.analysis.compare.config import MEMSHARE_LADDER
from memshare.analysis.fidelity import forward_chunks, match_random
from memshare.analysis.kvcache import cache_length
from memshare.analysis.sharer import CacheSharer
from memshare.analysis.traces import LoadedModel, Trace
from memshare.core.config import MemShareConfig
from memshare.core.policies import make_policy


def dense_kv(trace: Trace) -> int:
    """Tokens of KV the dense run of ``trace`` holds at its end: prompt + output."""
    return len(trace.prompt_ids) + len(trace.output_ids)


def budget_tokens(fraction: float, trace: Trace) -> int:
    """The budget in tokens per KV head: ``floor(fraction x dense KV)``, at least 2."""
    return max(2, int(fraction * dense_kv(trace)))


@torch.inference_mode()
def sharing_peak(lm: LoadedModel, trace: Trace, setting: MemShareConfig, vocab, rope,
                 prefix_cache=None) -> tuple[int, int, int]:
    """(most tokens held, blocks shared, full output blocks seen) when ``setting`` shares during a
    block-chunked replay.

    NOTE: shares happen only when a block fills, so block-sized chunks see the same cache
    lengths at every decision as token-by-token decoding, and the same peak. The blocks
    before the prompt's last full block hold no decision: ``prefix_cache`` (from
    ``prompt_prefix``) may stand for them.
    """
    sharer = CacheSharer(make_policy(setting, vocab=vocab), "ladder", trace.prompt_ids, rope)
    ids, p, bs = trace.token_ids, len(trace.prompt_ids), setting.block_size
    cache = copy.deepcopy(prefix_cache if prefix_cache is not None else prompt_prefix(lm, trace, bs))
    peak = cache_length(cache)
    for start, stop in forward_chunks(trace, bs):
        if stop <= cache_length(cache):
            continue
        lm.model(torch.tensor([ids[start:stop]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
        peak = max(peak, stop - bs * len(sharer.events))
        if stop >= p:
            sharer.step(cache, ids[:stop + 1])
    sharer.close()
    return peak, len(sharer.events), sharer.policy.stats.full_blocks


@torch.inference_mode()
def prompt_prefix(lm: LoadedModel, trace: Trace, block_size: int):
    """A cache of the prompt's full blocks (``forward_chunks`` boundaries), computed once for the ladder."""
    from transformers import DynamicCache

    cache = DynamicCache(config=lm.model.config)
    upto = (len(trace.prompt_ids) // block_size) * block_size
    if upto:
        lm.model(torch.tensor([trace.token_ids[:upto]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
    return cache


def memshare_setting(lm: LoadedModel, trace: Trace, base: MemShareConfig, budget: int, vocab, rope,
                     memo: dict | None = None) -> tuple[MemShareConfig, bool, list[dict]]:
    """The tightest ladder setting that keeps ``trace`` within ``budget`` tokens; (setting, matched, tried).

    ``memo``: a dict shared by calls on the same trace (ladder replays do not depend on the budget).
    """
    memo = {} if memo is None else memo
    tried = []
    for step, block in MEMSHARE_LADDER:
        setting = base.replace(policy="memshare", step_threshold=step, block_threshold=block)
        if (step, block) not in memo:
            if "prefix" not in memo:
                memo["prefix"] = prompt_prefix(lm, trace, base.block_size)
            peak, shared, full = sharing_peak(lm, trace, setting, vocab, rope, memo["prefix"])
            memo[(step, block)] = {"step_threshold": step, "block_threshold": block, "peak_kept": peak,
                                   "shared_blocks": shared, "full_blocks": full}
        tried.append(memo[(step, block)])
        if tried[-1]["peak_kept"] <= budget:
            return setting, True, tried
    return setting, False, tried


def random_setting(base: MemShareConfig, trace: Trace, shared_blocks: int, full_blocks: int) -> MemShareConfig:
    """Random sharing with MemShare's rate on ``trace`` and the first seed that shares as many blocks."""
    rate = min(1.0, shared_blocks / full_blocks) if full_blocks else 0.0
    return match_random(base.replace(policy="random", random_rate=rate), [trace], shared_blocks)
