"""Stage 2 of MemShare: KV distance between a query block and its Stage-1 candidates.

Let ``X`` be the tensors ``config.distance`` selects, each over all layers, heads, tokens
and dims of a block: ``kv`` = stored K and V; ``k`` = stored K; ``v`` = V; ``k_unrope`` = K
rotated back by each token's position (``memshare.core.rope``); ``k_unrope_v`` = that and V.
For the query block ``Q`` and a candidate ``P``:

* ``euclidean``: ``d = sqrt( sum_X ||Q_X - P_X||^2 / sum_X ||Q_X||^2 )``, the distance
  relative to the query's norm (0 = identical, about 1.41 for unrelated vectors of equal norm).
* ``cosine``: ``d = 1 - <Q, P> / (||Q|| ||P||)`` over the same vectors concatenated
  (0..2). Both zero gives 0; one zero gives 1.

Every term is a sum over heads and layers, so a tensor-parallel shard (some heads) or a
pipeline stage (some layers) computes ``stage2_partials`` on its part, the parts are
*added* (``+`` or an all-reduce of ``.sums``) and ``finish`` turns the total into
distances. All candidates are measured in one vectorized pass per tensor, in float32, on
the device the tensors live on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from memshare.core.config import DISTANCES, METRICS
from memshare.core.rope import RopeSpec, unrotate


@dataclass(frozen=True, slots=True, eq=False)
class Stage2Partials:
    """Additive partial sums for C candidates.

    ``sums``: euclidean ``(C, 2)`` = [sum ||Q-P||^2, sum ||Q||^2]; cosine ``(C, 3)`` =
    [<Q, P>, ||Q||^2, ||P||^2]; float32.
    """

    metric: str
    sums: torch.Tensor

    def __post_init__(self) -> None:
        width = 2 if self.metric == "euclidean" else 3
        if self.metric not in METRICS or self.sums.ndim != 2 or self.sums.shape[1] != width:
            raise ValueError(f"{self.metric} partials need sums of shape (C, {width}), got {tuple(self.sums.shape)}")

    def __add__(self, other: Stage2Partials) -> Stage2Partials:
        if other.metric != self.metric or other.sums.shape != self.sums.shape:
            raise ValueError("can only add partials of the same metric and number of candidates")
        return Stage2Partials(self.metric, self.sums + other.sums.to(self.sums.device))


def stage2_partials(q_k: torch.Tensor | None, q_v: torch.Tensor | None, c_k: torch.Tensor | None,
                    c_v: torch.Tensor | None, *, distance: str = "k_unrope", metric: str = "euclidean",
                    q_pos: torch.Tensor | None = None, c_pos: torch.Tensor | None = None,
                    rope: RopeSpec | None = None) -> Stage2Partials:
    """Partial sums of the Stage-2 distance over the layers/heads held here.

    Args:
        q_k, q_v: query block K and V, (L, H, T, D) (any float dtype). A tensor the
            distance does not use may be None.
        c_k, c_v: candidate blocks, (C, L, H, T, D).
        distance: one of ``DISTANCES`` (see the module docstring).
        metric: ``euclidean`` or ``cosine``.
        q_pos: (T,) positions of the query's tokens; c_pos: (C, T) of each candidate's
            tokens (``block_positions``). Needed by the ``k_unrope`` distances only.
        rope: the model's RoPE (``rope_spec_from_hf_config``); ``k_unrope`` distances only.
    Returns:
        ``Stage2Partials`` with C rows.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)}; got {distance!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    pairs, unrotated = [], []
    if distance in ("kv", "k"):
        pairs.append(_checked("k", q_k, c_k))
    if distance in ("k_unrope", "k_unrope_v"):
        q, c = _checked("k", q_k, c_k)
        if rope is None or q_pos is None or c_pos is None:
            raise ValueError(f"distance {distance!r} needs rope, q_pos and c_pos")
        num_c, t = c.shape[0], q.shape[-2]
        if tuple(q_pos.shape) != (t,) or tuple(c_pos.shape) != (num_c, t):
            raise ValueError(f"positions must be q_pos ({t},) and c_pos ({num_c}, {t}); "
                             f"got {tuple(q_pos.shape)} and {tuple(c_pos.shape)}")
        c_pos = c_pos.reshape(num_c, *([1] * (q.ndim - 2)), t)  # (C, 1, .., 1, T)
        unrotated.append((unrotate(q, q_pos, rope.inv_freq, rope.is_neox, rope.scaling),
                          unrotate(c, c_pos, rope.inv_freq, rope.is_neox, rope.scaling)))
        pairs.append(unrotated[-1])
    if distance in ("kv", "v", "k_unrope_v"):
        pairs.append(_checked("v", q_v, c_v))
    num_c = pairs[0][1].shape[0]
    sums = torch.zeros(num_c, 2 if metric == "euclidean" else 3, dtype=torch.float32, device=pairs[0][1].device)
    for q, c in pairs:
        owned = c.dtype != torch.float32 or any(c is u for _, u in unrotated)  # a scratch copy
        q, c = q.float(), c.float()
        q_sq = q.square().sum()
        if metric == "euclidean":
            diff = c.sub_(q) if owned else c - q  # (C, L, H, T, D)
            sums[:, 0] += diff.square_().flatten(1).sum(1)  # (C,)
            sums[:, 1] += q_sq
        else:
            c_flat = c.flatten(1)  # (C, N)
            sums[:, 0] += c_flat @ q.flatten()
            sums[:, 1] += q_sq
            sums[:, 2] += c_flat.square().sum(1)
    return Stage2Partials(metric, sums)


def pair_partials(blocks: list[torch.Tensor], q_rows: torch.Tensor, c_rows: torch.Tensor, *,
                  metric: str = "euclidean") -> Stage2Partials:
    """Partial sums of many (query, candidate) pairs over blocks gathered once.

    The batched form of ``stage2_partials`` that the worker runs per engine step: each block is
    gathered (and its RoPE undone) once, however many jobs name it, and every pair of the step
    is measured in a fixed number of tensor ops instead of a few dozen per job.

    Args:
        blocks: the distance's tensors, each ``(E, ...)`` over E distinct blocks, e.g. K with
            RoPE undone and V, ``(E, L, H, T, D)``; any float dtype (summed in float32).
        q_rows, c_rows: ``(P,)`` long rows of ``blocks``: pair i compares block ``c_rows[i]``
            (candidate) with block ``q_rows[i]`` (query).
        metric: ``euclidean`` or ``cosine``.
    Returns:
        ``Stage2Partials`` with P rows, equal to ``stage2_partials`` of each pair.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if not blocks or q_rows.shape != c_rows.shape or q_rows.ndim != 1:
        raise ValueError("pair_partials needs at least one tensor and q_rows, c_rows of the same shape (P,)")
    num_p = q_rows.numel()
    sums = torch.zeros(num_p, 2 if metric == "euclidean" else 3, dtype=torch.float32, device=blocks[0].device)
    for x in blocks:
        flat = x.flatten(1).float()  # (E, N)
        sq = flat.square().sum(1)  # (E,)
        q = flat.index_select(0, q_rows)  # (P, N)
        c = flat.index_select(0, c_rows)
        sums[:, 1] += sq.index_select(0, q_rows)
        if metric == "euclidean":
            sums[:, 0] += c.sub_(q).square_().sum(1)
        else:
            sums[:, 0] += c.mul_(q).sum(1)
            sums[:, 2] += sq.index_select(0, c_rows)
    return Stage2Partials(metric, sums)


def finish(partials: Stage2Partials) -> torch.Tensor:
    """Distances (C,) from (summed) partials; see the module docstring for the definition."""
    s = partials.sums
    if partials.metric == "euclidean":
        num, den = s[:, 0].clamp_min(0.0), s[:, 1]
        ratio = torch.where(den > 0, num / den.clamp_min(torch.finfo(s.dtype).tiny),
                            torch.where(num > 0, torch.inf, 0.0))
        return ratio.sqrt()
    dot, qq, pp = s[:, 0], s[:, 1], s[:, 2]
    den = (qq * pp).sqrt()
    sim = torch.where(den > 0, dot / den.clamp_min(torch.finfo(s.dtype).tiny),
                      torch.where(qq + pp == 0, 1.0, 0.0))
    return (1.0 - sim).clamp(0.0, 2.0)


def finish_rows(metric: str, rows) -> list[float]:
    """``finish`` of partial-sum rows given as lists on the host: the same formulas in float32,
    in numpy (within one ulp of ``finish``: numpy's sqrt is correctly rounded, torch's vectorized
    CPU sqrt sometimes is not). The scheduler decides on a few hundred rows per step, where
    torch's fixed cost per op would dominate."""
    width = 2 if metric == "euclidean" else 3
    if sum(map(len, rows)) != width * len(rows):
        raise ValueError(f"{metric} partial sums have {width} values per row")
    s = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float32, count=width * len(rows)).reshape(-1, width)
    tiny = np.finfo(np.float32).tiny
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # the where() picks finite values
        if metric == "euclidean":
            num, den = np.maximum(s[:, 0], np.float32(0.0)), s[:, 1]
            ratio = np.where(den > 0, num / np.maximum(den, tiny),
                             np.where(num > 0, np.float32(np.inf), np.float32(0.0)))
            return np.sqrt(ratio).tolist()
        dot, qq, pp = s[:, 0], s[:, 1], s[:, 2]
        den = np.sqrt(qq * pp)
        sim = np.where(den > 0, dot / np.maximum(den, tiny), np.where(qq + pp == 0, np.float32(1.0), np.float32(0.0)))
        return np.clip(np.float32(1.0) - sim, np.float32(0.0), np.float32(2.0)).tolist()


def block_distances(q_k, q_v, c_k, c_v, **kwargs) -> torch.Tensor:
    """``finish(stage2_partials(...))`` for a single process holding all heads: (C,)."""
    return finish(stage2_partials(q_k, q_v, c_k, c_v, **kwargs))


def block_positions(block_indices, block_size: int, device=None) -> torch.Tensor:
    """Token positions of blocks: an int gives (T,), a sequence or 1-D tensor gives (C, T)."""
    idx = torch.as_tensor(block_indices, dtype=torch.long, device=device)
    offsets = torch.arange(block_size, dtype=torch.long, device=idx.device)
    return idx[..., None] * block_size + offsets


def _checked(name: str, q: torch.Tensor | None, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if q is None or c is None:
        raise ValueError(f"this distance needs the query's and the candidates' {name.upper()}")
    if c.ndim != q.ndim + 1 or tuple(c.shape[1:]) != tuple(q.shape):
        raise ValueError(f"candidate {name.upper()} must have shape (C, *{tuple(q.shape)}), got {tuple(c.shape)}")
    return q, c
