"""Frozen settings for extraction, comparison, the worker pool and grading.

Every limit that protects the grader from hostile input lives here, so that a
caller can see (and tune) what bounds the work done per answer. Comparison
defaults are math-verify's own (``math_verify.verify``), except where a
setting says otherwise and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PERCENT_MODES = ("library", "fraction", "number", "either")


@dataclass(frozen=True)
class ExtractSettings:
    """Limits for pulling an answer out of a model response.

    Attributes:
        max_region_chars: only the last this-many characters of the answer
            region are scanned; answers sit at the end of a response, and the
            cap keeps a 1 MB response cheap.
        phrase_window_chars: answer phrases ("the answer is ...") and the
            bare final expression are searched in the last this-many
            characters of the region only.
        max_answer_chars: a boxed content or phrase answer longer than this is
            cut off at this length (it is then almost surely not an answer).
        max_box_candidates: how many ``\\boxed`` occurrences are tried, from the
            last backwards, when the later ones are unbalanced (cut-off output).
        max_bare_chars: a region this short, without sentences, is taken whole
            as the answer (``5``, ``$\\frac{1}{2}$``, ``x^2 - x^2``).
        choices: the letters a multiple-choice answer may be.
    """

    max_region_chars: int = 100_000
    phrase_window_chars: int = 4_000
    max_answer_chars: int = 2_000
    max_box_candidates: int = 20
    max_bare_chars: int = 200
    choices: str = "ABCDEFGHIJ"

    def __post_init__(self) -> None:
        if min(self.max_region_chars, self.phrase_window_chars, self.max_answer_chars, self.max_box_candidates) < 1:
            raise ValueError("extraction limits must be positive")
        if not self.choices.isalpha() or not self.choices.isupper():
            raise ValueError(f"choices must be upper-case letters, got {self.choices!r}")


@dataclass(frozen=True)
class CompareSettings:
    """How two math answers are judged equal.

    Attributes:
        float_rounding: decimals both sides are rounded to when one side is a
            decimal literal (math-verify's ``float_rounding``): ``1/3`` equals
            ``0.333333`` but not ``0.333``; ``\\pi`` does not equal ``3.14159``.
        float_rel_tol: also required of a decimal match, so that small
            numbers are not all equal at 6 decimals (``6.72e-5`` vs ``6.73e-5``).
        numeric_precision: digits of numeric evaluation (math-verify's
            ``numeric_precision``).
        percent: what ``X%`` means against a plain number.
            ``library`` (default): math-verify's convention, under which
            ``10%`` equals both ``10`` and ``0.1``;
            ``fraction``: ``X%`` is ``X/100`` only;
            ``number``: the sign is a unit, ``X%`` is ``X`` only;
            ``either``: ``X/100`` or ``X``, for integers and decimals alike.
        set_relation: compare an inequality with an interval (``x > 5`` vs
            ``(5, \\infty)``) whichever side it is on (math-verify's
            ``allow_set_relation_comp``).
        max_parse_chars: answers longer than this are compared as text only.
        max_nesting: bracket depth above which an answer is compared as text
            only (the LaTeX parser recurses per level).
        refuse_huge_numbers: refuse numeric power towers, huge exponents and
            huge factorials without evaluating them (``guard.py``); the
            deadline bounds the rest.
    """

    float_rounding: int = 6
    float_rel_tol: float = 1e-4
    numeric_precision: int = 15
    percent: str = "library"
    set_relation: bool = True
    max_parse_chars: int = 600
    max_nesting: int = 60
    refuse_huge_numbers: bool = True

    def __post_init__(self) -> None:
        if self.percent not in PERCENT_MODES:
            raise ValueError(f"percent must be one of {', '.join(PERCENT_MODES)}, got {self.percent!r}")
        if self.float_rounding < 0 or self.numeric_precision < 1 or self.float_rel_tol < 0:
            raise ValueError("float_rounding, numeric_precision and float_rel_tol must be non-negative")
        if self.max_parse_chars < 1 or self.max_nesting < 1:
            raise ValueError("max_parse_chars and max_nesting must be positive")


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
            workers from a process that already imported sympy and
            math-verify, so a restart after a timeout costs milliseconds.
        start_timeout_s: the most a process waits, once, for the pool to
            start (importing sympy and math-verify: about 1 s, several on a
            loaded machine). Not counted against the first answer's deadline.
    """

    max_workers: int = 8
    memory_limit_mb: int | None = 2048
    start_method: str = "forkserver"
    start_timeout_s: float = 60.0


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

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
