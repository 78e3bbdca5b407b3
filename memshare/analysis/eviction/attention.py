"""Apply ``EvictionMethod``s inside a Hugging Face model's attention, one per batch row (CPU).

``evicting(model, evictors)`` registers one attention function with transformers'
``AttentionInterface`` and switches the model to it inside a ``with`` block; row ``b`` of the
batch is governed by ``evictors[b]`` (``None``: that row keeps everything); a batch of one
row with several evictors is a prompt prefilled once for all of them. Each ``Evictor``
keeps, per layer, a (H, n) mask of visible tokens. While no row has evicted anything the
function calls transformers' own SDPA unchanged, so a run that never evicts reproduces the
dense model bit for bit. After each layer's attention every row's method observes and, when
a head is full, compresses (timed: the method's overhead; the masked attention itself is not
timed, since physical eviction would make it cheaper, not dearer).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager

import torch

from memshare.analysis.eviction.base import EvictionMethod

ATTN_NAME = "memshare_evict"
_active: Sequence[Evictor | None] | None = None


class Evictor:
    """One request's eviction state across the layers of a model.

    Attributes:
        kept_history: tokens layer 0's heads held at each forward pass (the same in every layer).
        first_eviction_at: cache length when the first token was evicted (None: never).
        overhead_s: time spent observing, scoring and selecting.
    """

    def __init__(self, method: EvictionMethod) -> None:
        self.method = method
        self._keep: dict[int, torch.Tensor] = {}  # layer -> (H, n) bool
        self._window: dict[int, torch.Tensor] = {}  # layer -> (Hq, w, D) newest queries
        self.kept_history: list[int] = []
        self.first_eviction_at: int | None = None
        self.overhead_s = 0.0

    @property
    def peak_kept(self) -> int:
        return max(self.kept_history, default=0)

    def keep_mask(self, layer: int) -> torch.Tensor:
        """(H, n) bool: which tokens of ``layer`` the next query would see (copy)."""
        return self._keep[layer].clone()

    def visible_now(self, layer: int, num_heads: int, n: int) -> torch.Tensor:
        """(H, n) mask for a forward pass whose cache now holds ``n`` tokens (new ones visible)."""
        keep = torch.ones(num_heads, n, dtype=torch.bool)
        old = self._keep.get(layer)
        if old is not None:
            keep[:, :old.shape[1]] = old
        if layer == 0:
            self.kept_history.append(int(keep.sum(-1).max()))
        return keep

    def update(self, layer: int, queries: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> None:
        """After ``layer``'s attention: ``queries`` (Hq, q, D) new, ``keys`` (H, n, D), ``keep`` (H, n)."""
        t0 = time.perf_counter()
        m = self.method
        m.observe(layer, queries, keys, keep)
        w = m.window
        if w:
            prev = self._window.get(layer)
            self._window[layer] = (queries if prev is None else torch.cat([prev, queries], dim=1))[:, -w:]
        if int(keep.sum(-1).max()) >= m.budget:
            new = m.compress(layer, self._window[layer] if w else queries[:, :0], keys, keep)
            if self.first_eviction_at is None and not bool(new.all()):
                self.first_eviction_at = keys.shape[1]
            keep = new
        self._keep[layer] = keep
        self.overhead_s += time.perf_counter() - t0


@contextmanager
def evicting(model, evictors: Sequence[Evictor | None]):
    """Route ``model``'s attention through ``evictors`` (one per batch row) inside the block."""
    global _active
    from transformers import AttentionInterface

    AttentionInterface.register(ATTN_NAME, _attention)
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTN_NAME)
    _active = list(evictors)
    try:
        yield
    finally:
        _active = None
        model.set_attn_implementation(before)


def _attention(module, query, key, value, attention_mask, **kwargs):
    """query (B, Hq, q, D), key/value (B, H, n, D) with the new tokens already appended."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if _active is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    layer, (b, h, n, _), q = module.layer_idx, key.shape, query.shape[2]
    keeps = [ev.visible_now(layer, h, n) if ev is not None else None for ev in _active]
    shared = b == 1 < len(keeps)  # one prompt prefilled once for every row (see decode_batch)
    if shared and not all(k is None or bool(k.all()) for k in keeps):
        raise ValueError("a shared prefill must come before any eviction")
    if all(k is None or bool(k.all()) for k in keeps):
        out = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    else:
        full = torch.ones(h, n, dtype=torch.bool)
        mask = torch.stack([full if k is None else k for k in keeps])  # (B, H, n)
        mask = mask.repeat_interleave(query.shape[1] // h, dim=1)[:, :, None, :]  # (B, Hq, 1, n)
        if q > 1:
            mask = mask & (torch.arange(n)[None, :] <= torch.arange(n - q, n)[:, None])[None, None]
        out = sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    for row, (ev, keep) in enumerate(zip(_active, keeps)):
        if ev is not None:
            ev.update(layer, query[0 if shared else row].detach(), key[0 if shared else row].detach(), keep)
    return out
