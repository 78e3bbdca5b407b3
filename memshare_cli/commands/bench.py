"""``memshare bench``: run policies on the same prompts; print throughput, memory and accuracy."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors, fail

Policy = Annotated[Optional[str], typer.Option("--policy", "-p", help="Comma list of vanilla, dense, random, memshare (default: dense,memshare, or the suite's).")]


@clean_errors
def bench(
    model: o.Model = "smollm2-135m",
    dataset: o.Dataset = "math500",
    data_file: o.DataFile = None,
    problem_field: o.ProblemField = None,
    answer_field: o.AnswerField = None,
    id_field: o.IdField = None,
    kind: Annotated[Optional[str], typer.Option(help="With --data-file: grade it as math, aime or gpqa and "
                                                "file its runs under the file's name (not --dataset).")] = None,
    limit: o.Limit = None,
    samples: Annotated[Optional[int], typer.Option(help="Samples per problem, seeds seed..seed+n-1 (default: 1, or the suite's).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Generated tokens per sample, at most (default: 512, or the suite's).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature; 0 = greedy (default: 0, or the suite's).")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling mass in (0, 1] (default: 1, or the suite's).")] = None,
    seed: o.Seed = 0,
    block_size: o.BlockSize = 32,
    kv_blocks: Annotated[Optional[str], typer.Option("--kv-blocks", help="Cap the KV pool at N blocks (a memory-bound "
                                                     "run on purpose); a comma list N,M,... runs every policy at "
                                                     "every budget and prints a sweep with a PNG.")] = None,
    replay: Annotated[Optional[str], typer.Option("--replay", help="Trace file (JSONL: problem + reasoning/content, "
                                                  "or a run's samples.jsonl): every policy emits these traces "
                                                  "token for token (forced decoding), cut at --max-tokens.")] = None,
    split: Annotated[Optional[str], typer.Option(help="With --replay: 'choice' (the file's first 16 traces, where "
                                                 "rules were tuned), 'report' (the rest) or 'all' (default: all, "
                                                 "or the suite's).")] = None,
    max_num_seqs: o.MaxNumSeqs = 256,
    tensor_parallel_size: o.TensorParallelSize = 1,
    engine_per_run: o.EnginePerRun = False,
    policy: Policy = None,
    step_threshold: Annotated[Optional[float], typer.Option(help="Stage 1: step bag-of-words cosine needed "
                                                            "(default: 0.8, or the suite's).")] = None,
    block_threshold: Annotated[Optional[float], typer.Option(help="Stage 2: largest normalized distance that "
                                                             "matches (default: 0.55, or the suite's).")] = None,
    distance: Annotated[str, typer.Option(help="Stage 2 tensors: kv, k, v, k_unrope, k_unrope_v.")] = "k_unrope",
    metric: Annotated[str, typer.Option(help="Stage 2 metric: euclidean or cosine.")] = "euclidean",
    encoder: Annotated[str, typer.Option(help="Stage 1 vectors: tokenizer or embedding.")] = "tokenizer",
    max_candidates: Annotated[int, typer.Option(help="Candidates per block sent to Stage 2.")] = 8,
    random_rate: Annotated[float, typer.Option(help="Random policy share rate (matched to memshare when both run).")] = 0.1,
    match_random: Annotated[Optional[str], typer.Option(
        "--match-random", help="When random and memshare both run, random's rate matches memshare's 'affected' "
        "ratio (shared / eligible blocks) or the memory-time it 'freed' (default: affected, or the suite's).")] = None,
    share_delay: Annotated[Optional[int], typer.Option(help="Keep the newest N full blocks exact before sharing "
                                                       "(default: 0, or the suite's).")] = None,
    min_gap: Annotated[int, typer.Option(help="A candidate lies at least N blocks back.")] = 1,
    cross_request: Annotated[bool, typer.Option(help="Also match blocks of other running requests.")] = False,
    same_step: Annotated[bool, typer.Option(help="Also match earlier blocks of the block's own reasoning step.")] = False,
    share_siblings: Annotated[bool, typer.Option(help="Match the same-position block of earlier samples of the "
                                                 "same prompt (--samples n).")] = True,
    prefix_caching: Annotated[bool, typer.Option(help="vLLM prefix caching, for every policy (vLLM's default: on).")] = True,
    repeats: Annotated[Optional[int], typer.Option(help="Run every policy N times, alternating; report medians (default: 1, or the suite's).")] = None,
    suite: Annotated[Optional[str], typer.Option(help="Preset workload (explicit options win). 'throughput': "
                                                 "vanilla,dense,random,memshare on 32 MATH-500 prompts, --kv-blocks 96, "
                                                 "3 alternating repeats. 'samples': 8 prompts x 4 samples at "
                                                 "temperature 0.6, top-p 0.95, --kv-blocks 96. 'reasoning': 8 "
                                                 "DeepSeek-R1 traces replayed (512 tokens each), all four "
                                                 "policies at --kv-blocks 48,64,96 (about 20 min on 2 cores). 'reasoning-long': 4 report-split "
                                                 "R1 traces at 2,048 tokens, --share-delay 4 --block-threshold 0.6, "
                                                 "random matched on freed memory-time, --kv-blocks 96,160.")] = None,
    out: o.Out = "results",
    force: o.Force = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Generate with each policy on the same prompts and seeds, grade, and compare.

    With no options: the packaged SmolLM2-135M model on 16 MATH-500 problems, dense vs
    MemShare, offline. A memory-bound run: --kv-blocks 64 --limit 16.
    """
    from memshare.bench import BenchConfig, Engines, pool_capacity, run_bench, run_sweep

    cfg, budgets = BenchConfig.from_options(
        suite=suite, policy=policy, kv_blocks=kv_blocks, limit=limit, samples=samples, max_tokens=max_tokens,
        temperature=temperature, top_p=top_p, repeats=repeats, replay=replay, split=split,
        match_random=match_random, model=model, dataset=dataset,
        data_file=data_file, problem_field=problem_field, answer_field=answer_field, id_field=id_field, kind=kind,
        seed=seed, block_size=block_size, max_num_seqs=max_num_seqs, tensor_parallel_size=tensor_parallel_size,
        prefix_caching=prefix_caching, out=out, force=force, engine_per_run=engine_per_run,
        sharing=dict(step_threshold=step_threshold, block_threshold=block_threshold, distance=distance, metric=metric,
                     encoder=encoder, max_candidates=max_candidates, random_rate=random_rate,
                     share_delay_blocks=share_delay, min_gap_blocks=min_gap, cross_request=cross_request,
                     same_step=same_step, share_siblings=share_siblings))
    from memshare_cli.render import BenchProgress, bench_table, console, engines_line, sweep_table

    with BenchProgress(enabled=not quiet and not json_out) as progress, \
            Engines(pool_capacity(budgets), per_run=cfg.engine_per_run) as engines:
        if len(budgets) > 1:
            runs, figure = run_sweep(cfg, budgets, on_event=progress.on_event, engines=engines)
        else:
            runs, figure = run_bench(cfg, on_event=progress.on_event, engines=engines), None
    if json_out:
        typer.echo(json.dumps({"runs": runs, "engines": engines.summary(), **({"figure": figure} if figure else {})},
                              indent=2))
    else:
        for budget in budgets:
            bench_table([r for r in runs if r.get("kv_budget") == budget],
                        title="memshare bench" + (f" at --kv-blocks {budget}" if len(budgets) > 1 else ""))
        if len(budgets) > 1:
            sweep_table(runs)
            typer.echo(f"sweep figure: {figure}")
        console.print(f"[dim]{engines_line(engines.summary())}[/dim]")
    leaks = [r["policy"] for r in runs if r.get("leaked_blocks")]
    if leaks:
        fail(f"KV blocks leaked in: {', '.join(leaks)}", code=3)
