"""Integer answers (AIME): compared as integers, never as substrings.

Policy: from the extracted answer, remove math delimiters, spacing commands,
``\\text``-like groups that hold no digit (``10\\text{ cm}``), unit and other
words (``34 apples``), a leading ``n =`` and thousands separators. What is
left must be an integer, optionally signed, with leading zeros allowed
(``025`` is 25) and an all-zero decimal part allowed (``70.0``). Anything
else (``70.5``, ``\\frac{10}{2}``) grades incorrect. No sympy is involved, so
these verdicts are instant.
"""

from __future__ import annotations

import re

_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
# Thin spaces, dollar and percent signs, degrees and braces vanish ("1,\\!000"
# is 1,000); wide spaces separate ("25 \\quad 26" is two answers).
_JOINING = re.compile(r"\\[,;:!]|\\?\$|\\?%|\^\{?\\circ\}?|\\circ|[{}]")
_SEPARATING = re.compile(r"\\quad|\\qquad|\\ ")
_WORDS = re.compile(r"[^\W\d_]+(?:\s*\^\s*\d)?")
_INTEGER = re.compile(r"([+-]?)0*(\d{1,30})(?:\.0+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")


def _clean(text: str) -> str:
    text = _WRAPPER.sub(lambda m: m.group(1) if any(c.isdigit() for c in m.group(1)) else " ", text)
    text = _SEPARATING.sub(" ", _JOINING.sub("", text))
    text = text[text.rfind("=") + 1 :]  # "n = 34" -> " 34"
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
