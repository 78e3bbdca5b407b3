"""Selection rules turned into schedules: which block is shared (or dropped), with what, and when.

An ``Action`` acts when the replay's cache holds ``at_full`` full blocks (the engine decides on a
block when it fills, or later with a delay): ``block`` then reads ``target``'s K/V (sharing, as a
block-table remap does) or, with ``target=None``, is dropped from attention (block eviction).

Every rule scores the blocks it could act on once, from the trace's ``DensePass``; a point on its
front is the actions whose score passes a threshold. So the expensive part (the dense pass,
Stage 2 on the dense KV) is paid once per trace whatever the number of thresholds.

NOTE: MemShare's Stage 2 here measures the dense KV. In the engine it measures the cache as it
is, where earlier shares have already changed later blocks' K/V; ``memshare analyze --fidelity``
runs the real policy step by step for that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from memshare.analysis.kvcache import block_kv
from memshare.analysis.study.dense import DensePass
from memshare.analysis.traces import Trace
from memshare.core.config import MemShareConfig
from memshare.core.policies import make_policy
from memshare.core.rope import RopeSpec
from memshare.core.stage2 import block_distances, block_positions


@dataclass(frozen=True, slots=True)
class Action:
    at_full: int
    block: int
    target: int | None  # None: drop the block


@dataclass(frozen=True, slots=True)
class Scored:
    """An action a rule could take, with the rule's score (lower = act first)."""

    action: Action
    score: float


def distances_to(dense: DensePass, block: int, candidates: Sequence[int], distance: str, rope: RopeSpec | None,
                 metric: str = "euclidean") -> torch.Tensor:
    """(C,) Stage-2 distances of ``block`` to ``candidates`` on the dense KV."""
    bs = dense.block_size
    q_k, q_v = block_kv(dense.keys, dense.values, [block], bs)
    c_k, c_v = block_kv(dense.keys, dense.values, list(candidates), bs)
    return block_distances(q_k[0], q_v[0], c_k, c_v, distance=distance, metric=metric,
                           q_pos=block_positions(block, bs), c_pos=block_positions(list(candidates), bs), rope=rope)


def policy_scores(dense: DensePass, trace: Trace, config: MemShareConfig, vocab, rope: RopeSpec | None) -> list[Scored]:
    """Drive a real policy over the trace; each proposal becomes its closest candidate, scored by distance.

    A point at block threshold ``t`` keeps the scores <= ``t``: exactly what ``decide`` accepts
    at ``t`` (the closest candidate at or below it). Random proposals need no distance (score 0).
    """
    policy = make_policy(config.replace(block_threshold=2.0), vocab=vocab)
    ids, bs = trace.token_ids, dense.block_size
    policy.add_request("study", list(trace.prompt_ids))
    out = []
    for full in range(dense.first_output_block + 1, dense.num_full + 1):
        for proposal in policy.on_tokens("study", ids[:full * bs + 1], full):
            q = proposal.query.block_index
            cands = [c.block_index for c in proposal.candidates]
            if not proposal.needs_distance:
                out.append(Scored(Action(full, q, cands[0]), 0.0))
                continue
            dist = distances_to(dense, q, cands, config.distance, rope, config.metric)
            target = policy.decide(proposal, dist)
            if target is not None:
                out.append(Scored(Action(full, q, target.block_index), float(dist[cands.index(target.block_index)])))
    policy.remove_request("study")
    return out


def nearest_targets(dense: DensePass, distance: str, rope: RopeSpec | None, min_gap: int = 1) -> dict[int, tuple[int, float]]:
    """Each output block's closest earlier output block (at least ``min_gap`` back): block -> (target, distance).

    The oracles and proxies choose *which* blocks to share; this chooses what each points at, as
    Stage 2 would with every earlier output block as a candidate."""
    out = {}
    first = dense.first_output_block
    for b in dense.output_blocks():
        cands = list(range(first, b - min_gap + 1))
        if cands:
            d = distances_to(dense, b, cands, distance, rope)
            i = int(torch.argmin(d))
            out[b] = (cands[i], float(d[i]))
    return out


def attention_scores(dense: DensePass, targets: dict[int, tuple[int, float]], *, window: int | None,
                     delay: int = 0) -> list[Scored]:
    """Share each block with its nearest earlier block, scored by the attention it gets (relative
    to uniform, ``DensePass.relative_mass``).

    ``window=None``: an oracle, which knows the future: what every later query gives the block in
    the dense run, decided ``delay`` blocks after it fills. ``window=w``: a causal proxy an engine
    could compute from its own attention (H2O-style statistics): what the ``w`` blocks of queries
    after it gave it, decided then (``w`` blocks after it fills).
    """
    out = []
    for b, (t, _) in targets.items():
        if window is None:
            score, at = dense.future_mass(b), b + 1 + delay
        else:
            score, at = dense.past_mass(b, window), b + 1 + window
        if at <= dense.num_full and not math.isnan(score):
            out.append(Scored(Action(at, b, t), score))
    return out


def select(scored: Sequence[Scored], threshold: float) -> list[Action]:
    return [s.action for s in scored if s.score <= threshold]


def cheapest(scored: Sequence[Scored], fraction: float, eligible: int) -> list[Action]:
    """The ``fraction`` of ``eligible`` blocks with the lowest scores (ties by block index)."""
    k = int(round(fraction * eligible))
    return [s.action for s in sorted(scored, key=lambda s: (s.score, s.action.block))[:k]]


def as_drops(actions: Sequence[Action]) -> list[Action]:
    """The same blocks at the same moments, dropped instead of shared (does substitution beat eviction?)."""
    return [Action(a.at_full, a.block, None) for a in actions]


def matched_random(reference: Sequence[Action], dense: DensePass, seed: int) -> list[Action]:
    """Random sharing matched to ``reference``: as many actions at the same moments, so the same
    memory-time is freed, on uniformly drawn eligible blocks (output blocks full at that moment,
    not yet acted on) with uniformly drawn earlier output blocks as targets."""
    rng = random.Random(seed)
    first, done, out = dense.first_output_block, set(), []
    for a in sorted(reference, key=lambda a: a.at_full):
        pool = [b for b in range(first + 1, a.at_full) if b not in done]
        if not pool:
            continue
        b = rng.choice(pool)
        done.add(b)
        out.append(Action(a.at_full, b, rng.randrange(first, b)))
    return out


def streaming_drops(dense: DensePass, window: int) -> list[Action]:
    """Block-level StreamingLLM: the prompt (the sinks) and the ``window`` newest full output blocks stay."""
    first = dense.first_output_block
    return [Action(full, full - 1 - window, None) for full in range(first + window + 1, dense.num_full + 1)]


def heavy_hitter_drops(dense: DensePass, cap: int, recent: int = 2) -> list[Action]:
    """Block-level H2O: at most ``cap`` full output blocks stay; over it, drop the one (not among the
    ``recent`` newest) with the least attention accumulated so far (causal: queries up to now)."""
    first, kept, out = dense.first_output_block, [], []
    for full in range(first + 1, dense.num_full + 1):
        kept.append(full - 1)
        while len(kept) > cap:
            old = kept[:-recent] if recent else kept
            acc = {b: dense.mass[b + 1:full, b].sum() for b in old}
            b = min(old, key=lambda x: (acc[x], x))
            kept.remove(b)
            out.append(Action(full, b, None))
    return out
