"""``h2o``: Heavy-Hitter Oracle, accumulated attention plus recent tokens (arXiv 2306.14048).

Every query's attention probabilities are added to the keys they land on (per KV head, summed
over its query heads). When the cache is full, one token is evicted per decoded token: the
lowest accumulated score outside the ``h2o_recent_share`` of the budget kept as the newest
tokens (half heavy hitters, half recent, as in the paper).
"""

from __future__ import annotations

import torch

from memshare.analysis.eviction.base import EvictionMethod, window_attention


class H2O(EvictionMethod):
    name = "h2o"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._acc: dict[int, torch.Tensor] = {}  # layer -> (H, n) accumulated attention

    @property
    def recent(self) -> int:
        return max(1, round(self.settings.h2o_recent_share * self.budget))

    def observe(self, layer: int, queries: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> None:
        """Add the new queries' (Hq, q, D) attention to the running sums."""
        probs = window_attention(queries, keys, keep)  # (H, g, q, n)
        acc = self._acc.get(layer)
        grown = torch.zeros(keys.shape[0], keys.shape[1])
        if acc is not None:
            grown[:, :acc.shape[1]] = acc
        self._acc[layer] = grown + probs.sum(dim=(1, 2))

    def protected(self, n: int) -> torch.Tensor:
        return torch.arange(n) >= n - self.recent

    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(H, n) accumulated attention."""
        return self._acc[layer]
