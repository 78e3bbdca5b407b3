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
  Stage 2 timed as the worker runs an engine step (``memshare.engine.stage2_step``: one index
  copy, one gather, RoPE undone once per block, all pairs batched);
* per engine step at 256 running requests (block size 16, 16k-token traces): Stage 1 plus the
  scheduler side's bookkeeping (``SchedulerSide.build_meta`` + ``apply_results`` on vLLM's
  ``BlockPool``, as the engine drives them, with requests' tokens behind vLLM's ``ConstantList``);
* Stage-2 tensor ops per job (counted with a ``TorchDispatchMode``), the batched step against
  the former one-call-per-job worker.

Times are CPU seconds of this process (``time.process_time``) with torch on one thread, so
that other jobs on a shared machine do not inflate them. Run: ``python
benchmarks/bench_core.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import time
from types import SimpleNamespace

import numpy as np
import torch

from memshare.core import (
    MemShareConfig,
    RopeSpec,
    StepVocab,
    block_distances,
    block_positions,
    make_policy,
    stage2_partials,
)

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


def policy_for(vocab, block_size=BS, **kw):
    return make_policy(MemShareConfig(policy="memshare", block_size=block_size, **kw), vocab=vocab)


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
    s2 = t2 / s.full_blocks if pool is not None else None
    return t / s.full_blocks, s2, s.stage1_candidates / max(1, s.stage1_queries), s.full_blocks


def _synthetic_pool(shape, size: int = 64):
    L, H, T, D = shape
    g = torch.Generator().manual_seed(1)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, D, 2).float() / D)
    return torch.randn(size, L, H, T, D, generator=g), torch.randn(size, L, H, T, D, generator=g), RopeSpec(inv_freq)


class _PoolReader:
    """The worker's KV reader over a synthetic pool ``(blocks, L, H, T, D)`` (block id = row)."""

    def __init__(self, k_pool: torch.Tensor) -> None:
        self.k_pool = k_pool
        self.block_size, self.device = k_pool.shape[-2], k_pool.device

    def block_elems(self, *, want_k: bool, want_v: bool) -> int:
        return self.k_pool[0].numel() * want_k

    def gather(self, ids, *, want_k=True, want_v=True):
        return self.k_pool[ids], None


def _jobs(proposals, size: int):
    from memshare.engine.messages import Stage2Job

    return [Stage2Job(i, p.query.block_index % size, p.query.block_index,
                      [c.block_index % size for c in p.candidates], [c.block_index for c in p.candidates])
            for i, p in enumerate(proposals)]


def _stage2_step(pool, proposals) -> float:
    """CPU s of one step's Stage 2 as the worker runs it (``Stage2Step``: K only for ``k_unrope``)."""
    from memshare.engine.stage2_step import Stage2Step

    k_pool, _, rope = pool
    step = Stage2Step(_PoolReader(k_pool), distance="k_unrope", metric="euclidean", rope=rope, max_gather_mb=256)
    jobs = _jobs(proposals, k_pool.shape[0])
    t0 = time.process_time()
    step.launch(jobs).result()
    return time.process_time() - t0


def _stage2_per_job(pool, jobs) -> None:
    """The former worker: one gather, then one ``stage2_partials`` call per job, one host copy."""
    k_pool, _, rope = pool
    T = k_pool.shape[-2]
    ids = sorted({b for j in jobs for b in (j.query_block_id, *j.candidate_block_ids)})
    row = {b: i for i, b in enumerate(ids)}
    k_all = k_pool[torch.tensor(ids)]
    arange = torch.arange(T)
    sums = []
    for j in jobs:
        ci = torch.tensor([row[b] for b in j.candidate_block_ids])
        c_pos = torch.tensor(j.candidate_block_indices)[:, None] * T + arange
        sums.append(stage2_partials(k_all[row[j.query_block_id]], None, k_all[ci], None, distance="k_unrope",
                                    q_pos=j.query_block_index * T + arange, c_pos=c_pos, rope=rope).sums)
    torch.cat(sums).tolist()


def stage2_op_counts(num_jobs: int, shape=(30, 3, 32, 64)) -> tuple[int, int]:
    """Tensor ops (aten calls) of one step of ``num_jobs`` jobs with 8 candidates: (batched, per-job worker)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from memshare.engine.messages import Stage2Job
    from memshare.engine.stage2_step import Stage2Step

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    pool = _synthetic_pool(shape)
    size = pool[0].shape[0]
    rng = random.Random(0)
    jobs = [Stage2Job(i, q, q + 40, c, [b + 40 for b in c])
            for i, q in enumerate(rng.randrange(size) for _ in range(num_jobs))
            for c in [rng.sample([b for b in range(size) if b != q], 8)]]
    step = Stage2Step(_PoolReader(pool[0]), distance="k_unrope", metric="euclidean", rope=pool[2], max_gather_mb=1024)
    counts = []
    for run in (lambda: step.launch(jobs).result(), lambda: _stage2_per_job(pool, jobs)):
        Count.n = 0
        with Count():
            run()
        counts.append(Count.n)
    return counts[0], counts[1]


def scheduler_step_costs(vocab, num_requests: int, num_tokens: int, block_size: int, seed: int = 5):
    """Per-step CPU s of the scheduler side (Stage 1 + bookkeeping) while ``num_requests`` decode.

    Requests start at staggered offsets (as in a running batch, blocks fill on different steps).
    Half the Stage-2 jobs come back as a match, so remaps and frees are part of the bookkeeping.
    Returns the per-step times (s), the run's ``SharingStats`` (stage timers are wall time) and
    the number of full garbage collections while it ran.
    """
    from vllm.v1.core.block_pool import BlockPool
    from vllm.v1.utils import ConstantList

    from memshare.engine.messages import MemShareWorkerMeta
    from memshare.engine.scheduler_side import SchedulerSide

    # vLLM's own pool (the engine's ref counting and free queue), prefix caching off.
    pool = BlockPool(num_requests * (num_tokens // block_size + 4) + 1, False, block_size)
    manager = SimpleNamespace(req_to_blocks={}, num_cached_block={})
    kv_manager = SimpleNamespace(coordinator=SimpleNamespace(single_type_managers=[manager]), block_pool=pool)
    config = MemShareConfig(policy="memshare", block_size=block_size)
    side = SchedulerSide(config, make_policy(config, vocab=vocab))
    side.bind(kv_manager)
    maker = TraceMaker(seed)
    rng = random.Random(seed)
    reqs = {}
    for i in range(num_requests):
        prompt = maker.trace(rng.randrange(block_size, 3 * block_size))
        rid = f"r{i}"
        tokens = list(prompt)  # as vLLM's Request: the list grows, the scheduler sees a ConstantList view
        reqs[rid] = SimpleNamespace(request_id=rid, prompt_token_ids=prompt, tokens=tokens,
                                    all_token_ids=ConstantList(tokens),
                                    num_computed_tokens=len(prompt) - 1, num_preemptions=0, num_output_placeholders=0,
                                    trace=maker.trace(num_tokens))
        manager.req_to_blocks[rid] = pool.get_new_blocks(-(-len(prompt) // block_size))
        side.on_new_request(reqs[rid])
    out = SimpleNamespace(num_scheduled_tokens={r: 1 for r in reqs}, preempted_req_ids=set())
    # As vLLM's engine core does once it has started (freeze_gc_heap): what exists now is
    # never scanned again; what the scheduler side allocates while running still is.
    gc.collect()
    gc.freeze()
    full_gcs = [0]
    gc.callbacks.append(cb := lambda phase, info: full_gcs.__setitem__(0, full_gcs[0] + (
        phase == "stop" and info["generation"] == 2)))
    times = []
    for n in range(num_tokens):
        for rid, r in reqs.items():  # the engine's step: one new token per request (not timed)
            r.tokens.append(r.trace[n])
            r.num_computed_tokens += 1
            if len(r.tokens) > len(manager.req_to_blocks[rid]) * block_size:
                manager.req_to_blocks[rid] += pool.get_new_blocks(1)
        t0 = time.process_time()
        meta = side.build_meta(out)
        t1 = time.process_time()
        # The workers' answer (another process; not timed): half the jobs match their first candidate.
        rows = {j.job_id: [[0.0 if (j.job_id % 2 == 0 and c == 0) else 1.0, 1.0]
                           for c in range(len(j.candidate_block_ids))] for j in meta.jobs}
        t2 = time.process_time()
        side.apply_results(MemShareWorkerMeta(partials=rows) if rows else None)
        times.append(time.process_time() - t2 + t1 - t0)
    gc.callbacks.remove(cb)
    gc.unfreeze()
    return times, side.stats, full_gcs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-tokens", type=int, default=1024, help="trace length per request in the batch runs")
    parser.add_argument("--s2-tokens", type=int, default=512, help="trace length per request for Stage 2 in the batch runs")
    parser.add_argument("--reps", type=int, default=3, help="repeat each measurement, keep the fastest")
    parser.add_argument("--sched-requests", type=int, default=256, help="running requests in the scheduler-step run")
    parser.add_argument("--sched-tokens", type=int, default=16384, help="trace length in the scheduler-step run")
    parser.add_argument("--only", choices=("all", "sched", "ops"), default="all",
                        help="run only the scheduler-step run or the op counts")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    vocab = make_vocab()
    if args.only == "all":
        per_block(args, vocab)
    if args.only in ("all", "sched"):
        per_step(args, vocab)
    if args.only in ("all", "ops"):
        op_counts()


def per_block(args, vocab) -> None:
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


def per_step(args, vocab) -> None:
    print(f"\nScheduler side per engine step: {args.sched_requests} running requests, block size 16, "
          f"{args.sched_tokens}-token traces (Stage 1 + pins, jobs, remaps, frees; vLLM's BlockPool)")
    times, stats, full_gcs = scheduler_step_costs(vocab, args.sched_requests, args.sched_tokens, 16)
    t = np.array(times) * 1e3
    last = t[len(t) * 3 // 4:]
    s1, remap = 1e3 * stats.stage1_s / len(t), 1e3 * stats.remap_s / len(t)
    print(f"{'steps':>6} {'blocks':>7} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'last-25% mean ms':>16} {'S1 ms':>6} {'remap ms':>8} {'full GCs':>8}")
    print(f"{len(t):>6} {stats.full_blocks:>7} {t.mean():>8.2f} {np.percentile(t, 50):>7.2f} "
          f"{np.percentile(t, 99):>7.2f} {t.max():>7.1f} {last.mean():>16.2f} {s1:>6.2f} {remap:>8.2f} {full_gcs:>8}")


def op_counts() -> None:
    print("\nStage-2 tensor ops (aten calls) per step, 8 candidates per job, k_unrope:")
    print(f"{'jobs':>5} {'batched step':>12} {'per job':>8} {'former worker':>13} {'per job':>8}")
    for n in (1, 16, 128):
        new, old = stage2_op_counts(n)
        print(f"{n:>5} {new:>12} {new / n:>8.1f} {old:>13} {old / n:>8.1f}")


if __name__ == "__main__":
    main()
