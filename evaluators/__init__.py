"""Answer checking for math, integer (AIME) and multiple-choice (GPQA) answers.

Built on Hugging Face's ``math-verify`` (parsing and equivalence), with thin
layers for what the library lacks. ``grade(response, gold, kind)`` is the
entry point; the pieces it is built from are usable alone:

* extract: ``extract_math_answer`` / ``gold_answer`` (``regions.py``,
  ``extract.py``, ``boxes.py``), ``extract_choice`` (``choice.py``,
  ``options.py``): the final answer of a long reasoning output (after
  ``</think>``, the last box, answer phrases, a bare final expression) and
  the final answer of a worked gold (``#### 18``);
* parse: ``parse_answer`` (``parse.py``): math-verify's LaTeX parser, never
  sympy's ``parse_expr``/``eval`` on model text;
* compare: ``verify_parsed`` (``compare.py``): math-verify's ``verify``, gold
  first, with our percent, decimal, ``i`` and vector conventions; the
  string-level rules in ``shortcuts.py`` (times of day, word answers),
  several solutions (``solutions.py``) and the integer rule (``aime.py``);
* ``WorkerPool`` / ``run_with_deadline``: deadline-bounded execution that
  works from any thread (``timeout.py``); math-verify's own timeout uses
  ``signal.alarm``, which only works in the main thread;
* re-grading files and run folders, pass@1 per dataset: ``runs.py``,
  ``regrade.py`` (used by ``memshare grade``).

Importing this package is cheap: sympy and math-verify load only in the
worker processes (or on the first direct ``parse_answer`` call).
"""

from evaluators.aime import compare_integer, parse_integer
from evaluators.choice import extract_choice
from evaluators.compare import verify_parsed
from evaluators.extract import extract_math_answer, gold_answer
from evaluators.grade import grade, grade_detailed, warm_up
from evaluators.kinds import KINDS, extract_answer, resolve_kind
from evaluators.options import normalize_choice, option_label
from evaluators.parse import parse_answer, parseable
from evaluators.result import GradeResult
from evaluators.settings import PERCENT_MODES, CompareSettings, ExtractSettings, GradeSettings, PoolSettings
from evaluators.shortcuts import same_answer, text_verdict, time_verdict
from evaluators.timeout import TaskFailed, TaskTimeout, WorkerPool, run_with_deadline

__all__ = [
    "KINDS",
    "PERCENT_MODES",
    "CompareSettings",
    "ExtractSettings",
    "GradeResult",
    "GradeSettings",
    "PoolSettings",
    "TaskFailed",
    "TaskTimeout",
    "WorkerPool",
    "compare_integer",
    "extract_answer",
    "extract_choice",
    "extract_math_answer",
    "gold_answer",
    "grade",
    "grade_detailed",
    "normalize_choice",
    "option_label",
    "parse_answer",
    "parse_integer",
    "parseable",
    "resolve_kind",
    "run_with_deadline",
    "same_answer",
    "text_verdict",
    "time_verdict",
    "verify_parsed",
    "warm_up",
]
