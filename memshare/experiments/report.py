"""``memshare report``: tables and plots rebuilt from saved run folders, no engine needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memshare.experiments.runs import load_runs


def build_report(paths: list[str | Path], plots_dir: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Read the runs (all checked before anything is written); plot when there are two or more.

    Args:
        paths: run folders, or folders holding run folders (e.g. ``results/``).
        plots_dir: where the PNGs go; default ``report/`` beside the run folders.
        plots: False to write nothing.

    Returns:
        ``{"runs": [metrics + run_dir + recomputed accuracy and speedups], "plots": [paths]}``.
    """
    runs = load_runs(paths)
    figures: list[str] = []
    if plots and len(runs) >= 2:
        from memshare.experiments.plots import report_plots

        out = Path(plots_dir) if plots_dir else default_plots_dir(runs)
        figures = report_plots(runs, out)
    return {"runs": runs, "plots": figures}


def default_plots_dir(runs: list[dict[str, Any]]) -> Path:
    parents = [str(Path(r["run_dir"]).resolve().parent) for r in runs]
    return Path(os.path.commonpath(parents)) / "report"
