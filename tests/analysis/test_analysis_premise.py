"""Premise study pieces: distance matrices on synthetic K/V, step structure, pooled summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from analysis_helpers import TOK, VOCAB, words

from memshare.analysis.premise import (
    UNRELATED_MAX_COSINE,
    TraceAnalysis,
    analyze_trace,
    distance_matrix,
    step_structure,
    summarize,
)
from memshare.analysis.traces import Trace
from memshare.core.config import DISTANCES, MemShareConfig
from memshare.core.rope import RopeSpec, rotate

L, H, D, BS = 2, 2, 8, 4
ROPE = RopeSpec(1.0 / 10000 ** (torch.arange(0, D, 2).float() / D))


def synthetic_kv(num_blocks: int, seed: int = 0):
    """K (after RoPE), V (L, H, S, D) where block 3 repeats block 1's content at its own position."""
    g = torch.Generator().manual_seed(seed)
    raw_k = torch.randn(L, H, num_blocks * BS, D, generator=g)
    v = torch.randn(L, H, num_blocks * BS, D, generator=g)
    src, dst = slice(BS, 2 * BS), slice(3 * BS, 4 * BS)
    raw_k[:, :, dst], v[:, :, dst] = raw_k[:, :, src], v[:, :, src]
    pos = torch.arange(num_blocks * BS)
    return rotate(raw_k, pos, ROPE.inv_freq), v


def test_distance_matrix_sees_through_rope_only_when_asked():
    k, v = synthetic_kv(5)
    blocks = [0, 1, 2, 3, 4]
    mats = {d: distance_matrix(k, v, blocks, BS, d, ROPE) for d in DISTANCES}
    for d, m in mats.items():
        assert m.shape == (5, 5) and np.allclose(np.diag(m), 0.0, atol=1e-6), d
    # same content two blocks apart: identical V and RoPE-undone K; stored K differ by the rotation
    assert mats["v"][3, 1] == pytest.approx(0.0, abs=1e-6)
    assert mats["k_unrope"][3, 1] == pytest.approx(0.0, abs=1e-5)
    assert mats["k_unrope_v"][3, 1] == pytest.approx(0.0, abs=1e-5)
    assert mats["k"][3, 1] > 0.1 and mats["kv"][3, 1] > 0.05
    # unrelated random blocks are about sqrt(2) apart
    assert 1.0 < mats["v"][4, 0] < 1.8


def test_distance_matrix_rows_are_the_query():
    k, v = synthetic_kv(5, seed=1)
    k[:, :, 2 * BS:3 * BS] *= 3.0  # block 2 has a 3x larger norm
    m = distance_matrix(k, v, [0, 2], BS, "k", ROPE)
    assert m[0, 1] > m[1, 0]  # normalized by the query's norm


def test_step_structure_and_trace_matrices():
    step = words("so", "x", "plus", "y", "is", "the", "value") + [TOK["."], TOK["\n\n"]]  # 9 tokens
    prompt = [TOK[","]] * 4
    out = step + step + words("we", "get", "answer", "z", "2", "3", "of") + [TOK["."], TOK["\n\n"]] + step
    cfg = MemShareConfig(block_size=BS)
    blocks, bags = step_structure(prompt + out, len(prompt), VOCAB, cfg)
    assert len(bags) == 4 and bags[0] == bags[1] == bags[3]
    trace = Trace("p", tuple(prompt), tuple(out), True)
    n_tokens = len(prompt) + len(out)
    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(L, H, n_tokens, D, generator=g), torch.randn(L, H, n_tokens, D, generator=g)
    a = analyze_trace(trace, k, v, VOCAB, cfg, ROPE)
    assert a.blocks == [b.block_index for b in blocks] and a.blocks[0] == 1
    assert a.step_sim.shape == (4, 4) and a.step_sim[0, 1] == pytest.approx(1.0)
    n = len(a.blocks)
    assert a.step_cos.shape == a.block_cos.shape == a.identical.shape == (n, n)
    same_step = np.equal.outer(a.block_steps, a.block_steps)
    assert np.isnan(a.step_cos[same_step]).all()
    assert set(a.dist) == set(DISTANCES)
    assert a.repetition[0] == n and a.repetition[1] >= a.repetition[2]


def analysis(step_cos, block_cos, identical, dist, blocks=None, repetition=(0, 0, 0)):
    n = len(step_cos)
    return TraceAnalysis("t", 10, 40, False, None, blocks or list(range(2, 2 + n)), list(range(n)),
                         np.eye(n), np.array(step_cos, dtype=float), np.array(block_cos, dtype=float),
                         np.array(identical, dtype=bool), {"k": np.array(dist, dtype=float)}, repetition)


def test_summarize_pools_pairs_exactly():
    nan = float("nan")
    a = analysis(step_cos=[[nan, nan, nan], [0.9, nan, nan], [0.5, 0.85, nan]],
                 block_cos=[[1, 0.1, 1.0], [0.1, 1, 0.2], [1.0, 0.2, 1]],
                 identical=[[1, 0, 1], [0, 1, 0], [1, 0, 1]],
                 dist=[[0, 0.9, 0.2], [0.8, 0, 0.7], [0.1, 0.6, 0]], repetition=(3, 2, 1))
    b = analysis(step_cos=[[nan, nan], [0.95, nan]], block_cos=[[1, 0.0], [0.0, 1]], identical=[[1, 0], [0, 1]],
                 dist=[[0, 0.4], [0.3, 0]], repetition=(2, 0, 0))
    s = summarize([a, b], step_thresholds=[0.8], block_thresholds=[0.5, 0.7])
    assert s["num_traces"] == 2 and s["num_blocks"] == 5 and s["num_pairs"] == 4
    assert s["num_identical_pairs"] == 1 and s["num_unrelated_pairs"] == 3  # cosines 0.1, 0.2, 0.0 < 0.3
    assert UNRELATED_MAX_COSINE == 0.3
    k = s["distances"]["k"]
    assert k["median_identical"] == pytest.approx(0.1)
    assert k["median_unrelated"] == pytest.approx(0.6)  # 0.8, 0.6, 0.3
    assert k["median_all"] == pytest.approx(0.45)  # 0.8, 0.1, 0.6, 0.3
    # Stage-1 pairs: (0.9, 0.8), (0.5, 0.1), (0.85, 0.6), (0.95, 0.3): ranks 3,1,2,4 vs 4,1,3,2
    assert k["spearman_step_cosine"] == pytest.approx(1 - 6 * (1 + 0 + 1 + 4) / (4 * 15))
    # a: block 1 needs d <= 0.8 (cos 0.9); block 2 via block 1 (cos 0.85, d 0.6); b: block 1 (0.95, 0.3)
    assert k["share_fraction"] == {"0.8/0.5": pytest.approx(1 / 5), "0.8/0.7": pytest.approx(2 / 5)}
    assert s["best_earlier_step_cosine"]["blocks_with_earlier_step"] == 3
    assert s["best_earlier_step_cosine"]["median"] == pytest.approx(0.9)
    assert s["best_earlier_step_cosine"]["fraction_at_least"] == {"0.8": pytest.approx(3 / 5)}
    assert s["repetition"] == {"output_blocks": 5, "repeated_any_offset": pytest.approx(2 / 5),
                               "repeated_block_aligned": pytest.approx(1 / 5)}


def test_summarize_without_pairs_reports_nulls():
    nan = float("nan")
    s = summarize([analysis([[nan]], [[1]], [[1]], [[0]])], [0.8], [0.5])
    k = s["distances"]["k"]
    assert s["num_pairs"] == 0 and k["median_identical"] is None and k["spearman_gap"] is None
    assert k["share_fraction"] == {"0.8/0.5": 0.0}
