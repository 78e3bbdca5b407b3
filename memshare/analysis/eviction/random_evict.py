"""``random-evict``: random eviction that keeps the prompt and the newest tokens (a floor).

Once a head holds ``budget`` tokens, one uniformly random output token outside the newest
``recent`` (fewer when prompt + ``recent`` would not fit the budget) is evicted per decoded token, independently per layer and KV head (as kvpress's
``RandomPress``). Seeded, so a rerun evicts the same tokens.
"""

from __future__ import annotations

import torch

from memshare.analysis.eviction.base import EvictionMethod


class RandomEvict(EvictionMethod):
    name = "random-evict"
    protects_prompt = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rng = torch.Generator().manual_seed(self.settings.seed)

    def protected(self, n: int) -> torch.Tensor:
        pos = torch.arange(n)
        recent = max(1, min(self.settings.recent, self.budget - 1 - self.prompt_len))
        return (pos < self.prompt_len) | (pos >= n - recent)

    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return torch.rand(keep.shape, generator=self._rng)
