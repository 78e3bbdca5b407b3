"""``grade``: extract, then compare, within a time bound.

What runs where: extraction, normalization and the string comparison run in
the calling thread (linear scans of capped text: microseconds to a few
milliseconds even for a 1 MB response). Only math answers whose strings
differ go to a worker process (parsing and sympy), under the deadline of
``GradeSettings.timeout_s``. AIME and GPQA verdicts never need a worker.
"""

from __future__ import annotations

import time

from evaluators.aime import compare_aime
from evaluators.extract import extract_math_answer
from evaluators.gpqa import extract_choice, normalize_choice
from evaluators.normalize import is_text_answer, normalize_latex, structural_key, text_key
from evaluators.parse import parseable
from evaluators.result import GradeResult
from evaluators.settings import GradeSettings
from evaluators.timeout import TaskFailed, TaskTimeout, run_with_deadline

KINDS = ("math", "aime", "gpqa")
NO_ANSWER = "no answer found"
_TASK = "evaluators.tasks:compare_math"


def _grade_gpqa(response: str, gold: str, settings: GradeSettings) -> GradeResult:
    gold_letter = normalize_choice(gold)
    if gold_letter is None:
        return GradeResult(False, None, f"invalid gold: {gold[:40]!r} is not a letter A-D")
    letter = extract_choice(response, settings.extract)
    if letter is None:
        return GradeResult(False, None, NO_ANSWER)
    if letter == gold_letter:
        return GradeResult(True, letter, "match: choice")
    return GradeResult(False, letter, "mismatch")


def _grade_math(gold: str, pred: str, settings: GradeSettings, started: float) -> GradeResult:
    if structural_key(gold) == structural_key(pred):
        return GradeResult(True, pred, "match: string")
    if is_text_answer(gold) or is_text_answer(pred):
        if text_key(gold) == text_key(pred):
            return GradeResult(True, pred, "match: text")
        return GradeResult(False, pred, "mismatch")
    compare = settings.compare
    if not parseable(normalize_latex(pred), compare):
        # Too long, too deep for the recursive parser, or a numeral sympy
        # would spend the whole deadline on: not worth a worker.
        return GradeResult(False, pred, "mismatch (prediction too large to parse or evaluate)")
    remaining = settings.timeout_s - (time.monotonic() - started)
    try:
        correct, reason = run_with_deadline(_TASK, (gold, pred, compare), remaining, settings.pool)
    except TaskTimeout:
        return GradeResult(False, pred, f"timeout after {settings.timeout_s}s")
    except TaskFailed as exc:
        return GradeResult(False, pred, f"error: {exc}")
    return GradeResult(correct, pred, reason)


def grade_detailed(response: str, gold: str, kind: str, settings: GradeSettings = GradeSettings()) -> GradeResult:
    """Grade one response against its gold answer, with the reason.

    Args:
        response: the model output (``None`` is treated as empty).
        gold: the gold answer (an int gold, as in AIME 2025, is fine).
        kind: ``"math"``, ``"aime"`` or ``"gpqa"``.
        settings: limits and tolerances; ``settings.timeout_s`` bounds the
            call's wall-clock time.

    Returns:
        A ``GradeResult``. Bad gold data gives ``correct=False`` with an
        ``invalid gold`` reason rather than an exception.

    Raises:
        ValueError: for an unknown ``kind`` (a programming error).
    """
    started = time.monotonic()
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    response = "" if response is None else str(response)
    gold = "" if gold is None else str(gold)
    if not gold.strip():
        return GradeResult(False, None, "invalid gold: empty")
    if kind == "gpqa":
        return _grade_gpqa(response, gold, settings)
    pred = extract_math_answer(response, settings.extract)
    if pred is None:
        return GradeResult(False, None, NO_ANSWER)
    if kind == "aime":
        correct, reason = compare_aime(gold, pred)
        return GradeResult(correct, pred, reason)
    return _grade_math(gold, pred, settings, started)


def grade(response: str, gold: str, kind: str, settings: GradeSettings = GradeSettings()) -> bool:
    """Whether a response's answer is correct.

    Args:
        response: the model output.
        gold: the gold answer.
        kind: ``"math"``, ``"aime"`` or ``"gpqa"``.
        settings: limits and tolerances.

    Returns:
        The verdict of ``grade_detailed``.
    """
    return grade_detailed(response, gold, kind, settings).correct


def warm_up(settings: GradeSettings = GradeSettings(), timeout_s: float = 60.0) -> None:
    """Start the worker pool now rather than on the first hard answer.

    Args:
        settings: selects the pool.
        timeout_s: how long to wait for a worker to answer.

    Raises:
        TaskTimeout: no worker came up in time.
    """
    run_with_deadline("evaluators.tasks:ping", (), timeout_s, settings.pool)
