"""Small exact measures the premise study is built from: bags of words, ranks, shares, repetition.

All work on plain token-id lists and numpy arrays; nothing here touches a model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np


def bag(tokens: Sequence[int]) -> Counter:
    """Bag of words over token ids."""
    return Counter(int(t) for t in tokens)


def bag_cosine(a: Mapping[int, int], b: Mapping[int, int]) -> float:
    """Cosine of two bags of words; 0 when either is empty."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(n * b.get(t, 0) for t, n in a.items())
    na, nb = math.sqrt(sum(n * n for n in a.values())), math.sqrt(sum(n * n for n in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def cosine_matrix(bags: Sequence[Mapping[int, int]]) -> np.ndarray:
    """(n, n) bag-of-words cosine between every two bags."""
    n = len(bags)
    out = np.eye(n)
    for i in range(n):
        if not bags[i]:
            out[i, i] = 0.0
        for j in range(i):
            out[i, j] = out[j, i] = bag_cosine(bags[i], bags[j])
    return out


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties get the mean of the ranks they span (as ``scipy.stats.rankdata``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on tie-averaged ranks); None if < 3 pairs or constant.

    Pairs where either value is NaN or infinite are dropped first.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"spearman needs equal lengths, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return None
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / den if den else None


def shared_blocks(step_cos: np.ndarray, dist: np.ndarray, step_threshold: float, block_threshold: float,
                  min_gap: int = 1) -> np.ndarray:
    """Which blocks would be shared: some earlier block ``j <= i - min_gap`` has
    ``step_cos[i, j] >= step_threshold`` and ``dist[i, j] <= block_threshold``.

    Args:
        step_cos: (n, n) Stage-1 cosine of block ``i``'s step query with block ``j``'s step;
            NaN where ``j`` is not a Stage-1 candidate (same step, later block).
        dist: (n, n) Stage-2 distance with ``i`` as the query.
    Returns:
        (n,) bool.
    """
    n = len(step_cos)
    earlier = np.tril(np.ones((n, n), dtype=bool), k=-min_gap)
    with np.errstate(invalid="ignore"):
        ok = earlier & (np.nan_to_num(step_cos, nan=-1.0) >= step_threshold) & (dist <= block_threshold)
    return ok.any(axis=1)


def best_earlier(step_cos: np.ndarray, min_gap: int = 1) -> np.ndarray:
    """(n,) best Stage-1 cosine against an earlier block at least ``min_gap`` back; NaN if none."""
    n = len(step_cos)
    earlier = np.tril(np.ones((n, n), dtype=bool), k=-min_gap)
    masked = np.where(earlier & np.isfinite(step_cos), step_cos, -np.inf)
    best = masked.max(axis=1, initial=-np.inf)
    return np.where(np.isfinite(best), best, np.nan)


def repeated_blocks(token_ids: Sequence[int], prompt_len: int, block_size: int) -> tuple[int, int, int]:
    """Verbatim repetition of output blocks, and how much of it whole blocks can reach.

    Output blocks are the full blocks made only of output tokens (``b * block_size >=
    prompt_len``). A block *repeats at some offset* when its exact tokens occur earlier in the
    output, ending at or before the block's start, at any offset; *block-aligned* when an
    earlier output block holds them.

    Returns:
        (output blocks, repeated at some offset, repeated block-aligned).
    """
    first = -(-prompt_len // block_size)
    last = len(token_ids) // block_size
    seen_windows: set[tuple[int, ...]] = set()
    seen_blocks: set[tuple[int, ...]] = set()
    any_offset = aligned = 0
    next_window = prompt_len  # start of the next output window to index
    for b in range(first, last):
        lo = b * block_size
        while next_window + block_size <= lo:
            seen_windows.add(tuple(token_ids[next_window:next_window + block_size]))
            next_window += 1
        tokens = tuple(token_ids[lo:lo + block_size])
        any_offset += tokens in seen_windows
        aligned += tokens in seen_blocks
        seen_blocks.add(tokens)
    return max(last - first, 0), any_offset, aligned
