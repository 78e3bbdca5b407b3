"""``memshare analyze``: check the paper's premise, or the cost of sharing, on a real model."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors

Thresholds = Optional[str]


@clean_errors
def analyze(
    model: o.Model = "smollm2-135m",
    dataset: o.Dataset = "math500",
    data_file: o.DataFile = None,
    replay: Annotated[Optional[str], typer.Option("--replay", help="Trace file (as for 'bench --replay'): study "
                                                  "these traces, e.g. DeepSeek-R1's, instead of the model's own "
                                                  "greedy outputs; the KV is the serving model's.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Use the first N problems.")] = 4,
    max_tokens: o.MaxTokens = 512,
    block_size: Annotated[int, typer.Option("--block-size", help="Tokens per KV block.")] = 32,
    step_thresholds: Annotated[Thresholds, typer.Option(
        help="Comma list of Stage-1 step cosines in [0, 1] (default 0.7,0.8,0.9; fidelity 0.8).")] = None,
    block_thresholds: Annotated[Thresholds, typer.Option(
        help="Comma list of Stage-2 distances in [0, 2] (default 0.3..0.9; fidelity: two per --distance).")] = None,
    fidelity: Annotated[bool, typer.Option(
        "--fidelity", help="Measure what sharing does to the output (teacher forcing + free running).")] = False,
    policies: Annotated[str, typer.Option(
        "--policies", help="Fidelity: comma list of memshare, random (random matches memshare's ratio).")] = "memshare,random",
    distance: Annotated[str, typer.Option(help="Fidelity: Stage-2 tensors: kv, k, v, k_unrope, k_unrope_v.")] = "k_unrope",
    share_delay: Annotated[int, typer.Option(help="Keep the newest N full blocks exact before sharing.")] = 0,
    min_gap: Annotated[int, typer.Option(help="A candidate lies at least N blocks back.")] = 1,
    same_step: Annotated[bool, typer.Option(help="Also match earlier blocks of the block's own reasoning step.")] = False,
    free_running: Annotated[int, typer.Option(help="Fidelity: prompts generated free-running per setting (0: none).")] = 2,
    threads: o.Threads = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Output folder (default results/analyze__<dataset>__<model>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Regenerate the dense traces instead of reusing them.")] = False,
    json_out: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Run the model greedily on a few prompts and measure sharing on its real KV cache.

    Default: does similar reasoning steps have close KV blocks? Step-vs-step text similarity
    against block-vs-block KV distance for each distance definition, share fractions at
    thresholds, verbatim repetition lost to block alignment; heatmaps + summary.json.
    With --fidelity: top-1 agreement and KL under teacher forcing, and divergence and loops
    when generating free, for MemShare and random sharing at the same ratio; fidelity.json.
    """
    from memshare.analysis import AnalyzeConfig, run_analyze

    cfg = AnalyzeConfig(model=model, dataset=dataset, data_file=data_file, limit=limit, max_tokens=max_tokens,
                        block_size=block_size, step_thresholds=_floats(step_thresholds, "--step-thresholds"),
                        block_thresholds=_floats(block_thresholds, "--block-thresholds"), out=out, fidelity=fidelity,
                        policies=tuple(p.strip() for p in policies.split(",") if p.strip()), distance=distance,
                        share_delay_blocks=share_delay, min_gap_blocks=min_gap, same_step=same_step,
                        free_running=0 if replay else free_running, replay=replay,
                        threads=threads, force=force)
    from memshare_cli.render import console, err_console

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "status" and not quiet and not json_out:
            err_console.print(f"[dim]{data['message']}[/dim]")

    result = run_analyze(cfg, on_event=on_event)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    elif fidelity:
        _fidelity_tables(result, console)
    else:
        _premise_tables(result, console)


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{flag} must be a comma list of numbers, got {text!r}") from None


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    from memshare_cli.render import cell

    return cell(x, fmt)


def _premise_tables(r: dict[str, Any], console) -> None:
    from rich.table import Table

    rep, best = r["repetition"], r["best_earlier_step_cosine"]
    console.print(f"{r['num_traces']} traces, {r['num_blocks']} output blocks, {r['num_pairs']} block pairs "
                  f"({r['num_identical_pairs']} identical text, {r['num_unrelated_pairs']} unrelated: own "
                  f"bag-of-words cosine < {r['unrelated_max_cosine']:g})")
    console.print(f"verbatim repeats of earlier output: {_f(rep['repeated_any_offset'], '{:.0%}')} of blocks at any "
                  f"offset, {_f(rep['repeated_block_aligned'], '{:.0%}')} block-aligned")
    console.print(f"best earlier-step cosine: median {_f(best['median'])} over the {best['blocks_with_earlier_step']} "
                  "blocks with an earlier step; share of all blocks reaching " + ", ".join(
                      f"{s}: {_f(v, '{:.0%}')}" for s, v in best["fraction_at_least"].items()))
    t = Table(title="block distance, median (identical text / unrelated / all pairs), and Spearman rho with "
                    "step cosine, the blocks' own bag-of-words cosine and the gap in blocks")
    t.add_column("distance", no_wrap=True)
    for head in ("identical", "unrelated", "all", "rho step", "rho block", "rho gap"):
        t.add_column(head, justify="right")
    for name, d in r["distances"].items():
        t.add_row(name, _f(d["median_identical"]), _f(d["median_unrelated"]), _f(d["median_all"]),
                  _f(d["spearman_step_cosine"], "{:+.2f}"), _f(d["spearman_block_cosine"], "{:+.2f}"),
                  _f(d["spearman_gap"], "{:+.2f}"))
    console.print(t)
    first = next(iter(r["distances"].values()))["share_fraction"]
    t = Table(title="fraction of blocks shared (step cosine >= s and distance <= b vs an earlier block)")
    t.add_column("distance", no_wrap=True)
    t.add_column("s", justify="right")
    blocks = sorted({k.split("/")[1] for k in first}, key=float)
    for b in blocks:
        t.add_column(f"b={b}", justify="right")
    for name, d in r["distances"].items():
        for s in sorted({k.split("/")[0] for k in first}, key=float):
            t.add_row(name, s, *[_f(d["share_fraction"][f"{s}/{b}"], "{:.0%}") for b in blocks])
    console.print(t)
    console.print(f"[dim]{r['written']}; heatmaps: {', '.join(r['figures'])}[/dim]")


def _fidelity_tables(r: dict[str, Any], console) -> None:
    from rich.table import Table

    t = Table(title="teacher forcing vs the dense replay")
    t.add_column("policy", no_wrap=True)
    for head in ("s", "b", "ratio", "shared", "top-1 all", "top-1 after", "KL all", "KL after"):
        t.add_column(head, justify="right")
    for row in r["teacher_forcing"]:
        m = row.get("matched_to", row)
        t.add_row(row["policy"], _f(m["step_threshold"]), _f(m["block_threshold"]), _f(row["affected_ratio"], "{:.3f}"),
                  f"{row['shared_blocks']}/{row['full_blocks']}", _f(row["top1_agreement"], "{:.3f}"),
                  _f(row["top1_agreement_after_first_share"], "{:.3f}"), _f(row["mean_kl"], "{:.4f}"),
                  _f(row["mean_kl_after_first_share"], "{:.4f}"))
    console.print(t)
    if r["free_running"]:
        t = Table(title="free running (greedy, sharing applied as blocks fill) vs the dense trace")
        t.add_column("policy", no_wrap=True)
        for head in ("s", "b", "affected", "diverged", "median at", "loops", "at cap"):
            t.add_column(head, justify="right")
        for row in r["free_running"]:
            m = row.get("matched_to", row)
            t.add_row(row["policy"], _f(m.get("step_threshold")), _f(m.get("block_threshold")),
                      _f(row.get("affected_ratio"), "{:.3f}"), f"{row['diverged']}/{row['prompts']}",
                      _f(row["median_diverged_at"], "{:.0f}"), f"{row['loops']}/{row['prompts']}",
                      f"{row['hit_token_cap']}/{row['prompts']}")
        console.print(t)
    console.print(f"[dim]{r['written']}[/dim]")
