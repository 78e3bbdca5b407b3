"""Cheap refusal of numerals too large to evaluate, before any sympy work.

sympy evaluates integer powers and factorials eagerly, so ``9^{9^{9^{9}}}``
or ``(10^{10^{10}})!`` would burn a worker's CPU (and memory) until the
deadline kills it. The deadline alone keeps ``grade`` bounded; this guard
just spares the CPU (and the other answers graded alongside) for the common
shapes. It refuses, on the normalized LaTeX:

* numeric power towers (``9^{9^{9}}``, ``2^{3^4}``): a digit base whose
  exponent is itself a digit power;
* a numeric exponent of 7 or more digits (``2^{1000000}`` and beyond);
* factorials of numbers with 5 or more digits, or of numeric powers.

Symbolic towers such as ``e^{x^2}`` or ``2^{2^n}`` pass. All patterns are
linear: fixed character classes, no nested quantifiers.
"""

from __future__ import annotations

import re

_TOWER = re.compile(r"\d\s*\^\s*\{?\s*\(?\s*\d[\d\s]*\^\s*\{?\s*\(?\s*\d")
_HUGE_EXPONENT = re.compile(r"\^\s*\{?\s*\d{7,}")
_BIG_FACTORIAL = re.compile(r"\d{5,}\s*\}?\s*\)?\s*!")
_POWER_FACTORIAL = re.compile(r"\^\s*\{?\s*\d+\s*\}?\s*\}?\s*\)?\s*!")


def too_large(latex: str) -> bool:
    """Whether an answer holds a numeral too large to evaluate.

    Args:
        latex: normalized LaTeX (``normalize.normalize_latex``).

    Returns:
        ``True`` when one of the refused shapes occurs.
    """
    return any(p.search(latex) for p in (_TOWER, _HUGE_EXPONENT, _BIG_FACTORIAL, _POWER_FACTORIAL))
