"""``memshare ablate``: sweep thresholds, encoders, metrics and distances; random at matched ratios."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from memshare.bench.run_metrics import RunMetrics
from memshare_cli import options as o
from memshare_cli.errors import clean_errors, fail

COLUMNS = [("policy", "policy", None), ("step/block", "label", None), ("rate", "random_rate", "{:.3f}"),
           *RunMetrics.columns("kv_budget", "accuracy", "top1_agreement", "top1_agreement_after", "affected_ratio",
                               "freed_block_steps_share", "requests_speedup_vs_dense", "speedup_vs_dense",
                               "concurrency_gain", "ideal_gain", "steps_speedup_vs_dense", "requests_per_s",
                               "kv_blocks_per_running", "num_preemptions", "loop_or_cap_share",
                               "same_answer_as_dense", "mean_common_prefix", "leaked_blocks"),
           ("Pareto", "pareto", None)]


@clean_errors
def ablate(
    model: o.Model = "smollm2-135m",
    dataset: o.Dataset = "math500",
    data_file: o.DataFile = None,
    problem_field: o.ProblemField = None,
    answer_field: o.AnswerField = None,
    id_field: o.IdField = None,
    limit: o.Limit = 16,
    samples: o.Samples = 1,
    max_tokens: o.MaxTokens = 512,
    temperature: o.Temperature = 0.0,
    seed: o.Seed = 0,
    block_size: o.BlockSize = 32,
    kv_blocks: Annotated[Optional[str], typer.Option("--kv-blocks", help="Cap the KV pool at N blocks; a comma list "
                                                     "N,M,... runs the grid at every budget and plots thresholds "
                                                     "x budgets.")] = None,
    replay: Annotated[Optional[str], typer.Option("--replay", help="Trace file (as bench --replay): every run emits "
                                                  "the traces; quality is top-1 agreement with dense.")] = None,
    max_num_seqs: o.MaxNumSeqs = 256,
    engine_per_run: o.EnginePerRun = False,
    pairs: Annotated[Optional[str], typer.Option(
        help="Comma list of STEP/BLOCK thresholds: step cosine in [0, 1], block distance in [0, 2] "
             "(default 0.7/0.7,0.8/0.8,0.9/0.8,0.9/0.9).")] = None,
    encoders: Annotated[str, typer.Option(help="Stage-1 encoders: comma list of tokenizer, embedding.")] = "tokenizer",
    metrics: Annotated[str, typer.Option(help="Stage-2 metrics: comma list of euclidean, cosine.")] = "euclidean",
    distances: Annotated[str, typer.Option(help="Stage-2 tensors: comma list of kv, k, v, k_unrope, k_unrope_v.")] = "k_unrope",
    policies: Annotated[str, typer.Option(
        help="Comma list of dense (run once), memshare, random (matched to each point's ratio).")] = "dense,memshare,random",
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Ablation folder (default results/ablate__<dataset>__<model>); runs go in runs/.")] = None,
    force: o.Force = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Sweep MemShare's settings on one workload; random sharing at each point's measured ratio.

    Writes ablation.json, accuracy_vs_affected.png (Pareto front marked) and
    throughput_vs_thresholds.png into --out. Finished runs are reused on a rerun.
    """
    from memshare.bench import BenchConfig
    from memshare.experiments.ablate import AblateConfig, run_ablation

    bench, budgets = BenchConfig.from_options(
        kv_blocks=kv_blocks, limit=limit, samples=samples, max_tokens=max_tokens, temperature=temperature,
        replay=replay, model=model, dataset=dataset, data_file=data_file, problem_field=problem_field,
        answer_field=answer_field, id_field=id_field, seed=seed, block_size=block_size, max_num_seqs=max_num_seqs,
        force=force, engine_per_run=engine_per_run)
    cfg = AblateConfig.from_options(bench, budgets, pairs=pairs, encoders=encoders, metrics=metrics,
                                    distances=distances, policies=policies, out=out)
    from memshare_cli.render import BenchProgress, console, engines_line, rows_table

    with BenchProgress(enabled=not quiet and not json_out) as progress:
        result = run_ablation(cfg, on_event=progress.on_event)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        # Columns no point fills (top-1 agreement without --replay, the budget without --kv-blocks) are left out.
        shown = [(h, k) for h, k, _ in COLUMNS if k == "random_rate" or any(p.get(k) is not None for p in result["points"])]
        rows_table(f"memshare ablate: {bench.dataset_name} / {model}", shown,
                   [_row(p) for p in result["points"]])
        console.print(f"[dim]{result['written']}; plots: {', '.join(result['plots'])}[/dim]")
        console.print(f"[dim]{engines_line(result['engines'])}[/dim]")
    leaks = [f"{p['policy']} {p['label']}" for p in result["points"] if p.get("leaked_blocks")]
    if leaks:
        fail(f"KV blocks leaked in: {', '.join(leaks)}", code=3)


def _row(p: dict[str, Any]) -> dict[str, str]:
    from memshare_cli.render import cell

    return {k: cell(p.get(k), fmt) for _, k, fmt in COLUMNS}
