"""Work run inside pool workers, plus the warm-up done once per worker family.

Importing this module (the forkserver preloads it) imports sympy and the
LaTeX grammar and parses a few answers, so that every worker forked later
starts with warm parser caches instead of paying ~0.5 s on its first task.
"""

from __future__ import annotations

from evaluators.compare import verify_detailed
from evaluators.parse import clear_cache, parse_math
from evaluators.settings import CompareSettings


def compare_math(gold: str, pred: str, settings: CompareSettings) -> tuple[bool, str]:
    """Parse both answers and compare them (the pool's unit of work).

    Args:
        gold: the gold answer's LaTeX.
        pred: the extracted prediction's LaTeX.
        settings: comparison settings.

    Returns:
        ``(correct, reason)`` as from ``compare.verify_detailed``; when the
        prediction could not be parsed the reason says so.
    """
    gold_parsed = parse_math(gold, settings)
    pred_parsed = parse_math(pred, settings)
    correct, reason = verify_detailed(gold_parsed, pred_parsed, settings)
    if not correct and not pred_parsed.parsed:
        reason = "mismatch (prediction not parsable)"
    elif not correct and not gold_parsed.parsed:
        reason = "mismatch (gold not parsable)"
    return correct, reason


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
        ("\\sqrt[3]{2} \\pi", "2^{1/3}\\pi"),
    )
    settings = CompareSettings()
    for gold, pred in samples:
        compare_math(gold, pred, settings)
    # Keep the grammar caches, drop the cached answers.
    clear_cache()


_warm_up()
