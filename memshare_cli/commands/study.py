"""``memshare study``: where does block sharing keep quality? Fronts of memory saved vs quality."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors


@clean_errors
def study(
    model: o.Model = "smollm2-135m",
    replay: Annotated[Optional[str], typer.Option(
        "--replay", help="Trace file (as for 'bench --replay'); default: the shared DeepSeek-R1 traces.")] = None,
    split: Annotated[str, typer.Option(
        help="choice (the first 16 traces: tune here), report (the other traces: report here) or all.")] = "choice",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Output tokens of each trace replayed.")] = 1024,
    block_size: Annotated[int, typer.Option("--block-size", help="Tokens per KV block.")] = 32,
    lines: Annotated[Optional[str], typer.Option(
        help="Comma list of lines to measure (default: all; names in the JSON and docs/RESULTS.md).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="At most N traces of the split.")] = None,
    control: Annotated[bool, typer.Option(
        "--control", help="Run the positive control instead: traces rebuilt with verbatim repeated steps.")] = False,
    threads: o.Threads = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Output folder (default results/study__<traces>__<model>__<split>__<max-tokens>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over instead of resuming finished traces.")] = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Measure every selection rule as a front of memory saved against quality (Hugging Face replay).

    Each trace is replayed teacher-forced in block-sized chunks: one dense pass (KV, attention
    statistics, logits), then every line's points in one batched replay beside the dense row.
    Lines: MemShare and its variants (share delay, earlier sharing, distances), random sharing,
    a causal attention proxy, two oracles that know the future (a bound on any selection rule),
    and block-level eviction (StreamingLLM, H2O). Axes: freed memory-time, top-1 agreement and
    KL against dense. Rows are written per trace as they finish, and a rerun resumes.
    """
    from memshare.analysis.study import StudyConfig, run_control, run_study

    names = tuple(x.strip() for x in lines.split(",") if x.strip()) if lines else ()
    cfg = StudyConfig(model=model, replay=replay, split=split, max_tokens=max_tokens, block_size=block_size,
                      lines=names, limit=limit, threads=threads, out=out, force=force, control=control)
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memshare_cli.render import console, err_console

    quiet = quiet or json_out
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet or not sys.stderr.isatty())
    task = None

    def on_event(kind: str, data: dict[str, Any]) -> None:
        nonlocal task
        if kind == "status" and not quiet:
            err_console.print(f"[dim]{data['message']}[/dim]")
        elif kind == "start":
            task = bars.add_task("traces", total=data["total"])
        elif kind == "advance" and task is not None:
            bars.advance(task)
            if not quiet and not sys.stderr.isatty():
                err_console.print(f"[dim]trace {data['trace']} done[/dim]")

    with bars:
        result = (run_control if control else run_study)(cfg, on_event=on_event)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    elif control:
        _control_table(result, console)
    else:
        _fronts_table(result, console)


def _f(x: Any, fmt: str = "{:.3f}") -> str:
    from memshare_cli.render import cell

    return cell(x, fmt)


def _fronts_table(r: dict[str, Any], console) -> None:
    from rich.table import Table

    cfg = r["config"]
    t = Table(title=f"{cfg['split']} split, {r['traces']} traces, {cfg['max_tokens']}-token prefixes: "
                    "memory saved vs quality (against dense)")
    t.add_column("line", no_wrap=True)
    t.add_column("kind")
    for head in ("point", "freed mem-time", "affected", "top-1", "top-1 after", "KL", "misses/share"):
        t.add_column(head, justify="right")
    for line in r["lines"]:
        for p in line["points"]:
            t.add_row(line["line"], line["kind"], f"{p['point']:g}", _f(p["freed_memory_time"], "{:.1%}"),
                      _f(p["affected"], "{:.1%}"), _f(p["top1"], "{:.4f}"), _f(p["top1_after"], "{:.4f}"),
                      _f(p["kl"], "{:.4f}"), _f(p["misses_per_action"], "{:.1f}"))
    console.print(t)
    console.print(f"[dim]{r['written']}; {r['figure']}[/dim]")


def _control_table(r: dict[str, Any], console) -> None:
    from rich.table import Table

    t = Table(title=f"positive control: {r['traces']} traces with verbatim repeated steps at block-aligned offsets")
    t.add_column("setting", no_wrap=True)
    for head in ("copies", "shares", "same text", "freed mem-time", "top-1", "KL", "misses/share"):
        t.add_column(head, justify="right")
    for s in r["settings"]:
        name = f"{s['step_threshold']:g} / {s['block_threshold']:g}, delay {s['share_delay_blocks']}"
        for who in ("memshare", "random"):
            f = s[who]
            t.add_row(f"{who} ({name})" if who == "memshare" else "  random, matched", str(s["copies"]),
                      str(s["shares"]), str(s["same_text_shares"]) if who == "memshare" else "-",
                      _f(f["freed_memory_time"], "{:.1%}"), _f(f["top1"], "{:.4f}"), _f(f["kl"], "{:.4f}"),
                      _f(f["misses_per_action"], "{:.1f}"))
    console.print(t)
    console.print(f"[dim]{r['written']}[/dim]")
