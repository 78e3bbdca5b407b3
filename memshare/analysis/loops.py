"""Repetition-loop detection and divergence points of generated token lists."""

from __future__ import annotations

from collections.abc import Sequence

# The packaged model's greedy loops have periods of 1-2 tokens (" = = =") up to sentence
# length (9-10 tokens for "196(19) = " or " = 3f + 3 + 3"); 32 covers a short sentence and
# a 96-token window still holds three copies of it.
LOOP_WINDOW = 96
LOOP_MAX_PERIOD = 32


def loop_period(tokens: Sequence[int], window: int = LOOP_WINDOW, max_period: int = LOOP_MAX_PERIOD) -> int | None:
    """The smallest period ``p <= max_period`` with which the last ``window`` tokens repeat.

    ``tokens[-window:][k] == tokens[-window:][k - p]`` for every ``k >= p``; so the tail holds at
    least ``window / p`` copies of a ``p``-token unit (``" = = ="`` has period 2). None: no
    such period, or fewer than ``window`` tokens.
    """
    if max_period < 1 or window <= max_period:
        raise ValueError(f"need 1 <= max_period < window, got max_period={max_period}, window={window}")
    if len(tokens) < window:
        return None
    tail = list(tokens[-window:])
    for p in range(1, max_period + 1):
        if tail[p:] == tail[:-p]:
            return p
    return None


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first token where ``a`` and ``b`` differ (a length difference counts); None if equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
