"""The dense pass of one trace, computed once and shared by every rule and point.

One teacher-forced replay of the trace in block-sized chunks (the engine's view: a block is
decided on when it fills) gives everything the selection rules read:

* ``keys``, ``values``: (L, H, S, D), the cache as vLLM would hold it (keys after RoPE);
* ``mass[k, b]``: the attention weight that the queries of block ``k`` put on the tokens of
  block ``b``, summed over layers, query heads and queries; ``queries[k]``: how many
  (layer, head, query) triples block ``k`` has, so ``mass / queries`` is the mean weight a
  query gives ``b``. Rows of prompt blocks are zero (the prompt is prefilled at once);
* ``logprobs``: (n_out, V) float16, the dense next-token distributions of the output positions
  (row 0 predicts the first output token), for the probes of ``probe.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from memshare.analysis.kvcache import stacked_kv
from memshare.analysis.study.attention import StudyAttention, studying
from memshare.analysis.study.cache import buffered_cache
from memshare.analysis.traces import LoadedModel, Trace


@dataclass(frozen=True, slots=True)
class DensePass:
    keys: torch.Tensor
    values: torch.Tensor
    mass: np.ndarray  # (nb, nb) float64
    queries: np.ndarray  # (nb,)
    logprobs: torch.Tensor  # (n_out, V) float16
    prompt_len: int
    block_size: int
    length: int  # tokens fed (the trace less its last token)

    @property
    def first_output_block(self) -> int:
        """The first block made of output tokens only."""
        return -(-self.prompt_len // self.block_size)

    @property
    def num_full(self) -> int:
        """Blocks that fill during the replay."""
        return self.length // self.block_size

    def output_blocks(self) -> range:
        return range(self.first_output_block, self.num_full)

    def relative_mass(self, block: int, rows: slice) -> float:
        """The weight the queries of blocks ``rows`` gave ``block``, relative to uniform attention.

        1.0: those queries gave the block its share of a uniform spread over what they saw
        (``block_size`` of about ``k * block_size + block_size / 2`` tokens for the queries of
        block ``k``); 0.1: a tenth of it. Scale-free, so one threshold serves 1k and 2k prefixes.
        NaN: no such query.
        """
        ks = np.arange(self.mass.shape[0])[rows]
        q = self.queries[rows]
        if not q.sum():
            return float("nan")
        uniform = (q * self.block_size / (ks * self.block_size + self.block_size / 2)).sum()
        return float(self.mass[rows, block].sum() / uniform)

    def future_mass(self, block: int) -> float:
        """What every query after ``block`` filled gives it (the attention oracle's cost)."""
        return self.relative_mass(block, slice(block + 1, None))

    def past_mass(self, block: int, window: int) -> float:
        """What the ``window`` blocks of queries after ``block`` gave it (known ``window`` blocks after it fills)."""
        return self.relative_mass(block, slice(block + 1, block + 1 + window))


def prefill_end(trace: Trace, block_size: int) -> int:
    """Tokens prefilled at once: whole blocks, leaving the position that predicts the first output token."""
    return ((len(trace.prompt_ids) - 1) // block_size) * block_size


def chunks(trace: Trace, block_size: int) -> list[tuple[int, int]]:
    """(start, stop) of the block-aligned forward passes after the prefill; the last token predicts nothing."""
    end = len(trace.token_ids) - 1
    return [(s, min(s + block_size, end)) for s in range(prefill_end(trace, block_size), end, block_size)]


@torch.inference_mode()
def dense_pass(lm: LoadedModel, trace: Trace, block_size: int) -> DensePass:
    ids = trace.token_ids
    n = len(ids) - 1
    nb = -(-n // block_size)
    cfg = lm.model.config
    heads, layers = cfg.num_attention_heads, cfg.num_hidden_layers
    cache = buffered_cache(cfg, n)
    mass = np.zeros((nb, nb))
    queries = np.zeros(nb)
    p0 = prefill_end(trace, block_size)
    if p0:
        lm.model(torch.tensor([ids[:p0]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
    state = StudyAttention(block_size)
    p = len(trace.prompt_ids)
    lps = []
    with studying(lm.model, state):
        for start, stop in chunks(trace, block_size):
            state.mass = torch.zeros(nb, dtype=torch.float64)
            logits = lm.model(torch.tensor([ids[start:stop]]), past_key_values=cache, use_cache=True).logits[0]
            lo = max(start, p - 1)
            if lo < stop:
                lps.append(torch.log_softmax(logits[lo - start:].float(), dim=-1).half())
            k = start // block_size
            mass[k] = state.mass.numpy()
            queries[k] = layers * heads * (stop - start)
    keys, values = stacked_kv(cache)
    return DensePass(keys, values, mass, queries, torch.cat(lps), p, block_size, n)
