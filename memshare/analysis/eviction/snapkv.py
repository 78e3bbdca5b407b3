"""``snapkv``: SnapKV at decode time (arXiv 2404.14469; kvpress's ``DecodingPress`` schedule).

Every ``snap_interval`` decoded tokens the cache is recompressed: the newest ``snap_window``
queries (the observation window) vote for the keys they attend to; votes are averaged over
the window, smoothed along positions with an average pool of ``snap_kernel`` (SnapKV's
"clustering") and averaged over the query heads of each KV head. The window itself stays.
"""

from __future__ import annotations

import torch

from memshare.analysis.eviction.base import EvictionMethod, pool, window_attention


class SnapKV(EvictionMethod):
    name = "snapkv"

    @property
    def interval(self) -> int:
        return self.settings.snap_interval

    @property
    def window(self) -> int:
        return self.settings.snap_window

    def protected(self, n: int) -> torch.Tensor:
        return torch.arange(n) >= n - self.window

    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(H, n) pooled observation-window attention."""
        votes = window_attention(window, keys, keep).mean(dim=2)  # (H, g, n)
        h, g, n = votes.shape
        return pool(votes.reshape(h * g, n), self.settings.snap_kernel, "avg").view(h, g, n).mean(dim=1)
