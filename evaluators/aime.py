"""Integer answers (AIME): compared as integers, never as substrings.

Policy: from the extracted answer, remove math delimiters, spacing commands,
``\\text``-like groups that hold no digit (``10\\text{ cm}``), unit and other
words (``34 apples``, ``12cm``), what precedes the last ``=`` or ``\\approx``
(``n = 34``, ``x \\approx 11``) and thousands separators; a letter glued
before a digit makes an id (``QX7ZB``, ``B12``), no integer. What is left must be an
integer, optionally signed, with leading zeros allowed (``025`` is 25) and an
all-zero decimal part allowed (``70.0``). These verdicts need no sympy and are
instant.

A gold that is a decimal number (``2.75``, or ``2,75`` with a decimal comma:
one or two digits after the comma; ``3,600`` is a thousands separator) is
no integer: ``decimal_number`` gives it with a point, and ``grade`` compares
it as mathematics.

Anything else that holds a digit is an expression (``5+7``, ``\\frac{10}{2}``,
``\\sqrt{36}``, ``2**3``): ``integer_expression`` gives the text that
``grade`` evaluates in a worker, through math-verify's LaTeX parser (never
Python ``eval``), and the answer counts when its value is exactly the gold
integer (``compare.integer_value``). ``70.5`` and ``\\frac{7}{2}`` are no
integers and grade incorrect.
"""

from __future__ import annotations

import re

_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
# Thin spaces, currency and percent signs, degrees and braces vanish ("1,\\!000"
# is 1,000; "35 €" is 35); wide spaces separate ("25 \\quad 26" is two answers).
_JOINING = re.compile(r"\\[,;:!]|\\?\$|[€£¥]|\\?%|\^\{?\\circ\}?|\\circ|[{}]")
_SEPARATING = re.compile(r"\\quad|\\qquad|\\ ")
_WORDS = re.compile(r"[^\W\d_]+(?:\s*\^\s*\d)?")
# A letter glued before a digit makes an id, not a number with a unit: "QX7ZB", "B12".
_ID = re.compile(r"[A-Za-z]\d")
_INTEGER = re.compile(r"([+-]?)0*(\d{1,30})(?:\.0+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
# The value sits right of the last relation: "n = 34", "x \\approx 11".
_RELATION = re.compile(r"=|\\approx|\\simeq|≈")
_DELIMITERS = re.compile(r"\\?\$|\\[()\[\]]")
# "2,75" and "2,5" (a decimal comma: 1-2 digits after it) or "2.75"; "3,600" is an integer.
_DECIMAL = re.compile(r"([+-]?\d+)(?:,(\d{1,2})|\.(\d+))")


def _right_side(text: str) -> str:
    """What follows the last ``=`` or ``\\approx`` outside braces (not the ``n=1`` of a ``\\sum_{n=1}``)."""
    depth = 0
    outside = []
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        outside.append(depth <= 0)
    ends = [match.end() for match in _RELATION.finditer(text) if outside[match.start()]]
    return text[ends[-1] :] if ends else text


def _clean(text: str) -> str:
    text = _WRAPPER.sub(lambda m: m.group(1) if any(c.isdigit() for c in m.group(1)) else " ", text)
    text = _SEPARATING.sub(" ", _JOINING.sub("", _right_side(text)))
    if _ID.search(text):
        return ""
    text = _WORDS.sub(" ", text)
    text = _THOUSANDS.sub("", text)
    tokens = text.strip().rstrip(".").split()
    # "25 or 26" is two answers, not 2526.
    return tokens[0] if len(tokens) == 1 else ""


def parse_integer(text: str) -> int | None:
    """The integer an answer states, units and words stripped.

    Args:
        text: an extracted answer or a gold label (``"025"``, ``"10 cm"``).

    Returns:
        The integer, or ``None`` when what is left is not an integer.
    """
    match = _INTEGER.fullmatch(_clean(str(text)))
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * int(match.group(2))


def decimal_number(text: str) -> str | None:
    """A decimal answer written with a point (``2,75`` -> ``2.75``), if it is one.

    Args:
        text: a gold label or an extracted answer.

    Returns:
        The number with a decimal point, or ``None`` when the text (math
        delimiters and spaces aside) is not a decimal number.
    """
    match = _DECIMAL.fullmatch(_DELIMITERS.sub("", str(text)).strip())
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2) or match.group(3)}"


def integer_expression(text: str) -> str | None:
    """The expression an integer answer may be, to evaluate (``x = 5+7`` -> ``5+7``).

    Args:
        text: an extracted answer that ``parse_integer`` refused.

    Returns:
        The text right of its last ``=`` or ``\\approx``, math delimiters
        removed, or ``None`` when it holds no digit (nothing to evaluate).
    """
    expression = _right_side(_DELIMITERS.sub(" ", str(text))).strip()
    return expression if any(ch.isdigit() for ch in expression) else None


def compare_integer(gold: str, pred: str) -> tuple[bool, str]:
    """Compare an integer prediction with its gold.

    Args:
        gold: the gold answer (string or int-like string).
        pred: the extracted prediction.

    Returns:
        ``(correct, reason)``; reasons are ``match: integer``, ``mismatch``,
        ``invalid gold ...`` or ``not an integer ...``.
    """
    gold_value = parse_integer(gold)
    if gold_value is None:
        return False, f"invalid gold: {str(gold)[:40]!r} is not an integer"
    pred_value = parse_integer(pred)
    if pred_value is None:
        return False, f"not an integer: {pred[:40]!r}"
    if pred_value == gold_value:
        return True, "match: integer"
    return False, "mismatch"
