"""Reading rows to grade: a JSONL file, or a run folder of ``memshare bench``.

A run folder's ``samples.jsonl`` is read by the reader the caller passes
(the CLI passes the bench's own, ``memshare.results.read_samples``), so that
there is one reader of that file; ``evaluators`` itself never imports
``memshare``.

A run folder holds ``samples.jsonl`` (one row per sample: ``problem_id``,
``sample_index``, ``response``, and once graded ``gold``) and ``config.json``
(``dataset``, and from newer benches ``kind``). Rows that lack ``kind`` or
``dataset`` take them from the config; a kind given for all rows
(``--kind``) wins over both. Problems raise ``InputError`` with a one-line
message naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evaluators.kinds import KINDS, resolve_kind

SAMPLES = "samples.jsonl"
CONFIG = "config.json"


class InputError(Exception):
    """Bad input file or row; the message is one line, fit for stderr."""


@dataclass(frozen=True)
class FieldNames:
    """Which JSON fields hold what.

    Attributes:
        response: the model output.
        gold: the gold answer.
        kind: the grader kind (``math``/``aime``/``gpqa`` or an alias),
            unless the kind is given for all rows or by the run's config.
        dataset: the dataset name used to group accuracy; rows without it
            take the run's dataset, else their kind.
        problem_id: which problem a row answers; rows of one problem are
            averaged before averaging over problems (pass@1).
    """

    response: str = "response"
    gold: str = "gold"
    kind: str = "kind"
    dataset: str = "dataset"
    problem_id: str = "problem_id"


@dataclass(frozen=True)
class RunContext:
    """What a run folder's ``config.json`` says about every row.

    Attributes:
        dataset: the run's dataset name, if any.
        kind: the run's grader kind, if it can be told.
    """

    dataset: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Row:
    """One input row with what grading needs pulled out."""

    line: int
    data: dict
    response: str
    gold: str
    kind: str
    dataset: str
    problem: str


def samples_file(path: Path) -> Path:
    """The JSONL file to grade: ``path`` itself, or a run folder's ``samples.jsonl``.

    Args:
        path: a JSONL file or a run folder.

    Returns:
        The file path (not checked for existence).
    """
    return path / SAMPLES if path.is_dir() else path


def run_context(path: Path, dataset_kinds: dict[str, str] | None = None) -> RunContext:
    """Read ``config.json`` beside a samples file, when there is one.

    Args:
        path: the samples file.
        dataset_kinds: grader kind per known dataset name (the bench's
            registry), used when the config names a dataset but no kind.

    Returns:
        The run's dataset and kind (empty when there is no config).

    Raises:
        InputError: the config exists but is not a JSON object.
    """
    config_path = path.parent / CONFIG
    if not config_path.is_file():
        return RunContext()
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{config_path}: cannot read ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: expected a JSON object")
    dataset = config.get("dataset")
    dataset = str(dataset) if dataset is not None else None
    kind = config.get("kind") or (dataset_kinds or {}).get(dataset or "")
    return RunContext(dataset=dataset, kind=str(kind) if kind else None)


def _row(line: int, data: object, fields: FieldNames, kind: str | None, context: RunContext,
         dataset_kinds: dict[str, str], where: str) -> Row:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for name in (fields.response, fields.gold):
        if name not in data:
            # A run's samples get their gold when bench grades them.
            hint = " (the run is not graded yet: rerun its memshare bench command)" if context.dataset else ""
            raise InputError(f"{where}: missing field {name!r}{hint}")
    if data[fields.gold] is None:
        raise InputError(f"{where}: field {fields.gold!r} is null")
    dataset = data.get(fields.dataset)
    dataset = str(dataset) if dataset is not None else context.dataset
    # Precedence: --kind, then the row, then its dataset, then the run's config.
    row_kind = kind or data.get(fields.kind) or dataset_kinds.get(dataset or "") or context.kind
    if not row_kind:
        raise InputError(f"{where}: missing field {fields.kind!r} (no --kind, and no config.json naming the dataset)")
    try:
        row_kind = resolve_kind(str(row_kind))
    except ValueError:
        raise InputError(f"{where}: unknown kind {str(row_kind).strip().lower()!r} (expected {', '.join(KINDS)})") from None
    response = data[fields.response]
    problem = data.get(fields.problem_id)
    return Row(
        line=line,
        data=data,
        response="" if response is None else str(response),
        gold=str(data[fields.gold]),
        kind=row_kind,
        dataset=dataset or row_kind,
        problem=str(problem) if problem is not None else f"line {line}",
    )


def _jsonl_records(path: Path) -> list[tuple[str, int, object]]:
    records = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    records.append((f"{path}:{number}", number, json.loads(text)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    return records


def read_rows(
    path: Path,
    fields: FieldNames = FieldNames(),
    kind: str | None = None,
    dataset_kinds: dict[str, str] | None = None,
    sample_reader: Callable[[Path], list[dict]] | None = None,
) -> list[Row]:
    """Read and validate every row of a JSONL file or run folder.

    Args:
        path: the JSONL file, or a run folder holding ``samples.jsonl`` (blank
            lines are skipped). A ``config.json`` beside the file gives the
            dataset and kind of rows that lack them.
        fields: field names.
        kind: a kind for every row, overriding rows and config.
        dataset_kinds: grader kind per known dataset name.
        sample_reader: reads a run folder's ``samples.jsonl`` (the bench's own
            reader, which drops a torn last line and duplicate samples);
            without it, or outside a run folder, the file is read as JSONL.

    Returns:
        The rows, in file order.

    Raises:
        InputError: missing/unreadable file, malformed JSON, missing field,
            unknown kind, or no rows at all.
    """
    if kind is not None:
        try:
            kind = resolve_kind(kind)
        except ValueError:
            raise InputError(f"unknown kind {kind!r} (expected {', '.join(KINDS)})") from None
    if path.is_dir() and not samples_file(path).exists():
        raise InputError(f"{path}: no {SAMPLES} in this folder")
    path = samples_file(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    dataset_kinds = dataset_kinds or {}
    context = run_context(path, dataset_kinds)
    if sample_reader is not None and (path.parent / CONFIG).is_file():
        records = [(f"{path} sample {n}", n, data) for n, data in enumerate(sample_reader(path), start=1)]
    else:
        records = _jsonl_records(path)
    rows = [_row(n, data, fields, kind, context, dataset_kinds, where) for where, n, data in records]
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
