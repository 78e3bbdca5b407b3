"""The measured-cost oracle: what substituting each block alone costs over the next tokens.

For each output block ``b`` with a target, the replay restarts from the dense cache at the
moment ``b`` would be shared (``delay`` blocks after it fills), substitutes ``b`` by its target,
feeds the next ``window`` tokens of the trace and measures the mean KL(dense || substituted) of
their next-token distributions. Ranking blocks by it needs the future (the dense run and the
tokens to come): no engine could do it, which is what makes it a bound on selection rules, not
one of them. Blocks are measured alone; the front applies many at once, so interactions are
not in the score.
"""

from __future__ import annotations

import torch

from memshare.analysis.kvcache import share_block
from memshare.analysis.study.attention import StudyAttention, studying
from memshare.analysis.study.cache import cache_from_kv
from memshare.analysis.study.dense import DensePass
from memshare.analysis.study.schedule import Action, Scored
from memshare.analysis.traces import LoadedModel, Trace


@torch.inference_mode()
def probe_scores(lm: LoadedModel, trace: Trace, dense: DensePass, targets: dict[int, tuple[int, float]], *,
                 delay: int, window: int) -> list[Scored]:
    ids, bs, p = trace.token_ids, dense.block_size, dense.prompt_len
    out = []
    with studying(lm.model, StudyAttention(bs)):
        for b, (t, _) in targets.items():
            at = b + 1 + delay
            start, stop = at * bs, min(at * bs + window, dense.length)
            if at > dense.num_full or start >= stop:
                continue
            cache = cache_from_kv(lm.model.config, dense.keys, dense.values, start, stop)
            share_block(cache, b, t, bs)
            kl = 0.0
            for s in range(start, stop, bs):
                e = min(s + bs, stop)
                logits = lm.model(torch.tensor([ids[s:e]]), past_key_values=cache, use_cache=True).logits[0]
                lp = torch.log_softmax(logits.float(), dim=-1)
                ref = dense.logprobs[s - (p - 1):e - (p - 1)].float()
                kl += float((ref.exp() * (ref - lp)).sum())
            out.append(Scored(Action(at, b, t), kl / (stop - start)))
    return out
