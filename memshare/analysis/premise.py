"""The paper's premise on one trace: do similar reasoning steps have close KV blocks?

For a dense trace and its K/V (``traces.sequence_kv``), per full output block:

* its step (the core's ``StepTracker``, majority rule) and the Stage-1 cosine of its step
  query with each earlier block's step (``step_cos``; NaN for the same step, as Stage 1
  never searches the query's own step);
* the bag-of-words cosine of the blocks' own tokens (``block_cos``);
* the Stage-2 distance from each block (query) to every block, for every distance
  definition (``memshare.core.stage2.block_distances``, euclidean metric).

``summarize`` pools the pairs ``(i, j < i)`` of many traces into the study's numbers:
medians for identical-text vs unrelated pairs, Spearman correlations, share fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from memshare.analysis.loops import loop_period
from memshare.analysis.measures import (
    bag,
    bag_cosine,
    best_earlier,
    cosine_matrix,
    repeated_blocks,
    shared_blocks,
    spearman,
)
from memshare.analysis.traces import Trace
from memshare.core.config import DISTANCES, MemShareConfig
from memshare.core.rope import RopeSpec
from memshare.core.stage2 import block_distances, block_positions
from memshare.core.steps import BlockDone, StepTracker, StepVocab

# Pairs whose own bags of words have a cosine below this count as "unrelated".
UNRELATED_MAX_COSINE = 0.3


@dataclass(slots=True)
class TraceAnalysis:
    problem_id: str
    prompt_tokens: int
    output_tokens: int
    finished: bool
    loop_period: int | None
    blocks: list[int]  # absolute block indices of the full output blocks studied
    block_steps: list[int]
    step_sim: np.ndarray  # (n_steps, n_steps) step-vs-step bag-of-words cosine
    step_cos: np.ndarray  # (n, n) Stage-1 cosine, query block i vs block j's step
    block_cos: np.ndarray  # (n, n) own bag-of-words cosine
    identical: np.ndarray  # (n, n) bool: same tokens
    dist: dict[str, np.ndarray] = field(default_factory=dict)  # distance -> (n, n), row = query
    repetition: tuple[int, int, int] = (0, 0, 0)  # (blocks, repeated at some offset, block-aligned)


def step_structure(token_ids: Sequence[int], prompt_len: int, vocab: StepVocab,
                   config: MemShareConfig) -> tuple[list[BlockDone], list[dict[int, int]]]:
    """Blocks (``BlockDone`` events) and the bag of words of every step of one trace."""
    tracker = StepTracker(vocab, prompt_len, config.block_size, cue_words=config.cue_words,
                          split_on_blank_lines=config.split_on_blank_lines)
    blocks = [e for e in tracker.feed(list(token_ids)) if isinstance(e, BlockDone)]
    out = list(token_ids[prompt_len:prompt_len + tracker.num_committed])
    bounds = tracker.step_starts + [tracker.num_committed]
    steps = [dict(bag(out[bounds[s]:bounds[s + 1]])) for s in range(tracker.num_steps)]
    return blocks, steps


def distance_matrix(keys: torch.Tensor, values: torch.Tensor, blocks: Sequence[int], block_size: int,
                    distance: str, rope: RopeSpec | None) -> np.ndarray:
    """(n, n) Stage-2 distances, row ``i`` = block ``blocks[i]`` as the query.

    Args:
        keys, values: (L, H, S, D) of the trace.
    """
    from memshare.analysis.kvcache import block_kv

    k, v = block_kv(keys, values, blocks, block_size)  # (n, L, H, T, D)
    pos = block_positions(list(blocks), block_size)  # (n, T)
    rows = [block_distances(k[i], v[i], k, v, distance=distance, q_pos=pos[i], c_pos=pos, rope=rope)
            for i in range(len(blocks))]
    return torch.stack(rows).double().numpy() if rows else np.zeros((0, 0))


def analyze_trace(trace: Trace, keys: torch.Tensor, values: torch.Tensor, vocab: StepVocab,
                  config: MemShareConfig, rope: RopeSpec | None,
                  distances: Sequence[str] = DISTANCES) -> TraceAnalysis:
    """Matrices of one trace (see the module docstring); ``keys/values``: (L, H, S, D)."""
    ids, p, bs = trace.token_ids, len(trace.prompt_ids), config.block_size
    done, step_bags = step_structure(ids, p, vocab, config)
    done = [d for d in done if (d.block_index + 1) * bs <= keys.shape[2]]
    n = len(done)
    blocks = [d.block_index for d in done]
    steps = [d.step for d in done]
    step_cos = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if steps[j] < steps[i]:
                step_cos[i, j] = bag_cosine(done[i].step_counts, step_bags[steps[j]])
    block_bags = [d.token_counts for d in done]  # the tracker counted each block's tokens
    identical = np.array([[done[i].token_ids == done[j].token_ids for j in range(n)] for i in range(n)],
                         dtype=bool).reshape(n, n)
    return TraceAnalysis(
        problem_id=trace.problem_id, prompt_tokens=p, output_tokens=len(trace.output_ids), finished=trace.finished,
        loop_period=loop_period(trace.output_ids) if not trace.finished else None, blocks=blocks,
        block_steps=steps, step_sim=cosine_matrix(step_bags), step_cos=step_cos,
        block_cos=cosine_matrix(block_bags), identical=identical,
        dist={d: distance_matrix(keys, values, blocks, bs, d, rope) for d in distances},
        repetition=repeated_blocks(ids, p, bs))


def summarize(analyses: Sequence[TraceAnalysis], step_thresholds: Sequence[float],
              block_thresholds: Sequence[float], min_gap: int = 1) -> dict:
    """Pool all traces' pairs ``(i, j <= i - min_gap)`` into the study's numbers (JSON-ready)."""
    names = list(analyses[0].dist) if analyses else []
    pairs = {k: [] for k in ("gap", "step_cos", "block_cos", "identical", *names)}
    best, n_blocks, shared = [], 0, {}
    for a in analyses:
        n = len(a.blocks)
        i, j = np.nonzero(np.tril(np.ones((n, n), dtype=bool), k=-min_gap))
        pairs["gap"].append(np.asarray(a.blocks)[i] - np.asarray(a.blocks)[j])
        pairs["step_cos"].append(a.step_cos[i, j])
        pairs["block_cos"].append(a.block_cos[i, j])
        pairs["identical"].append(a.identical[i, j])
        for d in names:
            pairs[d].append(a.dist[d][i, j])
        best.append(best_earlier(a.step_cos, min_gap))
        n_blocks += n
        for d in names:
            for s in step_thresholds:
                for b in block_thresholds:
                    key = (d, s, b)
                    shared[key] = shared.get(key, 0) + int(shared_blocks(a.step_cos, a.dist[d], s, b, min_gap).sum())
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pairs.items()}
    ident = cat["identical"].astype(bool)
    unrelated = cat["block_cos"] < UNRELATED_MAX_COSINE
    best_all = np.concatenate(best) if best else np.zeros(0)
    reps = np.array([a.repetition for a in analyses]).reshape(-1, 3).sum(axis=0)
    return {
        "num_traces": len(analyses),
        "num_blocks": n_blocks,
        "num_pairs": int(len(cat["gap"])),
        "num_identical_pairs": int(ident.sum()),
        "num_unrelated_pairs": int(unrelated.sum()),
        "unrelated_max_cosine": UNRELATED_MAX_COSINE,
        "best_earlier_step_cosine": {
            "blocks_with_earlier_step": int(np.isfinite(best_all).sum()),
            "median": _median(best_all[np.isfinite(best_all)]),
            "fraction_at_least": {f"{s:g}": _frac(int((best_all >= s).sum()), n_blocks) for s in step_thresholds},
        },
        "repetition": {"output_blocks": int(reps[0]), "repeated_any_offset": _frac(int(reps[1]), int(reps[0])),
                       "repeated_block_aligned": _frac(int(reps[2]), int(reps[0]))},
        "distances": {d: {
            "median_identical": _median(cat[d][ident]),
            "median_unrelated": _median(cat[d][unrelated]),
            "median_all": _median(cat[d]),
            "spearman_step_cosine": spearman(cat["step_cos"], cat[d]),
            "spearman_block_cosine": spearman(cat["block_cos"], cat[d]),
            "spearman_gap": spearman(cat["gap"], cat[d]),
            "share_fraction": {f"{s:g}/{b:g}": _frac(shared[(d, s, b)], n_blocks)
                               for s in step_thresholds for b in block_thresholds},
        } for d in names},
    }


def trace_summary(a: TraceAnalysis) -> dict:
    """Per-trace facts for the JSON summary."""
    n, any_offset, aligned = a.repetition
    return {"problem_id": a.problem_id, "prompt_tokens": a.prompt_tokens, "output_tokens": a.output_tokens,
            "finished": a.finished, "loop_period": a.loop_period, "num_steps": int(len(a.step_sim)),
            "num_blocks": len(a.blocks), "repeated_any_offset": any_offset, "repeated_block_aligned": aligned}


def _median(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else None


def _frac(num: int, den: int) -> float | None:
    return num / den if den else None
