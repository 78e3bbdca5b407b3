"""Multiple-choice options: a lone letter, a labelled option, and what a gold names.

A gold is a lone letter (``C``, ``(c)``, ``\\text{C}``), a labelled option
(``(B) 432``, ``B. 432``, ``C Cecile``, or the letter alone on its line with
the text on the next, ``C\\n-3``: the letter, with the text as a second
chance), or the option's text alone (``432``, ``Paris``). The same label forms
are read in a prediction's box (``\\boxed{C Cecile}``), so that the letter is
taken from gold and prediction alike, as lighteval does.

A label without punctuation (``C Cecile``) needs its text to open with a
capital, a digit or math (``$``, ``\\``): ``A dog`` is a text that opens with
an article, and ``A B`` names two letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluators.settings import ExtractSettings

MIN_CHOICES = 4
ALL_LETTERS = "ABCDEFGHIJ"

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{")
_LABEL = re.compile(
    r"\(([A-Za-z])\)\s*[.:]?\s*(.*)|([A-Z])\s*[.:)]\s*(.*)|([A-Z])\s+([A-Z0-9$\\].*)",
    re.DOTALL,
)
_LONE = re.compile(r"\(?([A-Za-z])\)?\.?")
_STARTS_WITH_LETTER = re.compile(r"\(?[A-Z]\)?(?![A-Za-z0-9])")
# "A, B", "(A) or (C)", "A and B": an answer naming several letters.
LETTER_LIST = re.compile(r"\(?[A-Z]\)?(?:\s*(?:,|/|&|;|\band\b|\bor\b)\s*\(?[A-Z]\)?)+")


@dataclass(frozen=True)
class ChoiceGold:
    """What a multiple-choice gold names.

    Attributes:
        letter: the option letter, when the gold gives one.
        text: the option's text, when the gold gives one.
    """

    letter: str | None
    text: str | None


def clean_option(value: str) -> str:
    """``\\text{(B) } 432`` -> ``(B)  432``: wrappers, braces, quotes and math delimiters gone.

    Args:
        value: a gold label or boxed content.

    Returns:
        The bare text.
    """
    value = _WRAPPERS.sub("", value)
    for ch in "${}*\"'`":
        value = value.replace(ch, "")
    return value.replace("\\(", "").replace("\\)", "").strip()


def normalize_choice(value: str, letters: str = ALL_LETTERS) -> str | None:
    """The letter a whole value stands for (``"(c)"``, ``"\\text{C}"``, ``"C."``).

    Args:
        value: a gold label or boxed content.
        letters: the valid letters.

    Returns:
        The upper-case letter, or ``None`` when the value is not a lone valid letter.
    """
    match = _LONE.fullmatch(clean_option(value))
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def option_label(value: str, letters: str = ALL_LETTERS) -> tuple[str, str] | None:
    """Split a labelled option (``(B) 432``, ``B. 432``, ``C Cecile``, ``C\\n-3``) into letter and text.

    Args:
        value: a gold label or boxed content.
        letters: the valid letters.

    Returns:
        ``(letter, text)``, or ``None`` when the value does not start with a
        label (or its "text" is another letter: ``A B``).
    """
    cleaned = clean_option(value)
    head, newline, rest = cleaned.partition("\n")
    if newline and rest.strip() and normalize_choice(head, letters):
        return normalize_choice(head, letters), rest.strip()  # "C\n-3": letter, then its text
    match = _LABEL.fullmatch(cleaned)
    if not match:
        return None
    group = next(i for i in (1, 3, 5) if match.group(i))
    letter, text = match.group(group).upper(), match.group(group + 1).strip()
    if letter not in letters or not text or (group == 5 and _STARTS_WITH_LETTER.match(text)):
        return None
    return letter, text


def parse_gold(gold: str, letters: str = ALL_LETTERS) -> ChoiceGold:
    """Read a multiple-choice gold.

    Args:
        gold: the gold label.
        letters: the valid letters.

    Returns:
        The letter and/or option text it names.
    """
    letter = normalize_choice(gold, letters)
    if letter:
        return ChoiceGold(letter, None)
    labelled = option_label(gold, letters)
    if labelled:
        return ChoiceGold(*labelled)
    return ChoiceGold(None, gold.strip() or None)


def letters_for(gold: ChoiceGold, settings: ExtractSettings = ExtractSettings()) -> str:
    """Valid letters for a question: A up to the gold's letter, at least four.

    Args:
        gold: the parsed gold.
        settings: holds the full letter range.

    Returns:
        A prefix of ``settings.choices``.
    """
    count = MIN_CHOICES
    if gold.letter and gold.letter in settings.choices:
        count = max(count, settings.choices.index(gold.letter) + 1)
    return settings.choices[:count]
