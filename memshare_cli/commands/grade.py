"""``memshare grade``: re-grade a run folder, or a results or predictions JSONL file.

Heavy imports (the evaluators, rich) happen inside the command so that
``memshare --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from memshare_cli.errors import clean_errors, fail


def _render(summary: dict, show: int) -> None:
    from memshare_cli.render import console, rows_table

    rows_table("Accuracy per dataset", [("dataset", "dataset"), ("graded", "num_graded"), ("correct", "num_correct"),
                                         ("problems", "num_problems"), ("accuracy (pass@1)", "accuracy")],
               [{"dataset": name, **stats, "accuracy": f"{stats['accuracy']:.2%}"}
                for name, stats in summary["datasets"].items()])
    found = summary["disagreements"]
    if not found:
        console.print("No disagreements with stored verdicts.")
        return
    rows_table(f"Disagreements with stored verdicts ({min(show, len(found))} of {len(found)})",
               [(c, c) for c in ("line", "dataset", "gold", "extracted", "stored", "new", "reason")],
               [{"line": item["line"], "dataset": item["dataset"], "gold": item["gold"][:40],
                 "extracted": str(item["extracted"])[:40], "stored": item["stored_correct"],
                 "new": item["correct"], "reason": item["reason"]} for item in found[:show]])


@clean_errors
def grade(
    file: Path = typer.Argument(
        ..., help="Run folder (samples.jsonl + config.json) or a results/predictions JSONL file.", show_default=False
    ),
    response_field: str = typer.Option("response", "--response-field", help="Field holding the model output."),
    gold_field: str = typer.Option("gold", "--gold-field", help="Field holding the gold answer."),
    kind_field: str = typer.Option("kind", "--kind-field", help="Field holding math|aime|gpqa."),
    kind: Optional[str] = typer.Option(
        None, "--kind", help="Grade every row as math, aime (integer) or gpqa (choice); default: row, then config.json."
    ),
    dataset_field: str = typer.Option("dataset", "--dataset-field", help="Field used to group accuracy."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write re-graded rows (extracted, correct, reason)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds allowed per answer."),
    percent: str = typer.Option(
        "library", "--percent", help="What X% means against a number: library, fraction, number or either."
    ),
    jobs: int = typer.Option(4, "--jobs", "-j", help="Answers graded concurrently."),
    show: int = typer.Option(10, "--show", help="Disagreements shown in the table."),
) -> None:
    """Re-grade a run folder or JSONL file and report accuracy (pass@1) per dataset."""
    from evaluators.regrade import FieldNames, InputError, read_rows, regrade, summarize, write_rows
    from evaluators.settings import PERCENT_MODES, CompareSettings, GradeSettings
    from memshare.data import DATASETS
    from memshare.errors import UserError
    from memshare.results import read_samples

    if timeout <= 0 or jobs < 1:
        fail("--timeout must be positive and --jobs at least 1")
    if percent not in PERCENT_MODES:
        fail(f"--percent must be one of {', '.join(PERCENT_MODES)}, got {percent!r}")
    fields = FieldNames(response=response_field, gold=gold_field, kind=kind_field, dataset=dataset_field)
    dataset_kinds = {name: spec.kind for name, spec in DATASETS.items()}
    try:
        # A run folder's samples go through the bench's one reader of samples.jsonl.
        rows = read_rows(file, fields, kind, dataset_kinds, sample_reader=lambda p: read_samples(p)[0])
    except InputError as exc:
        raise UserError(str(exc)) from None

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    settings = GradeSettings(timeout_s=timeout, compare=CompareSettings(percent=percent))
    progress = Progress(
        TextColumn("grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("grading", total=len(rows))
        results = regrade(rows, settings, jobs, on_done=lambda: progress.advance(task))
    summary = summarize(rows, results, fields)
    if out is not None:
        try:
            write_rows(out, rows, results)
        except InputError as exc:
            raise UserError(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _render(summary, show)
