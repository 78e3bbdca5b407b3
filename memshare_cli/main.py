"""Root of the ``memshare`` CLI: it only wires commands; each lives in its own module."""

from __future__ import annotations

import typer

from memshare_cli.commands import ablate, analyze, bench, catalog, compare, grade, regress, report, serve

app = typer.Typer(
    name="memshare",
    help="MemShare: KV-cache block sharing for reasoning models on vLLM. "
    "Benchmark, grade, ablate and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("bench")(bench.bench)
app.command("ablate")(ablate.ablate)
app.command("grade")(grade.grade)
app.command("report")(report.report)
app.command("regress")(regress.regress)
app.command("analyze")(analyze.analyze)
app.command("compare")(compare.compare)
app.command("serve")(serve.serve)
app.command("models")(catalog.models)
app.command("datasets")(catalog.datasets)


if __name__ == "__main__":
    app()
