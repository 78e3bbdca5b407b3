"""``memshare report``: tables and plots rebuilt from saved run folders, no engine needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memshare.bench.run_metrics import RunMetrics
from memshare_cli import options as o
from memshare_cli.errors import clean_errors

RunDirs = Annotated[list[str], typer.Argument(help="Run folders, or folders holding run folders (e.g. results/).",
                                             show_default=False)]
COLUMNS = RunMetrics.columns("run_dir", "policy", "accuracy", "num_graded", "engine_steps", "steps_speedup_vs_vanilla",
                             "output_tokens_per_s", "requests_per_s", "speedup_vs_dense", "requests_speedup_vs_dense",
                             "wall_s", "leaked_blocks")
MEMORY_COLUMNS = RunMetrics.columns("run_dir", "policy", "affected_ratio", "shared_blocks", "mean_running_requests",
                                    "concurrency_gain", "ideal_gain", "bound_achieved", "peak_kv_blocks",
                                    "num_preemptions", "mean_output_tokens", "loop_or_cap_share",
                                    "same_answer_as_dense")
# Trace replays: every policy emitted the same tokens; quality is teacher-forced fidelity vs dense.
REPLAY_COLUMNS = RunMetrics.columns("run_dir", "policy", "affected_ratio", "freed_block_steps_share",
                                    "mean_running_requests", "concurrency_gain", "ideal_gain", "bound_achieved",
                                    "num_preemptions", "top1_agreement", "top1_agreement_after", "topk_kl")


@clean_errors
def report(
    run_dirs: RunDirs,
    plots_dir: Annotated[Optional[str], typer.Option(
        "--plots", help="Folder for the PNGs (default: report/ beside the run folders).")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Write nothing; tables only.")] = False,
    json_out: o.Json = False,
) -> None:
    """Rebuild the bench table from saved runs, side by side; plots when there are 2+ runs.

    Accuracy comes from samples.jsonl (a re-graded file is reflected); speedups from a
    dense run of the same workload among the given runs, and for trace replays
    ('bench --replay') teacher-forced top-1 agreement and top-k KL against it.
    """
    from memshare.experiments.report import build_report

    result = build_report(run_dirs, plots_dir=plots_dir, plots=not no_plots)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    from memshare_cli.render import console, rows_table

    replay = any(r.get("top1_agreement") is not None for r in result["runs"])
    second = ("memshare report: memory and teacher-forced fidelity", REPLAY_COLUMNS) if replay else (
        "memshare report: memory and quality", MEMORY_COLUMNS)
    for title, cols in (("memshare report: throughput", COLUMNS), second):
        rows_table(title, [(h, k) for h, k, _ in cols], [_row(r, cols) for r in result["runs"]])
    if result["plots"]:
        console.print(f"[dim]plots: {', '.join(result['plots'])}[/dim]")


def _row(r: dict[str, Any], columns: list[tuple[str, str, str | None]]) -> dict[str, str]:
    from memshare_cli.render import cell

    r = {**r, "run_dir": Path(r["run_dir"]).name}
    return {k: str(r.get(k)) if fmt is None else cell(r.get(k), fmt) for _, k, fmt in columns}
