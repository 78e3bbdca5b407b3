"""Re-grade rows read by ``runs.read_rows``: grading, pass@1 per dataset, writing back.

Used by ``memshare grade``; kept here so that other tools can re-grade rows
without the CLI. Input problems raise ``InputError`` with a one-line
message naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from evaluators.grade import grade_detailed
from evaluators.result import GradeResult
from evaluators.runs import FieldNames, InputError, Row, read_rows
from evaluators.settings import GradeSettings

STORED_VERDICT = "correct"
__all__ = ["FieldNames", "InputError", "Row", "pass_at_1", "read_rows", "regrade", "summarize", "write_rows"]


def regrade(
    rows: list[Row],
    settings: GradeSettings = GradeSettings(),
    jobs: int = 1,
    on_done: Callable[[], None] | None = None,
) -> list[GradeResult]:
    """Grade every row, ``jobs`` at a time.

    Args:
        rows: rows from ``read_rows``.
        settings: grading settings.
        jobs: concurrent grading threads (the sympy work runs in worker
            processes, so threads do scale).
        on_done: called after each row, e.g. to advance a progress bar.

    Returns:
        One result per row, in row order.
    """
    results: list[GradeResult | None] = [None] * len(rows)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(grade_detailed, row.response, row.gold, row.kind, settings): i
            for i, row in enumerate(rows)
        }
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_done is not None:
                on_done()
    return [r for r in results if r is not None]


def pass_at_1(verdicts_per_problem: dict[str, list[bool]]) -> float:
    """pass@1: the mean over problems of each problem's mean verdict over its samples.

    Args:
        verdicts_per_problem: problem -> verdicts of its samples.

    Returns:
        The estimate in [0, 1] (0 for no problems). With one sample per
        problem it is plain accuracy.
    """
    if not verdicts_per_problem:
        return 0.0
    return sum(sum(v) / len(v) for v in verdicts_per_problem.values()) / len(verdicts_per_problem)


def summarize(rows: list[Row], results: list[GradeResult], fields: FieldNames = FieldNames()) -> dict:
    """Accuracy (pass@1) per dataset and rows whose stored verdict changed.

    Args:
        rows: the graded rows.
        results: their new results.
        fields: field names (for echoing the gold in disagreements).

    Returns:
        ``{"datasets": {name: {"num_graded", "num_correct", "num_problems",
        "accuracy"}}, "disagreements": [{"line", "dataset", "gold",
        "extracted", "stored_correct", "correct", "reason"}, ...]}``, where
        ``accuracy`` is ``pass_at_1`` over the dataset's problems.
    """
    verdicts: dict[str, dict[str, list[bool]]] = {}
    disagreements = []
    for row, result in zip(rows, results):
        verdicts.setdefault(row.dataset, {}).setdefault(row.problem, []).append(result.correct)
        stored = row.data.get(STORED_VERDICT)
        if isinstance(stored, (bool, int)) and bool(stored) != result.correct:
            disagreements.append(
                {
                    "line": row.line,
                    "dataset": row.dataset,
                    "gold": row.gold,
                    "extracted": result.extracted,
                    "stored_correct": bool(stored),
                    "correct": result.correct,
                    "reason": result.reason,
                }
            )
    datasets = {
        name: {
            "num_graded": sum(len(v) for v in problems.values()),
            "num_correct": sum(sum(v) for v in problems.values()),
            "num_problems": len(problems),
            "accuracy": pass_at_1(problems),
        }
        for name, problems in sorted(verdicts.items())
    }
    return {"datasets": datasets, "disagreements": disagreements}


def write_rows(path: Path, rows: list[Row], results: list[GradeResult]) -> None:
    """Write the rows back with ``extracted``, ``correct`` and ``reason`` set.

    Args:
        path: output JSONL path (overwritten).
        rows: the graded rows.
        results: their results.

    Raises:
        InputError: the file cannot be written.
    """
    try:
        with path.open("w", encoding="utf-8") as handle:
            for row, result in zip(rows, results):
                handle.write(json.dumps({**row.data, **result.to_dict()}, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc})") from None
