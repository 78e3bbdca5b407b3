"""Cost of the MemShare core per new KV block: Stage 1 (steps + search) and Stage 2 (KV distance).

Synthetic, CPU only, no model: Zipf-distributed token ids over a 5,000-word vocabulary,
steps of 20-120 tokens separated by blank lines or cue words, 30% of steps repeating an
earlier one (lightly edited). Requests are decoded one token per engine step, as the engine
calls ``on_tokens``; the KV of the newest token lands one step later.

Reports, per new block:
* Stage 1 at trace lengths 1k / 4k / 16k tokens: amortized over the whole trace and the
  marginal cost over the last quarter (flat = does not grow with trace length);
* Stage 2 (``k_unrope`` euclidean, all candidates in one pass) for the real proposals,
  on synthetic KV of the packaged model's shape (L=30, H=3, T=32, D=64), plus a 32B-model
  shape row (L=64, H=8, D=128);
* Stage 1 and Stage 2 with 8 / 32 / 128 concurrent requests, ``cross_request`` off and on;
  Stage 2 timed as the worker runs an engine step (one gather, one call per proposal, one
  host copy).

Times are CPU seconds of this process (``time.process_time``) with torch on one thread, so
that other jobs on a shared machine do not inflate them. Run: ``python
benchmarks/bench_core.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time

import numpy as np
import torch

from memshare.core import (MemShareConfig, RopeSpec, StepVocab, block_distances, block_positions, make_policy,
                           stage2_partials)

BS = 32
N_WORDS = 5000
SPECIAL = ["\n\n", ".", ",", " Wait", " So", " Hmm", " Let", " me", " check", "\n"]


def make_vocab() -> StepVocab:
    return StepVocab.from_token_texts(SPECIAL + [f" w{i}" for i in range(N_WORDS)])


class TraceMaker:
    """Synthetic reasoning traces; requests of one ``TraceMaker`` share a pool of steps."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.shared: list[list[int]] = []

    def step(self) -> list[int]:
        n = self.rng.randint(20, 120)
        words = (self.np_rng.zipf(1.3, size=n) % N_WORDS + len(SPECIAL)).tolist()
        for i in range(10, n, self.rng.randint(8, 20)):
            words[i] = 1  # "."
        return words

    def trace(self, num_tokens: int) -> list[int]:
        out: list[int] = []
        own: list[list[int]] = []
        while len(out) < num_tokens:
            r = self.rng.random()
            if own and r < 0.3:
                s = list(self.rng.choice(own))
                s[self.rng.randrange(len(s))] = self.rng.randrange(len(SPECIAL), N_WORDS)
            elif self.shared and r < 0.4:
                s = list(self.rng.choice(self.shared))
            else:
                s = self.step()
                self.shared.append(s)
            own.append(s)
            sep = [0] if self.rng.random() < 0.7 else [1, 3, 2]  # blank line, or ". Wait,"
            out += s + sep
        return out[:num_tokens]


def policy_for(vocab, **kw):
    return make_policy(MemShareConfig(policy="memshare", block_size=BS, **kw), vocab=vocab)


def best_of(reps: int, fn, *args):
    """Element-wise minimum of ``reps`` runs' timings (the rest of the result from the last run)."""
    runs = [fn(*args) for _ in range(reps)]
    k = sum(isinstance(x, float) for x in runs[0])
    return tuple(min(r[i] for r in runs) for i in range(k)) + tuple(runs[-1][k:])


def stage1_single(vocab, num_tokens: int):
    """Decode one request token by token; return (amortized, marginal) s per block and proposals."""
    pol = policy_for(vocab)
    prompt = TraceMaker(1).trace(100)
    tokens = prompt + TraceMaker(2).trace(num_tokens)
    pol.add_request("r", prompt)
    proposals, marks = [], []
    t_total = 0.0
    cur = list(prompt)  # like the engine's growing token list: passed, never copied
    for n in range(len(prompt) + 1, len(tokens) + 1):
        cur.append(tokens[n - 1])
        t0 = time.process_time()
        proposals += pol.on_tokens("r", cur, (n - 1) // BS)
        t_total += time.process_time() - t0
        marks.append((pol.stats.full_blocks, t_total))
    blocks = pol.stats.full_blocks
    b0, t0 = next(m for m in marks if m[0] >= blocks * 3 // 4)
    return t_total / blocks, (t_total - t0) / max(1, blocks - b0), blocks, proposals


def stage2_cost(proposals, shape, reps: int = 3, max_props: int | None = None):
    """Mean s per proposal of ``block_distances`` with the proposals' candidate counts (best of ``reps``)."""
    L, H, T, D = shape
    g = torch.Generator().manual_seed(0)
    pool_k = torch.randn(16, L, H, T, D, generator=g)
    pool_v = torch.randn(16, L, H, T, D, generator=g)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, D, 2).float() / D)
    rope = RopeSpec(inv_freq)
    props = proposals[:max_props] if max_props else proposals
    block_distances(pool_k[0], pool_v[0], pool_k[:2], pool_v[:2], distance="kv")  # warm-up
    t = 0.0
    for p in props:
        idx = [c.block_index % 16 for c in p.candidates]
        q = p.query.block_index % 16
        c_k, c_v = pool_k[idx], pool_v[idx]  # the engine's gather, not timed
        q_pos = block_positions(p.query.block_index, T)
        c_pos = block_positions([c.block_index for c in p.candidates], T)
        best = float("inf")
        for _ in range(reps):
            t0 = time.process_time()
            block_distances(pool_k[q], pool_v[q], c_k, c_v, distance="k_unrope", q_pos=q_pos, c_pos=c_pos, rope=rope)
            best = min(best, time.process_time() - t0)
        t += best
    return t / max(1, len(props))


def batch_costs(vocab, batch: int, cross: bool, num_tokens: int, stage2_shape=None):
    """Round-robin decode of ``batch`` requests, one engine step per token.

    Returns s of Stage 1 per block, Stage 2 s per block (None without ``stage2_shape``),
    candidates per query, and blocks.
    """
    pol = policy_for(vocab, cross_request=cross)
    maker = TraceMaker(3)
    traces = {f"r{i}": maker.trace(num_tokens) for i in range(batch)}
    cur = {r: [] for r in traces}
    for r in traces:
        pol.add_request(r, [])
    pool = _synthetic_pool(stage2_shape) if stage2_shape else None
    t = t2 = 0.0
    for n in range(1, num_tokens + 1):
        step_props = []
        for r, tokens in traces.items():
            cur[r].append(tokens[n - 1])
            t0 = time.process_time()
            props = pol.on_tokens(r, cur[r], (n - 1) // BS)
            for p in props:
                pol.decide(p, [1.0] * len(p.candidates))
            t += time.process_time() - t0
            step_props += props
        if pool is not None and step_props:
            t2 += _stage2_step(pool, step_props)
    s = pol.stats
    per = (lambda x: x / s.full_blocks if pool is not None else None)
    return t / s.full_blocks, per(t2), s.stage1_candidates / max(1, s.stage1_queries), s.full_blocks


def _synthetic_pool(shape, size: int = 64):
    L, H, T, D = shape
    g = torch.Generator().manual_seed(1)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, D, 2).float() / D)
    return torch.randn(size, L, H, T, D, generator=g), torch.randn(size, L, H, T, D, generator=g), RopeSpec(inv_freq)


def _stage2_step(pool, proposals) -> float:
    """CPU s of one step's Stage 2 as the worker runs it: one gather of the distinct blocks (K
    only for ``k_unrope``), one vectorized call per proposal, one host copy of all sums."""
    k_pool, _, rope = pool
    size, T = k_pool.shape[0], k_pool.shape[-2]
    t0 = time.process_time()
    ids = sorted({b.block_index % size for p in proposals for b in (p.query, *p.candidates)})
    row = {b: i for i, b in enumerate(ids)}
    k_all = k_pool[torch.tensor(ids)]
    sums = []
    for p in proposals:
        ci = torch.tensor([row[c.block_index % size] for c in p.candidates])
        sums.append(stage2_partials(k_all[row[p.query.block_index % size]], None, k_all[ci], None,
                                    distance="k_unrope", q_pos=block_positions(p.query.block_index, T),
                                    c_pos=block_positions([c.block_index for c in p.candidates], T), rope=rope).sums)
    torch.cat(sums).tolist()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-tokens", type=int, default=1024, help="trace length per request in the batch runs")
    parser.add_argument("--s2-tokens", type=int, default=512, help="trace length per request for Stage 2 in the batch runs")
    parser.add_argument("--reps", type=int, default=3, help="repeat each measurement, keep the fastest")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    vocab = make_vocab()
    print(f"CPU time per new block (torch {torch.__version__}, 1 thread); block_size {BS}, max_candidates 8\n")

    print("Stage 1 + Stage 2 per new block, one request (k_unrope euclidean, L=30 H=3 T=32 D=64)")
    print(f"{'tokens':>7} {'blocks':>6} {'S1 amort us':>11} {'S1 last-25% us':>14} {'props':>6} "
          f"{'cands/prop':>10} {'S2 ms/prop':>10} {'S2 us/block':>11}")
    all_props = []
    for n in (1024, 4096, 16384):
        amort, marginal, blocks, props = best_of(args.reps, stage1_single, vocab, n)
        s2 = stage2_cost(props, (30, 3, 32, 64), max_props=60)
        cands = sum(len(p.candidates) for p in props) / max(1, len(props))
        print(f"{n:>7} {blocks:>6} {amort * 1e6:>11.0f} {marginal * 1e6:>14.0f} {len(props):>6} {cands:>10.1f} "
              f"{s2 * 1e3:>10.2f} {s2 * len(props) / blocks * 1e6:>11.0f}")
        all_props = props

    big = [dataclasses.replace(p, candidates=p.candidates[:2]) for p in all_props if len(p.candidates) >= 2][:3]
    s2_big = stage2_cost(big, (64, 8, 32, 128))
    print(f"\nStage 2, 32B-model shape (L=64 H=8 T=32 D=128), 2 candidates: {s2_big * 1e3:.1f} ms per proposal "
          f"(CPU; the engine runs it on the GPU)\n")

    print(f"Per new block, concurrent requests ({args.batch_tokens} tokens each for Stage 1, {args.s2_tokens} for "
          f"Stage 2; one engine step per token; Stage 2 on L=30 H=3 T=32 D=64, as the worker runs a step)")
    print(f"{'batch':>5} {'cross':>5} {'blocks':>6} {'cands/query':>11} {'S1 us/block':>11} {'S2 us/block':>11}")
    for batch in (8, 32, 128):
        for cross in (False, True):
            runs = [batch_costs(vocab, batch, cross, args.batch_tokens) for _ in range(args.reps)]
            s1, (_, _, cands, blocks) = min(r[0] for r in runs), runs[-1]
            _, s2, _, _ = batch_costs(vocab, batch, cross, args.s2_tokens, (30, 3, 32, 64))
            print(f"{batch:>5} {str(cross):>5} {blocks:>6} {cands:>11.2f} {s1 * 1e6:>11.0f} {s2 * 1e6:>11.0f}")


if __name__ == "__main__":
    main()
