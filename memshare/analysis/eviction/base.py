"""The small base class of the eviction baselines, and the attention scores they share.

A method decides, per layer and KV head, which cached tokens stay visible. The runner
(``memshare.analysis.eviction.attention.Evictor``) calls, for every layer and forward pass,
after the layer's attention:

1. ``observe(layer, queries, keys, keep)`` (H2O accumulates attention here);
2. when a head holds ``budget`` tokens, ``compress(layer, window, keys, keep)``: the method's
   ``score`` ranks the kept tokens, ``protected`` ones always stay, and the best
   ``budget - interval`` survive. The next ``interval`` tokens fill the cache up to
   ``budget`` again, so no head ever holds more than ``budget`` tokens while attending
   (unless what the method protects is larger than that).

Shapes (batch 1, the batch dimension dropped): ``queries`` (Hq, q, D) and ``window``
(Hq, w, D) after RoPE; ``keys`` (H, n, D) as stored; ``keep`` (H, n) bool, True = visible.
Every head keeps the same number of tokens, so the physical KV of a layer is ``budget`` x H.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass(frozen=True, slots=True)
class EvictionSettings:
    """Knobs of the baselines; defaults from each paper, windows scaled to budgets of a few hundred tokens.

    Args:
        n_sink: StreamingLLM's attention sinks (first tokens; the paper uses 4).
        h2o_recent_share: H2O's share of the budget kept as recent tokens (the paper: half).
        snap_window / snap_kernel / snap_interval: SnapKV's observation window (queries), its
            pooling kernel (5, as kvpress) and the decoded tokens between recompressions.
        rkv_window / rkv_kernel / rkv_lambda / rkv_buffer / rkv_similarity: R-KV's observation
            window (8) and max-pool kernel (7), importance weight lambda (0.1 in the paper),
            decoded tokens between compressions (the paper's buffer is 128; 32 here, like
            SnapKV's interval, because the budgets are small) and the cosine above which two
            keys count as copies (0.5).
        recent: random eviction's protected window of newest tokens.
        seed: random eviction's RNG seed.
    """

    n_sink: int = 4
    h2o_recent_share: float = 0.5
    snap_window: int = 32
    snap_kernel: int = 5
    snap_interval: int = 32
    rkv_window: int = 8
    rkv_kernel: int = 7
    rkv_lambda: float = 0.1
    rkv_buffer: int = 32
    rkv_similarity: float = 0.5
    recent: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_sink", "snap_window", "snap_kernel", "snap_interval", "rkv_window", "rkv_kernel",
                     "rkv_buffer", "recent"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("h2o_recent_share", "rkv_lambda", "rkv_similarity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


class EvictionMethod(ABC):
    """Base of the eviction baselines: subclasses implement ``score`` (and maybe ``protected``).

    Args:
        budget: the most tokens a KV head holds while attending.
        prompt_len: tokens of the prompt (positions ``0 .. prompt_len - 1``).
        settings: the methods' knobs.
    """

    name: ClassVar[str] = "base"
    protects_prompt: ClassVar[bool] = False

    def __init__(self, budget: int, prompt_len: int, settings: EvictionSettings) -> None:
        if budget < 2:
            raise ValueError(f"an eviction budget must be at least 2 tokens, got {budget}")
        self.budget = budget
        self.prompt_len = prompt_len
        self.settings = settings

    @property
    def interval(self) -> int:
        """Tokens decoded between two compressions (1: evict as each token arrives)."""
        return 1

    @property
    def window(self) -> int:
        """Newest queries per layer that ``score`` receives (0: none)."""
        return 0

    def observe(self, layer: int, queries: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> None:  # noqa: B027
        """Called after every forward pass of ``layer``; ``queries`` (Hq, q, D) are the new ones.
        A hook with nothing to do by default (methods that accumulate attention override it)."""

    def protected(self, n: int) -> torch.Tensor:
        """(n,) bool: positions this method never evicts."""
        return torch.zeros(n, dtype=torch.bool)

    @abstractmethod
    def score(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(H, n) float: higher stays. Only kept, unprotected positions are compared."""

    def compress(self, layer: int, window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The new (H, n) keep mask: protected tokens, then the best-scored, ``budget - interval`` in all."""
        n = keep.shape[-1]
        scores = self.score(layer, window, keys, keep).float()
        scores = scores.masked_fill(self.protected(n)[None, :] & keep, math.inf)
        scores = scores.masked_fill(~keep, -math.inf)
        kept = int(keep.sum(-1).max())
        # NOTE: protected tokens are never evicted, even when they alone exceed the target.
        target = max(self.budget - self.interval, int((self.protected(n)[None, :] & keep).sum(-1).max()))
        target = min(target, kept)
        idx = scores.topk(target, dim=-1).indices  # (H, target)
        return torch.zeros_like(keep).scatter_(-1, idx, True)


def window_logits(window: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Scaled dot products of the newest ``w`` queries with every key.

    Args:
        window: (Hq, w, D) queries of positions ``n - w .. n - 1``; keys: (H, n, D).
    Returns:
        (H, g, w, n): per KV head, its ``g = Hq / H`` query heads (grouped-query attention).
    """
    hq, w, d = window.shape
    h = keys.shape[0]
    q = window.float().view(h, hq // h, w, d)  # (H, g, w, D)
    return torch.einsum("hgwd,hnd->hgwn", q, keys.float()) / math.sqrt(d)


def visible(keep: torch.Tensor, w: int) -> torch.Tensor:
    """(H, w, n) bool: what each of the newest ``w`` queries may attend to (kept and not later)."""
    n = keep.shape[-1]
    causal = torch.arange(n)[None, :] <= torch.arange(n - w, n)[:, None]  # (w, n)
    return keep[:, None, :] & causal[None]


def softmax_masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where ``mask``; rows with nothing visible give zeros."""
    return logits.masked_fill(~mask, -math.inf).softmax(-1).nan_to_num(0.0)


def window_attention(window: torch.Tensor, keys: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(H, g, w, n) attention probabilities of the newest ``w`` queries over the kept keys."""
    return softmax_masked(window_logits(window, keys), visible(keep, window.shape[1])[:, None])


def pool(scores: torch.Tensor, kernel: int, kind: str) -> torch.Tensor:
    """Smooth (H, n) scores along positions with a centred ``kernel`` (``avg`` or ``max``)."""
    x = scores[None]
    if kind == "max":
        return torch.nn.functional.max_pool1d(x, kernel, stride=1, padding=kernel // 2)[0, :, :scores.shape[-1]]
    return torch.nn.functional.avg_pool1d(x, kernel, stride=1, padding=kernel // 2,
                                          count_include_pad=False)[0, :, :scores.shape[-1]]
