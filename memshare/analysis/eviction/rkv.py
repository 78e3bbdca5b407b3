"""``rkv``: R-KV, importance minus redundancy, for reasoning traces (arXiv 2505.24133).

Every ``rkv_buffer`` decoded tokens the cache is compressed back below the budget. Each kept
token outside the newest ``rkv_window`` gets

* importance: the window queries' attention (logits max-reduced over each KV head's query
  heads, softmax over the older kept keys, mean over the window, max-pooled with
  ``rkv_kernel``);
* redundancy: its mean cosine similarity to the other kept keys of the head, where each token's
  most recent near-copy (cosine > ``rkv_similarity``) is not held against it, so the newest
  copy of repeated content survives; softmax over the kept keys;

and the score ``lambda * importance - (1 - lambda) * redundancy``. The window always stays.
"""

from __future__ import annotations

import torch

from memshare.analysis.eviction.base import EvictionMethod, pool, softmax_masked, visible, window_logits


class RKV(EvictionMethod):
    name = "rkv"

    @property
    def interval(self) -> int:
        return self.settings.rkv_buffer

    @property
    def window(self) -> int:
        return self.settings.rkv_window

    def protected(self, n: int) -> torch.Tensor:
        return torch.arange(n) >= n - self.window

    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        s = self.settings
        n, w = keys.shape[1], window.shape[1]
        older = keep & (torch.arange(n) < n - w)[None, :]  # (H, n) candidates for eviction
        logits = window_logits(window, keys).amax(dim=1)  # (H, w, n)
        importance = softmax_masked(logits, visible(older, w)).mean(dim=1)  # (H, n)
        importance = pool(importance, s.rkv_kernel, "max")
        return s.rkv_lambda * importance - (1.0 - s.rkv_lambda) * redundancy(keys, older, s.rkv_similarity)


def redundancy(keys: torch.Tensor, keep: torch.Tensor, threshold: float) -> torch.Tensor:
    """(H, n) R-KV redundancy of the kept keys (0 elsewhere); ``keys`` (H, n, D), ``keep`` (H, n)."""
    unit = torch.nn.functional.normalize(keys.float(), dim=-1)
    sim = unit @ unit.transpose(1, 2)  # (H, n, n)
    pair = keep[:, :, None] & keep[:, None, :]
    pair &= ~torch.eye(keys.shape[1], dtype=torch.bool)[None]
    sim = sim.masked_fill(~pair, 0.0)
    # NOTE: row i's most recent near-copy j does not count against j: of a run of copies,
    # the newest one is kept.
    idx = torch.arange(keys.shape[1])
    latest = torch.where(sim > threshold, idx, -1).amax(dim=-1)  # (H, n): -1 when none
    rows = latest >= 0
    sim[rows.nonzero(as_tuple=True) + (latest[rows],)] = 0.0
    mean = sim.sum(dim=1) / keep.sum(-1, keepdim=True).clamp(min=1)  # (H, n) over rows i
    return softmax_masked(mean, keep)
