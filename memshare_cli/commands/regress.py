"""``memshare regress``: check saved runs against reference figures; exit 1 on a regression."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors, fail

VERDICT = {"pass": "[green]pass[/green]", "FAIL": "[bold red]FAIL[/bold red]", "missing": "[red]missing[/red]"}


@clean_errors
def regress(
    run_dirs: Annotated[list[str], typer.Argument(
        help="Run folders, or folders holding run folders (e.g. results/ci).", show_default=False)],
    baseline: Annotated[str, typer.Option(
        "--baseline", "-b", help="Baseline JSON: reference figures and tolerances (see results/README.md).",
        show_default=False)],
    json_out: o.Json = False,
) -> None:
    """Compare runs with a baseline file: accuracy drop, speedup vs dense, affected ratio, leaks.

    Exit 0 when every check passes, 1 on a regression (or a figure the runs lack), 2 on bad input.
    """
    from memshare.experiments.regress import run_regress

    result = run_regress(baseline, run_dirs)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        from memshare_cli.render import console, rows_table

        cols = [("policy", "policy"), ("run", "run"), ("metric", "metric"), ("baseline", "baseline"),
                ("measured", "measured"), ("allowed", "allowed"), ("verdict", "verdict")]
        rows_table(f"memshare regress: {result['model'] or 'any model'} / {result['dataset'] or 'any dataset'} "
                   f"vs {result['baseline']}", cols, [_row(r) for r in result["checks"]])
        console.print("[green]no regression[/green]" if result["passed"] else
                      f"[bold red]{len(result['failed'])} check(s) failed[/bold red]")
    if not result["passed"]:
        fail(f"regression in {', '.join(result['failed'])}", code=1)


def _row(r: dict[str, Any]) -> dict[str, str]:
    from memshare_cli.render import cell

    return {"policy": r["policy"], "run": Path(r["run_dir"]).name if r["run_dir"] else "(no run)",
            "metric": r["metric"], "baseline": cell(r["baseline"], "g"), "measured": cell(r["measured"], "g"),
            "allowed": r["allowed"], "verdict": VERDICT[r["verdict"]]}
