"""Multiple-choice answers (GPQA and the like): a letter, or the option's text.

math-verify's ``StringExtractionConfig`` reads any capital letter of the
text; a reasoning output names every option, so we keep our own policy.

Gold: a lone letter (``C``, ``(c)``, ``\\text{C}``), a labelled option
(``(B) 432``, ``B. 432``: the letter, with the text as a second chance), or
the option's text alone (``432``, ``Paris``).

Prediction letter, per region (see ``regions.answer_regions``), first hit wins:

1. the last ``\\boxed{...}`` holding a letter or a labelled option
   (``\\boxed{C}``, ``\\boxed{(C)}``, ``\\boxed{\\text{(B) } 432}``);
2. the last phrase "answer is / answer: / option is / choice is" followed,
   within a few words, by a capital letter that is not negated (``Answer:
   "C"``, ``The answer is for sure D, it can't be A or B``);
3. "I choose / pick / select / go with C", "C is correct / the best";
4. the last bold letter ``**C**`` / ``**(C)**``;
5. a last non-empty line that is only a letter, e.g. ``(C)``;
6. a response that opens with a label (``B) 42 kelvin because ...``).

Valid letters run from A to the gold's letter, at least A-D, so that the
pronoun "I" is not read as choice I of a four-option question. A ``(C)`` in
the middle of the text is never taken: responses often restate every option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluators.boxes import last_boxed
from evaluators.extract import extract_math_answer
from evaluators.regions import FOREIGN_ANSWER_WORDS, answer_regions
from evaluators.settings import ExtractSettings

MIN_CHOICES = 4

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{")
_LABEL = re.compile(r"\(([A-Za-z])\)\s*[.:]?\s*(.*)|([A-Z])\s*[.:)]\s*(.*)", re.DOTALL)
_LONE = re.compile(r"\(?([A-Za-z])\)?\.?")
_PHRASE = re.compile(
    rf"(?:answer|option|choice)(?:\s+is|\s+would\s+be|\s*:|\s*=)|(?:{FOREIGN_ANSWER_WORDS})\s*[:：]",
    re.IGNORECASE,
)
# Full-width letters (Ｃ) as Chinese and Japanese outputs write them.
_FULL_WIDTH = str.maketrans({chr(0xFF21 + i): chr(0x41 + i) for i in range(26)})
# "I choose B", "go with (C)": the letter right after the verb, not "choose D to be the midpoint".
_CHOOSE = re.compile(
    r"\b(?i:choose|chose|pick|select|go\s+with)\s+(?i:option\s+|answer\s+|choice\s+)?\(?([A-Z])\)?(?![A-Za-z'])(?!\s+to\b)"
)
_IS_CORRECT = re.compile(r"(?<![A-Za-z])\(?([A-Z])\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\b")
_LEADING_LABEL = re.compile(r"\s*(?:\*\*)?\(?([A-Z])(?:\)|\.|:)(?:\*\*)?(?:\s|$)")
# A capital letter alone, or a lower-case one in parentheses: "(b)".
_CAPITAL = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z'])|\(([a-z])\)")
_NEGATION = re.compile(r"(?:\bnot|n't\s+be|\bnor)\s*[\"'(*]*$", re.IGNORECASE)
_BOLD = re.compile(r"\*\*\s*\(?([A-Z])\)?\s*\*\*")
_PHRASE_REACH = 60


@dataclass(frozen=True)
class ChoiceGold:
    """What a multiple-choice gold names.

    Attributes:
        letter: the option letter, when the gold gives one.
        text: the option's text, when the gold gives one.
    """

    letter: str | None
    text: str | None


def _clean(value: str) -> str:
    value = _WRAPPERS.sub("", value)
    for ch in "${}*\"'`":
        value = value.replace(ch, "")
    return value.replace("\\(", "").replace("\\)", "").strip()


def normalize_choice(value: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The letter a whole value stands for (``"(c)"``, ``"\\text{C}"``, ``"C."``).

    Args:
        value: a gold label or boxed content.
        letters: the valid letters.

    Returns:
        The upper-case letter, or ``None`` when the value is not a lone valid letter.
    """
    match = _LONE.fullmatch(_clean(value))
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def option_label(value: str, letters: str = "ABCDEFGHIJ") -> tuple[str, str] | None:
    """Split a labelled option (``(B) 432``, ``B. 432``) into letter and text.

    Args:
        value: a gold label or boxed content.
        letters: the valid letters.

    Returns:
        ``(letter, text)``, or ``None`` when the value does not start with a
        label.
    """
    match = _LABEL.fullmatch(_clean(value))
    if not match:
        return None
    letter = (match.group(1) or match.group(3)).upper()
    text = (match.group(2) if match.group(1) else match.group(4)).strip()
    if letter not in letters or not text:
        return None
    return letter, text


def parse_gold(gold: str, letters: str = "ABCDEFGHIJ") -> ChoiceGold:
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


def _boxed_letter(boxed: str, letters: str) -> str | None:
    letter = normalize_choice(boxed, letters)
    if letter:
        return letter
    labelled = option_label(boxed, letters)
    return labelled[0] if labelled else None


def _phrase_letter(window: str, letters: str) -> str | None:
    for match in reversed(list(_PHRASE.finditer(window))):
        reach = window[match.end() : match.end() + _PHRASE_REACH]
        for found in _CAPITAL.finditer(reach):
            letter = (found.group(1) or found.group(2)).upper()
            if letter in letters and not _NEGATION.search(reach[: found.start()]):
                return letter
    return None


def _region_choice(region: str, letters: str, settings: ExtractSettings) -> str | None:
    boxed = last_boxed(region, settings)
    if boxed is not None:
        letter = _boxed_letter(boxed, letters)
        if letter:
            return letter
    window = region[-settings.phrase_window_chars :]
    letter = _phrase_letter(window, letters)
    if letter:
        return letter
    stated = [(m.end(), m.group(1)) for p in (_CHOOSE, _IS_CORRECT) for m in p.finditer(window) if m.group(1) in letters]
    if stated:
        return max(stated)[1]
    bold = [m.group(1) for m in _BOLD.finditer(window) if m.group(1) in letters]
    if bold:
        return bold[-1]
    lines = [line for line in window.splitlines() if line.strip()]
    if lines and normalize_choice(lines[-1], letters):
        return normalize_choice(lines[-1], letters)
    # "B) 42 kelvin, because ...": a response that opens with a label.
    leading = _LEADING_LABEL.match(region)
    if leading and leading.group(1) in letters:
        return leading.group(1)
    return None


def extract_choice(response: str, settings: ExtractSettings = ExtractSettings(), letters: str | None = None) -> str | None:
    """The letter a response chooses, following the module policy.

    Args:
        response: the raw model output.
        settings: extraction limits.
        letters: the valid letters (default: the first four of
            ``settings.choices``).

    Returns:
        The letter, or ``None`` when no choice is stated.
    """
    letters = letters or settings.choices[:MIN_CHOICES]
    for region in answer_regions(response, settings):
        letter = _region_choice(region.translate(_FULL_WIDTH), letters, settings)
        if letter:
            return letter
    return None


def extract_option_text(response: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """The option text a response gives (its final answer, label removed).

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        ``432`` for ``\\boxed{\\text{(B) } 432}``; ``None`` without an answer.
    """
    answer = extract_math_answer(response, settings)
    if answer is None:
        return None
    labelled = option_label(answer, settings.choices)
    return labelled[1] if labelled else answer


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
