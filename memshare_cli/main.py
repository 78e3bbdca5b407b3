"""Root of the ``memshare`` CLI: it only wires commands; each lives in its own module."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from memshare_cli.commands import ablate, analyze, bench, catalog, compare, grade, regress, report, serve, study

# NOTE: with stdout no terminal (``--help | less``, ``| grep``, a file) rich draws help 80 columns
# wide, whatever COLUMNS says, and cuts option names that do not fit (``--tensor-parallel-…``), so a
# search for them fails. Such help is drawn this wide instead; a terminal keeps its own width, and a
# TERMINAL_WIDTH the user set (Typer's own setting) still wins. tests/foundation/test_help_width.py
# checks that every option of every command fits.
PIPED_HELP_WIDTH = 120


def _set_help_width() -> None:
    from typer import rich_utils

    if os.environ.get("TERMINAL_WIDTH") is None:
        rich_utils.MAX_WIDTH = None if sys.stdout.isatty() else PIPED_HELP_WIDTH


class _Group(TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _set_help_width()
        super().format_help(ctx, formatter)


class _Command(TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _set_help_width()
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="memshare",
    help="MemShare: KV-cache block sharing for reasoning models on vLLM. "
    "Benchmark, grade, ablate and report.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS = {
    "bench": bench.bench,
    "ablate": ablate.ablate,
    "grade": grade.grade,
    "report": report.report,
    "regress": regress.regress,
    "analyze": analyze.analyze,
    "compare": compare.compare,
    "study": study.study,
    "serve": serve.serve,
    "models": catalog.models,
    "datasets": catalog.datasets,
}
for _name, _fn in COMMANDS.items():
    app.command(_name, cls=_Command)(_fn)


if __name__ == "__main__":
    app()
