"""Rich tables and progress bars shared by the commands."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memshare.bench.run_metrics import RunMetrics

# NOTE: a wide table must not be squeezed to 80 columns when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)


class BenchProgress:
    """Progress bars for generation; plain log lines when disabled (``--quiet``)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.quiet = not enabled
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[tok]} tok"), TimeElapsedColumn(), console=err_console,
                                 disable=not self.enabled)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> BenchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "status":
            self._log(data["message"])
        elif kind == "policy":
            desc = f"{data['policy']:<9}"
            self.tasks[data["policy"]] = self.progress.add_task(desc, total=data["total"], completed=data["done"], tok=0)
            self._log(f"{data['policy']}: {data['total'] - data['done']} to generate -> {data['run_dir']}")
        elif kind == "progress":
            task = self.tasks.get(data["policy"])
            if task is not None:
                self.progress.update(task, completed=self.progress.tasks[task].total - data["total"] + data["done"],
                                     tok=data["output_tokens"])
            if not self.enabled and not self.quiet and data["done"] % 8 == 0:
                self._log(f"{data['policy']}: {data['done']}/{data['total']} done")

    def _log(self, msg: str) -> None:
        if not self.quiet:
            err_console.print(f"[dim]{msg}[/dim]")


def cell(x: Any, fmt: str | None = "{:.2f}") -> str:
    """One table cell: ``-`` for a missing value; ``fmt`` None prints the value as it is
    (``*`` for true, empty for false); ``ms:`` formats seconds as milliseconds; ``g`` a short
    number."""
    if x is None:
        return "-"
    if fmt is None:
        return ("*" if x else "") if isinstance(x, bool) else str(x)
    if fmt == "g":
        return f"{x:.4g}" if isinstance(x, float) else str(x)
    if fmt.startswith("ms:"):
        return fmt[3:].format(1e3 * x)
    return fmt.format(x)


BENCH_THROUGHPUT = RunMetrics.columns(
    "policy", "engine_steps", "steps_speedup_vs_vanilla", "requests_per_s", "requests_speedup_vs_dense",
    "output_tokens_per_s", "speedup_vs_dense", "mean_output_tokens", "mean_ttft_s", "mean_tpot_s",
    "bookkeeping_share_of_step", "wall_s")
BENCH_MEMORY_QUALITY = RunMetrics.columns(
    "policy", "affected_ratio", "shared_blocks", "num_preemptions", "mean_running_requests", "kv_blocks_per_running",
    "concurrency_gain", "ideal_gain", "bound_achieved", "concurrency_gain_achieved", "accuracy",
    "same_answer_as_dense", "mean_common_prefix", "loop_or_cap_share", "leaked_blocks")
# Replay runs: every policy emits the same tokens, so quality is teacher-forced fidelity in the engine.
BENCH_REPLAY = RunMetrics.columns(
    "policy", "affected_ratio", "freed_block_steps_share", "num_preemptions", "mean_running_requests",
    "concurrency_gain", "ideal_gain", "bound_achieved", "top1_agreement", "top1_agreement_after", "topk_kl",
    "topk_kl_after", "positions_after_share", "trace_nll", "leaked_blocks")


def bench_table(runs: list[dict[str, Any]], title: str = "memshare bench") -> None:
    """Two tables: throughput and timing; then memory, concurrency and quality against dense."""
    replay = any(r.get("top1_agreement") is not None for r in runs)
    second = (BENCH_REPLAY, "memory and teacher-forced fidelity") if replay else (BENCH_MEMORY_QUALITY,
                                                                                   "memory and quality")
    for cols, sub in ((BENCH_THROUGHPUT, "throughput"), second):
        t = Table(title=f"{title}: {sub}")
        for head, _, _ in cols:
            t.add_column(head, justify="right" if head != "policy" else "left", no_wrap=head == "policy")
        for r in runs:
            t.add_row(*[cell(r.get(key), fmt) for _, key, fmt in cols])
        console.print(t)


SWEEP = RunMetrics.columns(
    "kv_budget", "policy", "mean_running_requests", "engine_steps", "steps_speedup_vs_vanilla", "tokens_per_step",
    "num_preemptions", "affected_ratio", "freed_block_steps_share", "concurrency_gain", "ideal_gain",
    "bound_achieved", "top1_agreement", "top1_agreement_after", "topk_kl", "same_answer_as_dense", "leaked_blocks")


def sweep_table(runs: list[dict[str, Any]]) -> None:
    """One row per (KV budget, policy): the memory-pressure sweep."""
    t = Table(title="memshare bench: KV budget sweep")
    for head, _, _ in SWEEP:
        t.add_column(head, justify="left" if head == "policy" else "right", no_wrap=head == "policy")
    for r in runs:
        t.add_row(*[cell(r.get(key), fmt) for _, key, fmt in SWEEP])
    console.print(t)


def rows_table(title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
    """Print ``rows`` with ``columns`` as (header, key); booleans read yes/no."""
    t = Table(title=title)
    for head, _ in columns:
        t.add_column(head)
    for r in rows:
        t.add_row(*[("yes" if r[k] else "no") if isinstance(r[k], bool) else str(r[k]) for _, k in columns])
    console.print(t)


def engines_line(summary: dict[str, Any]) -> str:
    """``memshare.bench.Engines.summary()`` in one line."""
    n = summary["engines_started"]
    how = "a fresh engine per run" if summary.get("engine_per_run") else "engines reused across runs"
    return (f"{summary['runs']} runs on {n} engine{'s' if n != 1 else ''} ({how}); "
            f"engine builds took {summary['engine_build_s']:.0f} s")
