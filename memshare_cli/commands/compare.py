"""``memshare compare``: MemShare against KV-cache eviction baselines at matched KV memory."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors


@clean_errors
def compare(
    model: o.Model = "smollm2-135m",
    dataset: o.Dataset = "math500",
    data_file: o.DataFile = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Use the first N problems.")] = 8,
    max_tokens: o.MaxTokens = 256,
    methods: Annotated[str, typer.Option(
        "--methods", help="Comma list of memshare, random-share, streaming, h2o, snapkv, rkv, random-evict "
                          "(default: all).")] = "memshare,random-share,streaming,h2o,snapkv,rkv,random-evict",
    kv_budget: Annotated[str, typer.Option(
        "--kv-budget", help="Comma list of KV budgets as fractions of each dense trace's KV (prompt + output).")] = "0.5,0.75",
    block_size: Annotated[int, typer.Option("--block-size", help="Tokens per KV block (sharing methods).")] = 32,
    threads: o.Threads = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Output folder (default results/compare__<dataset>__<model>).")] = None,
    force: o.Force = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Compare MemShare with KV-cache eviction at the same KV memory, on a real model's traces.

    Each prompt's dense greedy trace sets the budget: --kv-budget 0.5 lets a method hold at most
    half of that trace's KV (prompt + output tokens) per KV head. Eviction methods (streaming =
    StreamingLLM sinks + window, h2o, snapkv recompressed during decoding, rkv, random-evict)
    keep exactly that. MemShare has no budget knob: per prompt, the tightest thresholds whose
    unique blocks fit the budget are used (unmatched if even sharing every block does not fit);
    random-share shares as many blocks as MemShare did. Quest is not here: it keeps the whole cache.

    Per method and budget: KV held (peak and mean), teacher-forced top-1 agreement and KL against
    dense, free-running same answer as dense, common prefix, loop/cap share, output length,
    accuracy, and the time spent choosing per decoded token. Writes run folders (a rerun
    resumes), compare.json and compare.png. Eviction runs only in this Hugging Face replay,
    not inside vLLM.
    """
    from memshare.analysis.compare import CompareConfig, run_compare

    cfg = CompareConfig(model=model, dataset=dataset, data_file=data_file, limit=limit, max_tokens=max_tokens,
                        block_size=block_size, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
                        kv_budgets=_floats(kv_budget, "--kv-budget"), out=out, threads=threads, force=force)
    from memshare_cli.render import err_console

    result = _run(cfg, run_compare, quiet or json_out, err_console)
    if json_out:
        typer.echo(json.dumps({"methods": [_json_row(r) for r in result["methods"]], "figure": result["figure"],
                               "written": result["written"]}, indent=2))
        return
    _table(result)


def _run(cfg, run_compare, quiet: bool, err_console) -> dict[str, Any]:
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet or not sys.stderr.isatty())
    task = None

    def on_event(kind: str, data: dict[str, Any]) -> None:
        nonlocal task
        if kind == "start":
            task = bars.add_task("method runs", total=data["total"], completed=data["done"])
            if not quiet:
                err_console.print(f"[dim]{data['total'] - data['done']} method runs to do -> {data['out']}[/dim]")
        elif kind == "progress" and task is not None:
            bars.update(task, completed=data["done"], description=data["label"])
        elif kind == "status" and not quiet:
            err_console.print(f"[dim]{data['message']}[/dim]")

    with bars:
        return run_compare(cfg, on_event=on_event)


JSON_KEYS = ("method", "kv_budget", "kv_fraction", "kv_fraction_mean", "kv_fraction_free", "budget_met", "matched",
             "top1_agreement", "top1_agreement_after", "kl", "kl_after", "same_answer_as_dense", "mean_common_prefix",
             "identical_to_dense", "loop_or_cap", "mean_output_tokens", "output_growth", "accuracy",
             "overhead_ms_per_token", "prompts")


def _json_row(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in JSON_KEYS if k in r}


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{flag} must be a comma list of numbers, got {text!r}") from None


def _table(result: dict[str, Any]) -> None:
    from rich.table import Table

    from memshare.analysis.compare.metrics import COLUMNS
    from memshare_cli.render import console

    rows = result["methods"]
    show = [c for c in COLUMNS if c[1] != "accuracy" or (rows[0].get("accuracy") or 0) > 0]
    t = Table(title="memshare compare: quality at matched KV memory (dense = reference)")
    for head, _, _ in show:
        t.add_column(head, justify="left" if head == "method" else "right", no_wrap=head == "method")
    for r in rows:
        cells = []
        for _, key, fmt in show:
            v = r.get(key)
            cells.append("-" if v is None else fmt.format(v))
        if r["method"] == "memshare" and "matched" in r:
            cells[[c[1] for c in show].index("budget_met")] += f" ({r['matched']} matched)"
        t.add_row(*cells)
    console.print(t)
    if not (rows[0].get("accuracy") or 0) > 0:
        console.print("[dim]accuracy left out: dense scores 0 on these prompts[/dim]")
    console.print(f"[dim]{result['written']}; plot: {result['figure']}[/dim]")
