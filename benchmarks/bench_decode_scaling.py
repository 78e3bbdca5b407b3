"""How decode throughput grows with the number of running requests, in plain vLLM.

MemShare frees KV blocks so that more requests run at once. That only raises throughput if a
decode step costs (much) less than proportionally more when the batch grows. This benchmark
measures exactly that on the machine at hand, with plain vLLM (no MemShare backend): for each
batch size B it decodes B MATH-500 prompts together for a fixed number of tokens
(``ignore_eos``) and takes the difference of a long and a short run, so prefill cancels out.

It prints, per B: decode step time, output tokens/s, and the speed-up over B/2. With the
``--dense-running`` / ``--shared-running`` pair (mean running requests measured by
``memshare bench``) it interpolates the gain that more concurrency alone can give here, i.e.
the most any sharing policy can gain on this hardware at that affected ratio.

Run: ``python benchmarks/bench_decode_scaling.py`` (about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _prompts(model_path: str, n: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    from memshare.data import load_problems

    tok = AutoTokenizer.from_pretrained(model_path)
    out = []
    for p in load_problems("math500", limit=n):
        ids = tok.apply_chat_template([{"role": "user", "content": p.prompt}], add_generation_prompt=True, tokenize=True)
        out.append([int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)])
    return out


def _timed(llm, prompts: list[list[int]], tokens: int) -> float:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)
    t0 = time.perf_counter()
    llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batches", default="1,2,4,6,8,12,16,24,32")
    parser.add_argument("--short", type=int, default=16, help="tokens in the short run")
    parser.add_argument("--long", type=int, default=144, help="tokens in the long run")
    parser.add_argument("--reps", type=int, default=2, help="alternating repeats; the fastest is kept")
    parser.add_argument("--dense-running", type=float, default=None, help="mean running requests of dense")
    parser.add_argument("--shared-running", type=float, default=None, help="mean running requests with sharing")
    args = parser.parse_args()

    from memshare.engine.llm import EngineSettings, make_llm
    from memshare.models import resolve_model

    batches = [int(b) for b in args.batches.split(",")]
    path = resolve_model(args.model)
    prompts = _prompts(path, max(batches))
    llm = make_llm(EngineSettings(model=path, max_num_seqs=max(batches), max_model_len=1024), None)
    _timed(llm, prompts[:2], 8)  # warm-up

    steps = args.long - args.short
    best: dict[int, float] = {}
    for rep in range(args.reps):
        for b in (batches if rep % 2 == 0 else batches[::-1]):
            dt = _timed(llm, prompts[:b], args.long) - _timed(llm, prompts[:b], args.short)
            best[b] = min(best.get(b, float("inf")), dt / steps)

    print(f"Plain vLLM decode, {args.model}, {os.cpu_count()} CPUs; step time = (t[{args.long} tok] - "
          f"t[{args.short} tok]) / {steps}, best of {args.reps}\n")
    print(f"{'batch':>5} {'step ms':>8} {'ms/request':>10} {'tok/s':>7} {'x batch 1':>9}")
    tps = {b: b / best[b] for b in batches}
    for b in batches:
        print(f"{b:>5} {best[b] * 1e3:>8.1f} {best[b] * 1e3 / b:>10.2f} {tps[b]:>7.1f} {tps[b] / tps[batches[0]]:>9.2f}")
    if args.dense_running and args.shared_running:
        xs = np.array(batches, dtype=float)
        ys = np.array([tps[b] for b in batches])
        lo, hi = (np.interp(args.dense_running, xs, ys), np.interp(args.shared_running, xs, ys))
        print(f"\nInterpolated: {args.dense_running:.2f} running -> {lo:.1f} tok/s, {args.shared_running:.2f} running -> "
              f"{hi:.1f} tok/s: at most {hi / lo:.3f}x from the extra concurrency on this machine "
              f"(perfect scaling would give {args.shared_running / args.dense_running:.3f}x)")


if __name__ == "__main__":
    main()
