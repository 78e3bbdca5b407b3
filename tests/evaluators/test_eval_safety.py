"""Hostile input, deadlines, threads and the worker pool."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from evaluators import (
    CompareSettings,
    GradeSettings,
    PoolSettings,
    TaskFailed,
    TaskTimeout,
    WorkerPool,
    grade,
    grade_detailed,
    warm_up,
)

FAST = GradeSettings(timeout_s=2.0)
# Without the huge-number guard, explosive answers reach sympy: only the
# deadline stops them.
UNGUARDED = GradeSettings(timeout_s=2.0, compare=CompareSettings(refuse_huge_numbers=False))
SLACK_S = 1.5
MEGABYTE = 1_000_000

# Inputs that would hang sympy (eager big-integer arithmetic).
EXPLOSIVE = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^{10^{10}})!}",
    "\\boxed{10^{10^{10}}! - 1}",
]

# Inputs that must be refused or handled cheaply, without a worker.
PATHOLOGICAL = [
    "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "\\boxed{" + "\\frac{1}{" * 3000 + "2" + "}" * 3000 + "}",
    "\\boxed{" * (MEGABYTE // 7),
    "the answer is " * (MEGABYTE // 14),
    "(" * MEGABYTE,
    "{" * MEGABYTE,
    "<think>" * (MEGABYTE // 7),
    "\\boxed{" + "1+" * 200_000 + "1}",
]


# Inputs that pass the cheap gate and make sympy (inside math-verify) work
# until the deadline: symbolic sums, integrals, huge expansions, towers of e.
SLOW_FOR_SYMPY = [
    "\\boxed{\\sum_{n=1}^{10^{9}} n^{n}}",
    "\\boxed{\\int_0^{\\infty} e^{-x^{100}} dx}",
    "\\boxed{(x+1)^{999}}",
    "\\boxed{e^{e^{e^{e^{e}}}}}",
]

# Hostile text for the extraction layers (linear scans only).
HOSTILE_TEXT = [
    "$" * MEGABYTE,
    "\\(" * (MEGABYTE // 2),
    "answer: " * (MEGABYTE // 8),
    "A. " * (MEGABYTE // 3),
    "**" * (MEGABYTE // 2),
    "1,000," * (MEGABYTE // 6),
    "12:00 " * (MEGABYTE // 6),
    "\\text{" * (MEGABYTE // 6),
    "\\boxed{1} and " * (MEGABYTE // 15),
]


@pytest.fixture(scope="module", autouse=True)
def started_pool():
    """Deadlines are timed on a started pool: the one-time start-up is not
    part of any answer's deadline (see the last test of this module)."""
    warm_up(GradeSettings(), timeout_s=120.0)


@pytest.mark.parametrize("response", SLOW_FOR_SYMPY)
def test_slow_sympy_work_is_cut_at_the_deadline(response):
    start = time.monotonic()
    result = grade_detailed(response, "x^2", "math", FAST)
    elapsed = time.monotonic() - start
    assert result.correct is False
    assert elapsed < FAST.timeout_s + SLACK_S, (result, elapsed)


@pytest.mark.parametrize("response", HOSTILE_TEXT, ids=range(len(HOSTILE_TEXT)))
@pytest.mark.parametrize("kind", ["math", "aime", "gpqa"])
def test_hostile_text_is_cheap(response, kind):
    start = time.monotonic()
    grade_detailed(response, "1" if kind != "gpqa" else "A", kind, FAST)
    assert time.monotonic() - start < FAST.timeout_s + SLACK_S


@pytest.mark.parametrize("response", EXPLOSIVE)
def test_explosive_answers_are_refused_cheaply(response):
    start = time.monotonic()
    result = grade_detailed(response, "1", "math", FAST)
    assert result.correct is False
    assert "too large" in result.reason
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("response", EXPLOSIVE)
def test_explosive_answers_hit_the_deadline_without_the_guard(response):
    start = time.monotonic()
    result = grade_detailed(response, "1", "math", UNGUARDED)
    elapsed = time.monotonic() - start
    # Killed at the deadline, or stopped early by the workers' memory cap.
    assert result.correct is False
    assert result.reason.startswith(("timeout", "error", "mismatch")), result.reason
    assert elapsed < UNGUARDED.timeout_s + SLACK_S


@pytest.mark.parametrize("response", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
@pytest.mark.parametrize("kind", ["math", "aime", "gpqa"])
def test_pathological_inputs_are_cheap(response, kind):
    start = time.monotonic()
    assert grade(response, "1" if kind != "gpqa" else "A", kind, FAST) is False
    assert time.monotonic() - start < FAST.timeout_s + SLACK_S


def test_default_bound_is_five_seconds():
    settings = GradeSettings(compare=CompareSettings(refuse_huge_numbers=False))
    assert settings.timeout_s == 5.0
    start = time.monotonic()
    result = grade_detailed("\\boxed{9^{9^{9^{9}}}}", "1", "math", settings)
    elapsed = time.monotonic() - start
    assert result.correct is False
    assert result.reason == "timeout after 5.0s" or result.reason.startswith("error")
    assert elapsed < 5.0 + SLACK_S


def test_megabyte_response_with_real_answer():
    response = "blah " * (MEGABYTE // 5) + "so the answer is \\boxed{\\frac{1}{2}}"
    start = time.monotonic()
    assert grade(response, "0.5", "math", FAST) is True
    assert grade(response.replace("frac{1}{2}", "frac{1}{3}"), "0.5", "math", FAST) is False
    assert time.monotonic() - start < 2 * FAST.timeout_s


def test_grading_recovers_after_a_timeout():
    assert grade_detailed("\\boxed{9^{9^{9^{9}}}}", "1", "math", UNGUARDED).reason.startswith("timeout")
    start = time.monotonic()
    assert grade("\\boxed{2^{1/2}}", "\\sqrt{2}", "math", FAST) is True
    assert time.monotonic() - start < FAST.timeout_s


def test_grading_from_threads():
    cases = [
        ("\\boxed{0.5}", "\\frac{1}{2}", "math", True),
        ("\\boxed{0.4}", "\\frac{1}{2}", "math", False),
        ("\\boxed{(3,\\infty)\\cup(-\\infty,2)}", "(-\\infty, 2) \\cup (3, \\infty)", "math", True),
        ("\\boxed{2(k+1)}", "2k+2", "math", True),
        ("\\boxed{2k+1}", "2k+2", "math", False),
        ("\\boxed{025}", "25", "aime", True),
        ("\\boxed{11}", "711", "aime", False),
        ("Answer: (C)", "C", "gpqa", True),
        ("Answer: (D)", "C", "gpqa", False),
        ("\\boxed{9^{9^{9^{9}}}}", "1", "math", False),
    ]
    work = cases * 6
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda c: grade(c[0], c[1], c[2], FAST), work))
    assert verdicts == [c[3] for c in work]
    assert time.monotonic() - start < FAST.timeout_s


def test_deadlines_hold_in_threads():
    hostile = ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{(10^{10^{10}})!}"] * 2
    # Legitimate answers graded alongside get a generous bound: on 2 cores
    # they share the CPU with the hostile ones until those are killed.
    patient = GradeSettings(timeout_s=10.0, compare=UNGUARDED.compare)
    work = [(r, UNGUARDED) for r in hostile] + [("\\boxed{0.5}", patient)] * 4

    def timed(item):
        start = time.monotonic()
        result = grade_detailed(item[0], "\\frac{1}{2}", "math", item[1])
        return result, time.monotonic() - start

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(timed, work))
    for result, elapsed in outcomes[: len(hostile)]:
        assert result.correct is False
        assert elapsed < UNGUARDED.timeout_s + SLACK_S, (result, elapsed)
    for result, elapsed in outcomes[len(hostile) :]:
        assert result.correct, (result, elapsed)


def test_pool_deadline_kills_slow_tasks():
    pool = WorkerPool(PoolSettings(max_workers=1))
    try:
        assert pool.call("evaluators.tasks:ping", (), 30.0) == "pong"
        start = time.monotonic()
        with pytest.raises(TaskTimeout):
            pool.call("time:sleep", (30,), 0.5)
        assert time.monotonic() - start < 0.5 + SLACK_S
        assert pool.call("evaluators.tasks:ping", (), 30.0) == "pong"
        assert pool.restarts == 1
    finally:
        pool.close()


def test_pool_reports_task_errors():
    pool = WorkerPool(PoolSettings(max_workers=1))
    try:
        with pytest.raises(TaskFailed, match="ValueError"):
            pool.call("math:sqrt", (-1,), 30.0)
    finally:
        pool.close()


def test_pool_waiting_for_a_worker_counts_against_the_deadline():
    pool = WorkerPool(PoolSettings(max_workers=1))
    try:
        pool.call("evaluators.tasks:ping", (), 30.0)

        def slow_call(_):
            start = time.monotonic()
            try:
                pool.call("time:sleep", (0.8,), 0.5)
            except TaskTimeout:
                pass
            return time.monotonic() - start

        with ThreadPoolExecutor(max_workers=3) as threads:
            durations = list(threads.map(slow_call, range(3)))
        assert max(durations) < 0.5 + SLACK_S
    finally:
        pool.close()


def test_pool_start_up_is_not_the_first_answers_time():
    # A pool of its own starts cold: importing sympy and math-verify takes
    # longer than this answer's whole deadline on a loaded machine.
    settings = GradeSettings(timeout_s=1.0, pool=PoolSettings(max_workers=2, memory_limit_mb=1024))
    assert grade_detailed("\\boxed{0.5}", "\\frac{1}{2}", "math", settings).reason == "match: math-verify"
    start = time.monotonic()
    assert grade_detailed("\\boxed{0.4}", "\\frac{1}{2}", "math", settings).correct is False
    assert time.monotonic() - start < settings.timeout_s + SLACK_S


# Hostile text for the rules of issue 22: the integer expression rule, Python
# notation, several solutions, letters in prose: (gold, response, kind).
HOSTILE_NEW_RULES = [
    ("1", "\\boxed{9^{9^{9^{9}}}}", "aime"),
    ("1", "\\boxed{\\sum_{n=1}^{10^{9}} n^{n}}", "aime"),
    ("1", "\\boxed{" + "sqrt(" * 50_000 + "2" + ")" * 50_000 + "}", "math"),
    ("1", "\\boxed{" + "2**" * 100_000 + "2}", "aime"),
    ("1", "2**" * (MEGABYTE // 3), "math"),
    ("p=5, q=2; p=7, q=2", "\\boxed{" + "p = 5, q = 2 and " * 100 + "}", "math"),
    ("p=5, q=2; p=7, q=2", "p=1, " * (MEGABYTE // 5), "math"),
    ("$a$ and $b$", "$a$ and " * (MEGABYTE // 8), "math"),
    ("A", "The answer is A or B. " * (MEGABYTE // 22), "gpqa"),
    ("A", "Therefore " * (MEGABYTE // 10), "gpqa"),
    ("1", "$\\boxed{" * (MEGABYTE // 8), "math"),
]


@pytest.mark.parametrize("gold,response,kind", HOSTILE_NEW_RULES, ids=range(len(HOSTILE_NEW_RULES)))
def test_hostile_text_for_the_new_rules_is_bounded(gold, response, kind):
    start = time.monotonic()
    assert grade(response, gold, kind, FAST) is False
    assert time.monotonic() - start < FAST.timeout_s + SLACK_S
