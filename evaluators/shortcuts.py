"""Verdicts decided on the strings, before any parsing.

These run in the calling thread in microseconds and cover what math-verify
either gets wrong or does not need to see:

* ``same_text``: the same text after whitespace normalisation, the first
  rule of every kind (an answer identical to its gold is never wrong);
* ``same_answer``: identical up to spacing and cosmetic LaTeX;
* ``time_verdict``: ``12:00`` is a time of day, not ``12/0`` (math-verify
  parses it as a division by zero, so ``12:00`` would equal ``1:00``);
* ``text_verdict``: a gold that is words (``\\text{Evelyn}``, ``Monday``) is
  compared as words: as mathematics it would be a commutative product of
  letters, and ``Evlyne`` would equal it.

Each returns ``None`` when it does not apply. All patterns are linear.
"""

from __future__ import annotations

import re

_COSMETIC = re.compile(r"\\left|\\right|\\[,;:! ]|\\displaystyle|\s+|\$")
_FRAC = re.compile(r"\\[dt]frac")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2})?\s*(a\.?m\.?|p\.?m\.?)?", re.IGNORECASE)
_WORDS = re.compile(r"\(?[^\W\d_]+(?:[ \-'][^\W\d_]+){0,5}\)?\.?")
_ARTICLES = ("the ", "an ", "a ")


def same_text(gold: str, pred: str) -> bool:
    """Whether two texts are identical once runs of whitespace are one space.

    Args:
        gold: the gold answer, as given.
        pred: a response, or its final region.

    Returns:
        ``True`` for the same non-empty text, whatever it says.
    """
    key = " ".join(gold.split())
    return bool(key) and key == " ".join(pred.split())


def _cosmetic_key(text: str) -> str:
    return _FRAC.sub("\\\\frac", _COSMETIC.sub("", text))


def same_answer(gold: str, pred: str) -> bool:
    """Whether two answers are the same string up to spacing and cosmetic LaTeX.

    Args:
        gold: the gold answer.
        pred: the extracted prediction.

    Returns:
        ``True`` when equal after dropping spaces, ``$``, ``\\left``/``\\right``,
        thin spaces and ``\\dfrac``/``\\tfrac`` variants.
    """
    key = _cosmetic_key(gold)
    return bool(key) and key == _cosmetic_key(pred)


def _unwrap(text: str) -> str:
    return _TEXT_WRAP.sub(r"\1", text).replace("$", "").strip()


def _time(text: str) -> tuple[int, int, str] | None:
    match = _TIME.fullmatch(_unwrap(text))
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 24 or minute > 59:
        return None
    suffix = (match.group(3) or "").replace(".", "").lower()
    return hour, minute, suffix


def time_verdict(gold: str, pred: str) -> bool | None:
    """Compare times of day (``h:mm``, optional ``am``/``pm``).

    Args:
        gold: the gold answer.
        pred: the extracted prediction.

    Returns:
        ``None`` when the gold is not a time; else whether the prediction is
        the same time (without am/pm on one side, hours compare modulo 12).
    """
    want = _time(gold)
    if want is None:
        return None
    got = _time(pred)
    if got is None:
        return False
    (h1, m1, s1), (h2, m2, s2) = want, got
    if s1 and s2:
        return (h1 % 12, m1, s1) == (h2 % 12, m2, s2)
    if not s1 and not s2:
        return (h1, m1) == (h2, m2)
    return (h1 % 12, m1) == (h2 % 12, m2)


def _text_key(text: str) -> str:
    key = _unwrap(text).lower().strip(" .")
    for article in _ARTICLES:
        key = key.removeprefix(article)
    return re.sub(r"[^\w]", "", key)


def is_text(gold: str) -> bool:
    """Whether a gold answer is words rather than mathematics.

    Args:
        gold: the gold answer.

    Returns:
        ``True`` for ``\\text{...}``-wrapped words and for plain words of
        three letters or more (``Monday``, ``no solution``); one- and
        two-letter golds (``x``, ``ab``) stay mathematics.
    """
    stripped = gold.strip()
    whole = _TEXT_WRAP.fullmatch(stripped)
    if whole:
        return bool(_WORDS.fullmatch(whole.group(1).strip()))
    return bool(_WORDS.fullmatch(stripped)) and len(re.sub(r"[^\w]", "", stripped)) >= 3


def text_verdict(gold: str, pred: str) -> bool | None:
    """Compare word answers case-insensitively, ignoring a leading article.

    Args:
        gold: the gold answer.
        pred: the extracted prediction.

    Returns:
        ``None`` when the gold is not words (``is_text``), else whether the
        prediction says the same words.
    """
    if not is_text(gold):
        return None
    return _text_key(gold) == _text_key(pred) != ""
