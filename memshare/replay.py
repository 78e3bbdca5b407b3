"""Trace replay: recorded reasoning traces as a workload every policy emits token for token.

A replay file is JSONL (or JSON / parquet), one trace a row, in either form:

* ``problem`` plus ``reasoning`` and/or ``content`` (``id``, ``answer``, ``dataset`` optional):
  e.g. the DeepSeek-R1 traces, or traces a GPU user recorded with a real reasoning model;
* a memshare run's ``samples.jsonl`` (``problem_id`` + ``response``): the problem text comes
  from the run's ``config.json`` beside it (its dataset or data file), so a run recorded once
  replays under every policy.

Each request's prompt is the problem under the serving model's chat template, exactly as in a
normal run (``memshare.data.MATH_PROMPT``); its output is forced to be the trace: the thinking
between the model's think markers when its tokenizer has them, then the content. Tokenizing and
cutting (at ``max_tokens`` and the model's context) is ``memshare.workload``'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.data import DATASETS, DEFAULT_DATASET, MATH_PROMPT, Problem, load_problems, read_rows
from memshare.errors import UserError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
DEFAULT_TRACES = "deepseek-r1.jsonl"  # --suite reasoning's workload (45 DeepSeek-R1 traces, not packaged)
# Grader kind by the ``dataset`` field of a trace row; anything else is graded as math.
_KIND_OF = {"aime24": "aime", "aime25": "aime", "aime": "aime", "gpqa-diamond": "gpqa", "gpqa": "gpqa"}
# Study discipline: rules and thresholds are chosen on the first CHOICE_TRACES traces of a file
# (in file order) and every headline figure is reported on the rest (``memshare study --split``,
# ``memshare bench --split``).
CHOICE_TRACES = 16
SPLITS = ("choice", "report", "all")


def split_rows(n: int, split: str) -> range:
    """Row indices of a trace file with ``n`` rows that belong to ``split``."""
    if split == "choice":
        return range(min(CHOICE_TRACES, n))
    if split == "report":
        return range(min(CHOICE_TRACES, n), n)
    return range(n)


@dataclass(frozen=True, slots=True)
class Trace:
    problem: Problem
    reasoning: str  # the thinking ("" when the trace has none)
    content: str  # the answer after the thinking ("" when none)


def default_traces() -> Path:
    """The DeepSeek-R1 traces for ``--suite reasoning``: ``$MEMSHARE_DATA_DIR``, else the shared copy.

    Looked up as ``$MEMSHARE_DATA_DIR/r1_traces/deepseek-r1.jsonl`` (or ``deepseek-r1.jsonl``
    directly in that folder), then ``../shared/datasets/r1_traces/deepseek-r1.jsonl`` beside a
    source checkout. They are not packaged: one clear ``UserError`` names ``--replay`` otherwise.
    """
    import os

    names = ("r1_traces/" + DEFAULT_TRACES, DEFAULT_TRACES)
    roots = [Path(os.environ["MEMSHARE_DATA_DIR"])] if os.environ.get("MEMSHARE_DATA_DIR") else []
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    for root in roots:
        for name in names:
            if (root / name).is_file():
                return root / name
    raise UserError(f"--suite reasoning: the DeepSeek-R1 traces ({DEFAULT_TRACES}) are not in $MEMSHARE_DATA_DIR "
                    "or ../shared/datasets/r1_traces: give a trace file with --replay FILE")


def replay_name(path: str | Path) -> str:
    """What a replay's runs are filed under: the file's name, or its run folder's for samples."""
    path = Path(path)
    return "replay-" + (path.parent.name.split("__")[0] if path.stem == "samples" else path.stem)


def load_traces(path: str | Path, *, limit: int | None = None, kind: str | None = None,
                split: str = "all") -> list[Trace]:
    """The traces of a replay file (the first ``limit`` of ``split``); one clear ``UserError`` when
    it has none."""
    path = Path(path)
    if split not in SPLITS:
        raise UserError(f"--split {split!r}: use one of {', '.join(SPLITS)}")
    rows = read_rows(path)
    rows = [rows[i] for i in split_rows(len(rows), split)]
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        rows = rows[:limit]
    if not rows:
        raise UserError(f"{path}: no traces")
    if all(isinstance(r, dict) and "response" in r and "problem_id" in r for r in rows):
        return _from_samples(path, rows)
    traces = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("problem"), str) or not (
                _text(row, "reasoning") or _text(row, "content")):
            raise UserError(f"{path} row {n}: a replay row needs 'problem' and a non-empty 'reasoning' and/or "
                            "'content' (or give a memshare run's samples.jsonl)")
        rid = str(row.get("id", row.get("unique_id", n - 1)))
        row_kind = kind or _KIND_OF.get(str(row.get("dataset", "")), "math")
        problem = Problem(rid, str(row.get("dataset") or path.stem), row_kind,
                          MATH_PROMPT.format(problem=row["problem"]), str(row.get("answer", "")).strip())
        traces.append(Trace(problem, _text(row, "reasoning"), _text(row, "content")))
    _check_unique(path, traces)
    return traces


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return value.strip() if isinstance(value, str) else ""


def _from_samples(path: Path, rows: list[dict[str, Any]]) -> list[Trace]:
    """A run's samples: problem text from its config's dataset; thinking split at ``</think>``."""
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        raise UserError(f"{path}: a samples file replays with its run's config.json beside it (not found)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("replay"):
        # A replay run's samples are its trace file's traces: replay that file (these problems).
        source = Path(config["replay"])
        if not source.is_file():
            raise UserError(f"{path}: its run replayed {source}, which is not there any more")
        wanted = {str(r["problem_id"]) for r in rows}
        return [t for t in load_traces(source, kind=config.get("kind")) if t.problem.id in wanted]
    name, data_file = config.get("dataset", DEFAULT_DATASET), config.get("data_file")
    # A run of a file of its own (--kind) is filed under the file's name, not a registered one.
    own_file = data_file is not None and name not in DATASETS
    problems = {p.id: p for p in load_problems(name, data_file=data_file, kind=config.get("kind") if own_file else None)}
    traces = []
    for n, row in enumerate(rows, 1):
        if int(row.get("sample_index", 0)) != 0:
            continue  # one trace per problem: the first sample
        problem = problems.get(str(row["problem_id"]))
        if problem is None:
            raise UserError(f"{path} row {n}: problem {row['problem_id']!r} is not in the run's dataset")
        text = str(row["response"])
        if THINK_CLOSE in text:
            head, _, tail = text.partition(THINK_CLOSE)
            reasoning, content = head.replace(THINK_OPEN, "", 1).strip(), tail.strip()
        else:
            reasoning, content = "", text.strip()
        traces.append(Trace(problem, reasoning, content))
    if not traces:
        raise UserError(f"{path}: no sample 0 rows to replay")
    _check_unique(path, traces)
    return traces


def _check_unique(path: Path, traces: list[Trace]) -> None:
    seen: set[str] = set()
    for t in traces:
        if t.problem.id in seen:
            raise UserError(f"{path}: problem id {t.problem.id!r} appears twice (ids key the run's samples)")
        seen.add(t.problem.id)
