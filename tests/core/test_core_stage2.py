"""Stage-2 block distances (memshare.core.stage2) against a naive per-layer loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memshare.core.config import DISTANCES, METRICS
from memshare.core.rope import RopeSpec, rotate, unrotate
from memshare.core.stage2 import (
    Stage2Partials,
    block_distances,
    block_positions,
    finish,
    stage2_partials,
)
from memshare.core.stats import SharingStats

C, L, H, T, D = 4, 3, 2, 8, 16
ROPE = RopeSpec(1.0 / 10000 ** (torch.arange(0, D, 2).float() / D))


def blocks(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q_k, q_v = torch.randn(L, H, T, D, generator=g), torch.randn(L, H, T, D, generator=g)
    c_k, c_v = torch.randn(C, L, H, T, D, generator=g), torch.randn(C, L, H, T, D, generator=g)
    return q_k, q_v, c_k, c_v


def naive(q_k, q_v, c_k, c_v, distance, metric, q_pos, c_pos):
    """Per candidate, per layer, per head Python loop in float64."""
    out = []
    for c in range(c_k.shape[0]):
        diff = qq = pp = dot = 0.0
        for layer in range(q_k.shape[0]):
            for h in range(q_k.shape[1]):
                tensors = []
                if distance in ("kv", "k"):
                    tensors.append((q_k[layer, h], c_k[c, layer, h]))
                if distance in ("k_unrope", "k_unrope_v"):
                    tensors.append((unrotate(q_k[layer, h], q_pos, ROPE.inv_freq),
                                    unrotate(c_k[c, layer, h], c_pos[c], ROPE.inv_freq)))
                if distance in ("kv", "v", "k_unrope_v"):
                    tensors.append((q_v[layer, h], c_v[c, layer, h]))
                for q, p in tensors:
                    q, p = q.double(), p.double()
                    diff += float(((q - p) ** 2).sum())
                    qq += float((q * q).sum())
                    pp += float((p * p).sum())
                    dot += float((q * p).sum())
        out.append(math.sqrt(diff / qq) if metric == "euclidean" else 1 - dot / math.sqrt(qq * pp))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("distance", DISTANCES)
def test_matches_naive_loop(distance, metric):
    q_k, q_v, c_k, c_v = blocks()
    q_pos, c_pos = block_positions(5, T), block_positions([0, 1, 7, 30], T)
    got = block_distances(q_k, q_v, c_k, c_v, distance=distance, metric=metric, q_pos=q_pos, c_pos=c_pos, rope=ROPE)
    want = naive(q_k, q_v, c_k, c_v, distance, metric, q_pos, c_pos)
    assert got.shape == (C,) and torch.allclose(got.double(), want, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("distance", ["kv", "k_unrope_v"])
def test_head_and_layer_shards_add_up(distance, metric):
    q_k, q_v, c_k, c_v = blocks(1)
    kw = dict(distance=distance, metric=metric, q_pos=block_positions(3, T), c_pos=block_positions([0, 1, 2, 9], T),
              rope=ROPE)
    full = stage2_partials(q_k, q_v, c_k, c_v, **kw)
    heads = [slice(0, 1), slice(1, 2)]
    parts = [stage2_partials(q_k[:, s], q_v[:, s], c_k[:, :, s], c_v[:, :, s], **kw) for s in heads]
    assert torch.allclose((parts[0] + parts[1]).sums, full.sums, rtol=1e-5)
    layers = [stage2_partials(q_k[i:i + 1], q_v[i:i + 1], c_k[:, i:i + 1], c_v[:, i:i + 1], **kw) for i in range(L)]
    total = layers[0] + layers[1] + layers[2]
    assert torch.allclose(finish(total), finish(full), atol=1e-5)


def test_same_text_elsewhere_is_far_as_stored_but_close_unrotated():
    raw = torch.randn(L, H, T, D)
    q_pos, c_pos = block_positions(40, T), block_positions([3], T)
    q_k = rotate(raw, q_pos, ROPE.inv_freq)
    c_k = rotate(raw, c_pos[0], ROPE.inv_freq)[None]
    stored = block_distances(q_k, None, c_k, None, distance="k")
    unrope = block_distances(q_k, None, c_k, None, distance="k_unrope", q_pos=q_pos, c_pos=c_pos, rope=ROPE)
    assert stored.item() > 0.5 and unrope.item() < 1e-5


def test_identical_and_bf16():
    q_k, q_v, c_k, c_v = blocks(2)
    c_k[1], c_v[1] = q_k, q_v
    d = block_distances(q_k.bfloat16(), q_v.bfloat16(), c_k.bfloat16(), c_v.bfloat16(), distance="kv")
    assert d.dtype == torch.float32 and d[1].item() == 0.0 and (d[[0, 2, 3]] > 1.0).all()
    cos = block_distances(q_k, q_v, c_k, c_v, distance="kv", metric="cosine")
    assert abs(cos[1].item()) < 1e-6


def test_zero_norms_and_empty():
    z = torch.zeros(L, H, T, D)
    assert finish(stage2_partials(z, None, torch.zeros(2, L, H, T, D), None, distance="k")).tolist() == [0.0, 0.0]
    d = finish(stage2_partials(z, None, torch.ones(1, L, H, T, D), None, distance="k"))
    assert math.isinf(d.item())
    d = finish(stage2_partials(z, None, torch.ones(1, L, H, T, D), None, distance="k", metric="cosine"))
    assert d.item() == 1.0
    assert block_distances(z, None, torch.zeros(0, L, H, T, D), None, distance="k").shape == (0,)


def test_errors():
    q_k, q_v, c_k, c_v = blocks()
    with pytest.raises(ValueError, match="needs rope"):
        stage2_partials(q_k, q_v, c_k, c_v, distance="k_unrope")
    with pytest.raises(ValueError, match="needs the query's and the candidates' V"):
        stage2_partials(q_k, None, c_k, None, distance="kv")
    with pytest.raises(ValueError, match="shape"):
        stage2_partials(q_k, q_v, c_k[:, :, :1], c_v, distance="k")
    with pytest.raises(ValueError, match="positions"):
        stage2_partials(q_k, q_v, c_k, c_v, distance="k_unrope", rope=ROPE, q_pos=torch.arange(T),
                        c_pos=torch.arange(T))
    with pytest.raises(ValueError, match="distance must be"):
        stage2_partials(q_k, q_v, c_k, c_v, distance="l1")
    with pytest.raises(ValueError, match="same metric"):
        Stage2Partials("euclidean", torch.zeros(2, 2)) + Stage2Partials("cosine", torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shape"):
        Stage2Partials("cosine", torch.zeros(2, 2))


def test_block_positions_and_record():
    assert block_positions(2, 4).tolist() == [8, 9, 10, 11]
    assert block_positions([0, 3], 2).tolist() == [[0, 1], [6, 7]]
    stats = SharingStats()
    stats.add_stage2(2, 9, 0.5)
    assert (stats.stage2_queries, stats.stage2_candidates, stats.stage2_s) == (2, 9, 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("distance", ["kv", "k_unrope_v"])
def test_gpu_matches_cpu(distance):
    q_k, q_v, c_k, c_v = blocks(3)
    kw = dict(distance=distance, q_pos=block_positions(9, T), c_pos=block_positions([0, 2, 4, 6], T), rope=ROPE)
    cpu = block_distances(q_k, q_v, c_k, c_v, **kw)
    dev = RopeSpec(ROPE.inv_freq.cuda())
    gpu = block_distances(q_k.cuda(), q_v.cuda(), c_k.cuda(), c_v.cuda(), **{**kw, "rope": dev,
                          "q_pos": kw["q_pos"].cuda(), "c_pos": kw["c_pos"].cuda()})
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-4)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_finish_rows_equals_finish_to_one_ulp(metric):
    """The scheduler's numpy ``finish`` agrees with the torch one to one float32 ulp (numpy's
    sqrt is correctly rounded; torch's vectorized CPU sqrt is sometimes one ulp off)."""
    from memshare.core.stage2 import finish_rows

    gen = torch.Generator().manual_seed(0)
    width = 2 if metric == "euclidean" else 3
    sums = torch.rand(2000, width, generator=gen) * torch.tensor([10.0, 1e-3, 5.0][:width])
    sums[:400] = torch.randn(400, width, generator=gen) * 1e-30  # tiny, negative, subnormal
    sums[400:420] = 0.0
    sums[420:440, 0] = 0.0
    sums[440:460, 1] = 0.0
    sums[460:480, -1] = 0.0
    want = finish(Stage2Partials(metric, sums)).tolist()
    got = finish_rows(metric, sums.tolist())
    assert not any(math.isnan(x) for x in got)
    assert [math.isinf(x) for x in got] == [math.isinf(x) for x in want]
    want32, got32 = np.array(want, dtype=np.float32), np.array(got, dtype=np.float32)
    finite = np.isfinite(want32)
    assert (np.abs(got32[finite] - want32[finite]) <= np.spacing(want32[finite])).all()
    assert (got32[~finite] == want32[~finite]).all()
