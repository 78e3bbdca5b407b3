"""Frozen settings for extraction, comparison, the worker pool and grading.

Every limit that protects the grader from hostile input lives here, so that a
caller can see (and tune) what bounds the work done per answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExtractSettings:
    """Limits for pulling an answer out of a model response.

    Attributes:
        max_region_chars: only the last this-many characters of the answer
            region are scanned; answers sit at the end of a response, and the
            cap keeps a 1 MB response cheap.
        phrase_window_chars: answer phrases ("the answer is ...") are searched
            in the last this-many characters of the region only.
        max_answer_chars: a boxed content or phrase answer longer than this is
            cut off at this length (it is then almost surely not an answer).
        max_box_candidates: how many ``\\boxed`` occurrences are tried, from the
            last backwards, when the later ones are unbalanced (cut-off output).
    """

    max_region_chars: int = 100_000
    phrase_window_chars: int = 4_000
    max_answer_chars: int = 2_000
    max_box_candidates: int = 20


@dataclass(frozen=True)
class CompareSettings:
    """How two math answers are judged equal.

    Attributes:
        float_rel_tol: relative tolerance used when either side contains a
            decimal literal (an approximate answer such as ``0.333``); chosen
            so that a value rounded to about 7 significant digits still
            matches, while ``1/3`` vs ``0.333`` does not.
        exact_rel_tol: relative tolerance for two exact closed forms evaluated
            numerically at ``eval_digits`` digits; tight enough that only
            round-off can hide behind it.
        eval_digits: precision of numeric evaluation.
        random_points: number of random points at which expressions with free
            symbols are compared numerically before (or instead of) simplify.
        max_nesting: brace/bracket depth above which an answer is compared as
            text only (the LaTeX parser recurses per level).
        max_parse_chars: answers longer than this are compared as text only.
        imaginary_i: treat the symbol ``i`` as the imaginary unit.
        refuse_huge_numbers: refuse numeric power towers, huge exponents and
            huge factorials without evaluating them (``guard.py``); the
            deadline bounds the rest.
    """

    float_rel_tol: float = 1e-6
    exact_rel_tol: float = 1e-12
    eval_digits: int = 30
    random_points: int = 3
    max_nesting: int = 60
    max_parse_chars: int = 600
    imaginary_i: bool = True
    refuse_huge_numbers: bool = True


@dataclass(frozen=True)
class PoolSettings:
    """The worker processes that run sympy work under a deadline.

    Attributes:
        max_workers: upper bound on live worker processes; more are started on
            demand when all are busy (e.g. grading from many threads).
        memory_limit_mb: address-space headroom granted to each worker above
            its size at start (Linux only; ``None`` disables the cap). A
            hostile ``9^{9^{9}}`` then fails with MemoryError instead of
            swapping the machine before the deadline hits.
        start_method: multiprocessing start method; ``forkserver`` forks
            workers from a process that already imported sympy, so a restart
            after a timeout costs milliseconds.
    """

    max_workers: int = 8
    memory_limit_mb: int | None = 2048
    start_method: str = "forkserver"


@dataclass(frozen=True)
class GradeSettings:
    """Everything ``grade`` needs.

    Attributes:
        timeout_s: wall-clock bound for one ``grade`` call, including waiting
            for a free worker. Past it the verdict is incorrect with reason
            ``timeout after {timeout_s}s``.
        extract: answer extraction limits.
        compare: math equivalence settings.
        pool: worker pool settings.
    """

    timeout_s: float = 5.0
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    compare: CompareSettings = field(default_factory=CompareSettings)
    pool: PoolSettings = field(default_factory=PoolSettings)
