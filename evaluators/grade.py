"""``grade``: extract, then compare, within a time bound.

What runs where: extraction and the string-level verdicts (``shortcuts.py``,
the integer and choice rules) run in the calling thread: linear scans of
capped text, microseconds to a few milliseconds even for a 1 MB response.
Only math answers that need parsing, and integer answers written as an
expression, go to a worker process (math-verify and sympy), under the deadline of ``GradeSettings.timeout_s``. The pool's
one-time start-up (``PoolSettings.start_timeout_s``) is not counted against
the first answer's deadline.
"""

from __future__ import annotations

import time
from typing import Any

from evaluators.aime import compare_integer, decimal_number, integer_expression, parse_integer
from evaluators.choice import extract_choice, extract_option_text
from evaluators.extract import extract_math_answer, gold_answer, math_segments, prose_answers
from evaluators.kinds import resolve_kind
from evaluators.options import letters_for, parse_gold
from evaluators.parse import parseable, prepare
from evaluators.regions import answer_regions
from evaluators.result import GradeResult
from evaluators.settings import GradeSettings
from evaluators.shortcuts import same_answer, same_text, text_verdict, time_verdict
from evaluators.solutions import solution_sets
from evaluators.timeout import TaskFailed, TaskTimeout, get_pool, run_with_deadline

NO_ANSWER = "no answer found"
_TASK = "evaluators.tasks:compare_math"
_INTEGER_TASK = "evaluators.tasks:evaluate_integer"
_PING = "evaluators.tasks:ping"


def _compare_math(gold: str, pred: str, settings: GradeSettings, started: float) -> tuple[bool, str]:
    if same_answer(gold, pred):
        return True, "match: string"
    # "p=5, q=2; p=7, q=2": both sides become sets of solution tuples.
    gold, pred = solution_sets(gold, pred) or (gold, pred)
    for rule, name in ((time_verdict, "time"), (text_verdict, "text")):
        verdict = rule(gold, pred)
        if verdict is not None:
            return verdict, f"match: {name}" if verdict else "mismatch"
    if not parseable(prepare(pred), settings.compare):
        # Too long, too deep for the recursive parser, or a numeral sympy
        # would spend the whole deadline on: not worth a worker.
        return False, "mismatch (prediction too large to parse or evaluate)"
    ran, verdict = _in_worker(_TASK, (gold, pred, settings.compare), settings, started)
    return verdict if ran else (False, verdict)


def _in_worker(target: str, args: tuple, settings: GradeSettings, started: float) -> tuple[bool, Any]:
    """``(True, result)`` of a task run within the answer's deadline, else ``(False, reason)``."""
    # NOTE: the pool's one-time start-up is not this answer's work.
    start_up = get_pool(settings.pool).ensure_started(_PING, settings.pool.start_timeout_s)
    remaining = settings.timeout_s - (time.monotonic() - started - start_up)
    try:
        return True, run_with_deadline(target, args, remaining, settings.pool)
    except TaskTimeout:
        return False, f"timeout after {settings.timeout_s}s"
    except TaskFailed as exc:
        return False, f"error: {exc}"


def _grade_integer(gold: str, pred: str, settings: GradeSettings, started: float) -> GradeResult:
    decimal = decimal_number(gold) if parse_integer(gold) is None else None
    if decimal is not None:
        # "2,75" is no integer: the integer rule cannot judge it, mathematics can.
        correct, reason = _compare_math(decimal, decimal_number(pred) or pred, settings, started)
        return GradeResult(correct, pred, reason)
    correct, reason = compare_integer(gold, pred)
    # An answer that is no integer as written may be an expression of one (5+7, \\sqrt{36}).
    expression = integer_expression(pred) if reason.startswith("not an integer") else None
    if expression is None or not parseable(prepare(expression), settings.compare):
        return GradeResult(correct, pred, reason)
    ran, value = _in_worker(_INTEGER_TASK, (expression, settings.compare), settings, started)
    if not ran:
        return GradeResult(False, pred, value)
    if value is None:
        return GradeResult(False, pred, reason)
    correct = value == parse_integer(gold)
    return GradeResult(correct, pred, "match: integer (evaluated)" if correct else "mismatch")


def _grade_choice(response: str, gold: str, settings: GradeSettings, started: float) -> GradeResult:
    choice = parse_gold(gold, settings.extract.choices)
    if choice.letter:
        letter = extract_choice(response, settings.extract, letters_for(choice, settings.extract))
        if letter:
            return GradeResult(letter == choice.letter, letter, "match: choice" if letter == choice.letter else "mismatch")
    if choice.text is None:
        return GradeResult(False, None, NO_ANSWER)
    text = extract_option_text(response, settings.extract)
    if text is None:
        return GradeResult(False, None, NO_ANSWER)
    correct, reason = _compare_math(choice.text, text, settings, started)
    return GradeResult(correct, text, reason.replace("match:", "match: option text,", 1) if correct else reason)


def grade_detailed(response: str, gold: str, kind: str, settings: GradeSettings = GradeSettings()) -> GradeResult:
    """Grade one response against its gold answer, with the reason.

    Args:
        response: the model output (``None`` is treated as empty).
        gold: the gold answer (an int gold, as in AIME 2025, is fine; a
            worked solution ending in ``#### 18`` or in a box grades against
            its final answer).
        kind: ``"math"``, ``"aime"`` or ``"gpqa"`` (or an alias, see
            ``resolve_kind``).
        settings: limits and tolerances; ``settings.timeout_s`` bounds the
            call's wall-clock time.

    Returns:
        A ``GradeResult``. Bad gold data gives ``correct=False`` with an
        ``invalid gold`` reason rather than an exception.

    Raises:
        ValueError: for an unknown ``kind`` (a programming error).
    """
    started = time.monotonic()
    kind = resolve_kind(kind)
    response = "" if response is None else str(response)
    gold = "" if gold is None else str(gold)
    if not gold.strip():
        return GradeResult(False, None, "invalid gold: empty")
    # NOTE: the first rule of every kind: a response (or its part after
    # </think>) that is the gold's own text is right, whatever the text says.
    for whole in (response, answer_regions(response, settings.extract)[0]):
        if same_text(gold, whole) or same_text(gold_answer(gold, settings.extract), whole):
            return GradeResult(True, whole.strip(), "match: identical")
    if kind == "gpqa":
        return _grade_choice(response, gold_answer(gold, settings.extract), settings, started)
    gold = gold_answer(gold, settings.extract)
    if not gold:
        return GradeResult(False, None, "invalid gold: empty final answer")
    if math_segments(gold) >= 2:
        # A gold that is a phrase around several math groups is matched whole.
        for whole in prose_answers(response, settings.extract):
            if same_answer(gold, whole):
                return GradeResult(True, whole, "match: string")
    pred = extract_math_answer(response, settings.extract)
    if pred is None:
        return GradeResult(False, None, NO_ANSWER)
    if kind == "aime":
        return _grade_integer(gold, pred, settings, started)
    correct, reason = _compare_math(gold, pred, settings, started)
    return GradeResult(correct, pred, reason)


def grade(response: str, gold: str, kind: str, settings: GradeSettings = GradeSettings()) -> bool:
    """Whether a response's answer is correct.

    Args:
        response: the model output.
        gold: the gold answer.
        kind: ``"math"``, ``"aime"`` or ``"gpqa"`` (or an alias).
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
    run_with_deadline(_PING, (), timeout_s, settings.pool)
