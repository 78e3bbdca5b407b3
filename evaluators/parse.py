"""Answer text -> sympy objects, through math-verify's LaTeX parser.

``parse_answer`` hands an extracted answer to ``math_verify.parse`` as the
content of a ``\\boxed{}``, so that math-verify's LaTeX normalization (units,
``\\text``, ``\\dfrac``, thousands separators, ``\\%``) applies, and only its
LaTeX extraction runs: its plain-expression extraction calls sympy's
``parse_expr``, which evaluates Python code, and model text never reaches it.

Before that, ``prepare`` makes a few textual repairs math-verify lacks:
Unicode symbols (``°``, ``π``, ``√``, ``−``), Python notation (``2**(1/4)``,
``notation.py``), percent in words (``10 percent`` is ``10\\%``, and
``\\frac{3}{4}\\text{ percent}`` is ``\\frac{3}{4}\\%``), a plain fraction
before a percent sign (``3/4\\%`` is ``\\frac{3}{4}\\%``, not ``3/(4\\%)``), a bare
``pi`` or ``inf``, scientific notation (``6.02e23``), a decimal comma and a
unit word after a number (``15 cm^2``).

``parseable`` is the cheap gate run in the calling thread: answers too long,
too deeply nested or holding a numeral too large to evaluate never reach a
worker. math-verify is imported on first use only (workers preload it).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from evaluators.braces import nesting_depth
from evaluators.guard import too_large
from evaluators.notation import plain_to_latex
from evaluators.settings import CompareSettings

_UNICODE = (
    ("−", "-"),
    ("–", "-"),
    ("°", "^\\circ"),
    ("π", "\\pi "),
    ("∞", "\\infty "),
    ("×", "\\times "),
    ("÷", "\\div "),
    ("≤", "\\le "),
    ("≥", "\\ge "),
    ("≠", "\\neq "),
    ("·", "\\cdot "),
    ("\\varnothing", "\\emptyset"),
    ("\\langle", "("),
    ("\\rangle", ")"),
)
_SQRT = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z]|\{)")
# "1000,99" and "0,111" use a decimal comma; "58,500" (thousands) and "-2,1" (a list) do not.
_DECIMAL_COMMA = re.compile(r"(-?(?:0|\d+(?=,(?:\d{2}|\d{4,})$))),(\d+)")
_SCIENTIFIC = re.compile(r"(?<![A-Za-z\\\d.^_])(\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})(?![A-Za-z\d])")
_BARE_WORDS = re.compile(r"(?<![\\A-Za-z])(pi|inf|infinity)(?![A-Za-z])")
# "10 percent", "10\\text{ percent}", "10 pct", "\\frac{3}{4}\\text{ percent}": the sign in
# words, so the percent setting applies.
_PERCENT_WORD = re.compile(
    r"([\d})])(?:\s|\\[ ,;:!]|~){0,4}(?:\\(?:text|mbox|mathrm)\s*\{\s*(?:percent(?:age)?|per\s?cent|pct)\.?\s*\}"
    r"|(?:percent(?:age)?|per\s?cent|pct)(?![A-Za-z])\.?)",
    re.IGNORECASE,
)
# "3/4\\%" would read as 3/(4%), "\\frac34\\%" and "(3/4)\\%" not at all: the fraction is what is a percent.
_FRACTION_PERCENT = re.compile(
    r"(?<![\w.}/)^\\])(?:\(\s*(\d+)\s*/\s*(\d+)\s*\)|(\d+)\s*/\s*(\d+)|\\[dt]?frac\s*(\d)\s*(\d))\s*\\?%"
)
_NUMBER_WITH_UNIT = re.compile(
    r"(?P<number>[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+))\s*(?P<unit>[A-Za-z]{2,}(?: [A-Za-z]{2,})?)(?:\s*\^\s*\{?[23]\}?)?\.?"
)


def _fraction_percent(match: re.Match) -> str:
    numerator, denominator = (group for group in match.groups() if group is not None)
    return f"\\frac{{{numerator}}}{{{denominator}}}\\%"


def prepare(text: str) -> str:
    """Textual repairs before math-verify sees an answer.

    Args:
        text: an extracted answer or a gold answer.

    Returns:
        The answer with Unicode math, Python notation (``2**(1/4)``), percent
        in words, bare ``pi``/``inf``, a decimal comma (``1000,99``) and a
        trailing unit word rewritten (``15 cm^2`` -> ``15``).
    """
    for old, new in _UNICODE:
        text = text.replace(old, new)
    text = plain_to_latex(_PERCENT_WORD.sub(r"\1\\%", text))
    text = _FRACTION_PERCENT.sub(_fraction_percent, text)
    text = _SQRT.sub(lambda m: "\\sqrt{" + m.group(1) + ("}" if m.group(1) != "{" else ""), text)
    text = _SCIENTIFIC.sub(r"\1 \\times 10^{\2}", text)
    text = _BARE_WORDS.sub(lambda m: "\\pi " if m.group(1) == "pi" else "\\infty ", text)
    text = _DECIMAL_COMMA.sub(r"\1.\2", text.strip()) if _DECIMAL_COMMA.fullmatch(text.strip()) else text
    unit = _NUMBER_WITH_UNIT.fullmatch(text.strip())
    if unit and unit.group("unit").lower() not in ("or", "and", "pi", "inf"):
        text = unit.group("number")
    return text.strip()


def parseable(text: str, settings: CompareSettings = CompareSettings()) -> bool:
    """Whether an answer may go to the parser at all.

    Args:
        text: the answer text.
        settings: the limits.

    Returns:
        ``False`` for answers longer than ``max_parse_chars``, nested deeper
        than ``max_nesting`` or (when ``refuse_huge_numbers``) holding a
        numeral too large to evaluate.
    """
    if len(text) > settings.max_parse_chars or nesting_depth(text) > settings.max_nesting:
        return False
    return not (settings.refuse_huge_numbers and too_large(text))


@lru_cache(maxsize=1)
def _library() -> tuple[Any, Any]:
    # NOTE: with no timeout math-verify logs a warning once; the worker pool's
    # deadline is the timeout here.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from math_verify import LatexExtractionConfig, parse

    return parse, [LatexExtractionConfig(boxed_match_priority=0)]


@lru_cache(maxsize=1024)
def parse_answer(text: str) -> tuple[Any, ...]:
    """Parse one answer with math-verify.

    Args:
        text: an answer (LaTeX or plain), without ``\\boxed``.

    Returns:
        math-verify's parse result as a tuple: ``(sympy_object, normalized
        string)``, or ``()`` when nothing parsed. Cached per process.
    """
    parse, config = _library()
    # parsing_timeout=None: the signal-based alarm only works in the main
    # thread; the caller's worker-pool deadline bounds this call instead.
    return tuple(parse("\\boxed{" + prepare(text) + "}", config, parsing_timeout=None))


def clear_cache() -> None:
    """Forget cached parses (benchmarks time the parser from cold)."""
    parse_answer.cache_clear()
