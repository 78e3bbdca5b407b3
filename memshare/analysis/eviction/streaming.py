"""``streaming``: StreamingLLM, attention sinks plus a recent window (arXiv 2309.17453).

The first ``n_sink`` tokens (the sinks every later query leans on) and the newest tokens stay;
everything between them is evicted, oldest first. Keys keep the positions they were written at
(as kvpress's ``StreamingLLMPress``; the paper re-rotates them inside the window).
"""

from __future__ import annotations

import torch

from memshare.analysis.eviction.base import EvictionMethod


class StreamingLLM(EvictionMethod):
    name = "streaming"

    def protected(self, n: int) -> torch.Tensor:
        return torch.arange(n) < self.settings.n_sink

    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Newer is better: (H, n) = the position."""
        return torch.arange(keys.shape[1], dtype=torch.float32).expand(keys.shape[0], -1)
