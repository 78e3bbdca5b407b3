"""Work run inside pool workers, plus the warm-up done once per worker family.

Importing this module (the forkserver preloads it) imports sympy and
math-verify and parses a few answers, so that every worker forked later
starts with warm grammar caches instead of paying ~0.5 s on its first task.
"""

from __future__ import annotations

from evaluators.compare import integer_value, verify_parsed
from evaluators.parse import clear_cache, parse_answer
from evaluators.settings import CompareSettings


def compare_math(gold: str, pred: str, settings: CompareSettings) -> tuple[bool, str]:
    """Parse both answers and compare them (the pool's unit of work).

    Args:
        gold: the gold answer's LaTeX.
        pred: the extracted prediction's LaTeX.
        settings: comparison settings.

    Returns:
        ``(correct, reason)`` as from ``compare.verify_parsed``.
    """
    return verify_parsed(parse_answer(gold), parse_answer(pred), settings)


def evaluate_integer(text: str, settings: CompareSettings) -> int | None:
    """The integer an expression answer equals (the integer rule's unit of work).

    Args:
        text: the expression's LaTeX (``\\frac{10}{2}``, ``2**3``).
        settings: comparison settings.

    Returns:
        The integer, or ``None`` as from ``compare.integer_value``.
    """
    return integer_value(parse_answer(text), settings)


def ping() -> str:
    """Trivial task used to check that a worker is alive.

    Returns:
        ``"pong"``.
    """
    return "pong"


def _warm_up() -> None:
    samples = (
        ("\\frac{1}{2}", "0.5"),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)"),
        ("x^2 + 3x - 4", "(x+4)(x-1)"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1,2)"),
        ("3+4i", "4i+3"),
        ("y = 2x + 3", "2x+3"),
        ("x > 5", "(5, \\infty)"),
        ("10\\%", "0.1"),
    )
    settings = CompareSettings()
    for gold, pred in samples:
        compare_math(gold, pred, settings)
    evaluate_integer("\\sqrt{36}", settings)
    # Keep the grammar caches, drop the cached answers.
    clear_cache()


_warm_up()
