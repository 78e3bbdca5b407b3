"""Re-grade a results/predictions JSONL file: reading, grading, summarizing.

Used by ``memshare grade``; kept here so that other tools can re-grade rows
without the CLI. Input problems raise ``InputError`` with a one-line
message naming the file and line.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evaluators.grade import KINDS, grade_detailed
from evaluators.result import GradeResult
from evaluators.settings import GradeSettings

STORED_VERDICT = "correct"


class InputError(Exception):
    """Bad input file or row; the message is one line, fit for stderr."""


@dataclass(frozen=True)
class FieldNames:
    """Which JSON fields hold what.

    Attributes:
        response: the model output.
        gold: the gold answer.
        kind: the benchmark kind (``math``/``aime``/``gpqa``), unless the
            kind is given for all rows.
        dataset: the dataset name used to group accuracy; rows without it
            are grouped under their kind.
    """

    response: str = "response"
    gold: str = "gold"
    kind: str = "kind"
    dataset: str = "dataset"


@dataclass(frozen=True)
class Row:
    """One input row with what grading needs pulled out."""

    line: int
    data: dict
    response: str
    gold: str
    kind: str
    dataset: str


def _row(line: int, data: object, fields: FieldNames, kind: str | None, where: str) -> Row:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for name in (fields.response, fields.gold) + (() if kind else (fields.kind,)):
        if name not in data:
            raise InputError(f"{where}: missing field {name!r}")
    if data[fields.gold] is None:
        raise InputError(f"{where}: field {fields.gold!r} is null")
    row_kind = kind or str(data[fields.kind]).strip().lower()
    if row_kind not in KINDS:
        raise InputError(f"{where}: unknown kind {row_kind!r} (expected {', '.join(KINDS)})")
    response = data[fields.response]
    dataset = data.get(fields.dataset)
    return Row(
        line=line,
        data=data,
        response="" if response is None else str(response),
        gold=str(data[fields.gold]),
        kind=row_kind,
        dataset=str(dataset) if dataset is not None else row_kind,
    )


def read_rows(path: Path, fields: FieldNames = FieldNames(), kind: str | None = None) -> list[Row]:
    """Read and validate every row of a JSONL file.

    Args:
        path: the JSONL file (blank lines are skipped).
        fields: field names.
        kind: a kind for every row, overriding ``fields.kind``.

    Returns:
        The rows, in file order.

    Raises:
        InputError: missing/unreadable file, malformed JSON, missing field,
            unknown kind, or no rows at all.
    """
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown kind {kind!r} (expected {', '.join(KINDS)})")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{where}: malformed JSON ({exc.msg})") from None
                rows.append(_row(number, data, fields, kind, where))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


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


def summarize(rows: list[Row], results: list[GradeResult], fields: FieldNames = FieldNames()) -> dict:
    """Accuracy per dataset and rows whose stored verdict changed.

    Args:
        rows: the graded rows.
        results: their new results.
        fields: field names (for echoing the gold in disagreements).

    Returns:
        ``{"datasets": {name: {"num_graded", "num_correct", "accuracy"}},
        "disagreements": [{"line", "dataset", "gold", "extracted",
        "stored_correct", "correct", "reason"}, ...]}``.
    """
    datasets: dict[str, dict] = {}
    disagreements = []
    for row, result in zip(rows, results):
        stats = datasets.setdefault(row.dataset, {"num_graded": 0, "num_correct": 0, "accuracy": 0.0})
        stats["num_graded"] += 1
        stats["num_correct"] += int(result.correct)
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
    for stats in datasets.values():
        stats["accuracy"] = stats["num_correct"] / stats["num_graded"]
    return {"datasets": dict(sorted(datasets.items())), "disagreements": disagreements}


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
