"""AIME answers: integers 0-999, compared as numbers, never as substrings.

Policy: after removing math delimiters, ``\\text``-like wrappers and spaces,
the answer must be a plain run of digits (leading zeros allowed, so ``025`` is
25). Anything else, decimals such as ``25.0`` and expressions such as
``\\frac{50}{2}`` included, is not an AIME answer and grades incorrect; so is
an integer outside 0-999. No sympy is involved, so these verdicts are
instant.
"""

from __future__ import annotations

import re

_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_DIGITS = re.compile(r"\+?(\d{1,12})")
AIME_MAX = 999


def _clean(text: str) -> str:
    text = _WRAPPER.sub(r"\1", text)
    for junk in ("$", "\\,", "\\!", "\\;", "{", "}", " "):
        text = text.replace(junk, "")
    return text.rstrip(".")


def parse_aime_int(text: str) -> int | None:
    """The integer an AIME answer string states.

    Args:
        text: an extracted answer or a gold label (``"025"``, ``"\\text{25}"``).

    Returns:
        The integer when the text is a plain integer in 0-999, else ``None``.
    """
    match = _DIGITS.fullmatch(_clean(str(text)))
    if not match:
        return None
    value = int(match.group(1))
    return value if value <= AIME_MAX else None


def compare_aime(gold: str, pred: str) -> tuple[bool, str]:
    """Compare an AIME prediction with its gold.

    Args:
        gold: the gold answer (string or int-like string).
        pred: the extracted prediction.

    Returns:
        ``(correct, reason)``; reasons are ``match: integer``, ``mismatch``,
        ``invalid gold ...`` or ``not an AIME integer ...``.
    """
    gold_value = parse_aime_int(gold)
    if gold_value is None:
        return False, f"invalid gold: {str(gold)[:40]!r} is not an integer in 0-{AIME_MAX}"
    pred_value = parse_aime_int(pred)
    if pred_value is None:
        return False, f"not an AIME integer (0-{AIME_MAX}): {pred[:40]!r}"
    if pred_value == gold_value:
        return True, "match: integer"
    return False, "mismatch"
