"""The study's attention function: per-row block masks, and attention mass read off the dense row.

``studying(model, state)`` routes a Hugging Face model's attention through ``_attention`` inside
a ``with`` block. ``StudyAttention`` says what to do per forward pass:

* ``keep``: ``(B, max_len)`` bool, False where a row's cache position was dropped (block-level
  eviction); ``None``: every row sees its whole cache, and transformers' SDPA runs unchanged.
* ``mass``: when set, a ``(num_blocks,)`` float64 accumulator: the attention weights of every
  layer, query head and query of this forward pass summed per key block (batch row 0). The
  dense pass sets it per chunk to learn which blocks later queries read.

Shapes: ``query`` (B, Hq, q, D), ``key``/``value`` (B, H, n, D) with the new tokens appended.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

ATTN_NAME = "memshare_study"


@dataclass(slots=True)
class StudyAttention:
    block_size: int
    keep: torch.Tensor | None = None
    mass: torch.Tensor | None = None


_state: StudyAttention | None = None


@contextmanager
def studying(model, state: StudyAttention):
    """Route ``model``'s attention through ``state`` inside the block."""
    global _state
    from transformers import AttentionInterface

    AttentionInterface.register(ATTN_NAME, _attention)
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTN_NAME)
    _state = state
    try:
        yield state
    finally:
        _state = None
        model.set_attn_implementation(before)


def _causal(q: int, n: int) -> torch.Tensor:
    """(q, n) bool: query i (at position n - q + i) sees keys at positions <= its own."""
    return torch.arange(n)[None, :] <= torch.arange(n - q, n)[:, None]


def _attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    st = _state
    b, h, n, _ = key.shape
    q = query.shape[2]
    if q == 1 and (st is None or (st.keep is None and st.mass is None)):
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)
    # NOTE: the mask transformers hands a custom attention function is not SDPA's: build the
    # causal mask here (a chunk of q queries after n - q cached tokens), or SDPA's is_causal
    # would align it top-left and hide the cache.
    mask = _causal(q, n)[None, None]  # (1, 1, q, n)
    if st is not None and st.keep is not None:
        mask = mask & st.keep[:b, None, None, :n]
    if st is None or st.mass is None:
        return sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    out, _ = sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    # NOTE: the weights are recomputed for row 0 only: what the dense queries put on each block.
    groups = query.shape[1] // h
    k0 = key[0].repeat_interleave(groups, dim=0)  # (Hq, n, D)
    scores = (query[0] @ k0.transpose(-1, -2)) * module.scaling  # (Hq, q, n)
    scores = scores.masked_fill(~mask[0], float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).sum(dim=(0, 1))  # (n,)
    bs = st.block_size
    pad = (-n) % bs
    per_block = torch.nn.functional.pad(weights, (0, pad)).view(-1, bs).sum(-1)  # (ceil(n / bs),)
    st.mass[:per_block.numel()] += per_block.double()
    return out, None
