"""Answer checking for MATH-500, AIME and GPQA.

``grade(response, gold, kind)`` is the entry point; the pieces it is built
from are usable alone:

* ``extract_answer`` / ``extract_math_answer`` / ``extract_choice``: find the
  final answer in a response (``extract.py``, ``gpqa.py``);
* ``normalize_latex`` / ``structural_key``: string normalization
  (``normalize.py``);
* ``parse_math``: LaTeX to a ``MathAnswer`` tree with sympy leaves
  (``parse.py``);
* ``verify(gold_parsed, pred_parsed)``: equivalence, gold first
  (``compare.py``, ``scalar.py``);
* ``WorkerPool`` / ``run_with_deadline``: deadline-bounded execution that
  works from any thread (``timeout.py``).

Importing this package is cheap: sympy and the LaTeX grammar load only in
the worker processes (or on the first direct ``parse_math`` call).
"""

from evaluators.aime import compare_aime, parse_aime_int
from evaluators.compare import verify, verify_detailed
from evaluators.extract import extract_answer, extract_math_answer
from evaluators.gpqa import extract_choice, normalize_choice
from evaluators.grade import KINDS, grade, grade_detailed, warm_up
from evaluators.nodes import MathAnswer
from evaluators.normalize import is_text_answer, normalize_latex, structural_key, text_key
from evaluators.parse import parse_math
from evaluators.result import GradeResult
from evaluators.settings import CompareSettings, ExtractSettings, GradeSettings, PoolSettings
from evaluators.timeout import TaskFailed, TaskTimeout, WorkerPool, run_with_deadline

__all__ = [
    "KINDS",
    "CompareSettings",
    "ExtractSettings",
    "GradeResult",
    "GradeSettings",
    "MathAnswer",
    "PoolSettings",
    "TaskFailed",
    "TaskTimeout",
    "WorkerPool",
    "compare_aime",
    "extract_answer",
    "extract_choice",
    "extract_math_answer",
    "grade",
    "grade_detailed",
    "is_text_answer",
    "normalize_choice",
    "normalize_latex",
    "parse_aime_int",
    "parse_math",
    "run_with_deadline",
    "structural_key",
    "text_key",
    "verify",
    "verify_detailed",
    "warm_up",
]
