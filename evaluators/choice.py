"""The letter a multiple-choice response (GPQA and the like) chooses.

math-verify's ``StringExtractionConfig`` reads any capital letter of the
text; a reasoning output names every option, so we keep our own policy.
Golds and option labels are read in ``options.py``.

Prediction letter, per region (see ``regions.answer_regions``), first hit wins:

1. the last ``\\boxed{...}`` holding a letter or a labelled option
   (``\\boxed{C}``, ``\\boxed{(C)}``, ``\\boxed{\\text{(B) } 432}``,
   ``\\boxed{\\mathrm{(D)}\\ 12}``, ``\\boxed{C Cecile}``);
2. the last phrase "answer is / must be / should be / answer: / option is /
   choice is", or one in another language ("la bonne réponse est", "答案是",
   "故选："), followed within a few words by a capital letter that is not
   negated (``Answer: "C"``, ``The answer is for sure D, it can't be A or
   B``, ``the answer is C, not A``, ``答案：不是B，而是D``);
3. "I choose / pick / select / go with C", "C is correct / the best" (also
   "La D es correcta", "D est correcte", "D 是正确的"), "it must be A", a
   conclusion "Therefore B." (the latest of these);
4. the last bold letter ``**C**`` / ``**(C)**``;
5. a last non-empty line that is only a letter, e.g. ``(C)``;
6. a response that opens with a label (``B) 42 kelvin because ...``,
   ``D。不是 B``, ``D, since ...``), or is one short line ``C Cecile``.

A letter is a capital standing alone: not inside a word or an id (``Cecile``,
``B12``, ``A-1``). An answer that names two letters (``\\boxed{A, B}``, "the
answer is A or B") chooses none, and the search stops there. Valid letters
run from A to the gold's letter, at least A-D, so that the pronoun "I" is not
read as choice I of a four-option question. A ``(C)`` in the middle of the
text is never taken: responses often restate every option.
"""

from __future__ import annotations

import re

from evaluators.boxes import last_boxed
from evaluators.extract import extract_math_answer
from evaluators.options import LETTER_LIST, MIN_CHOICES, clean_option, normalize_choice, option_label
from evaluators.regions import FOREIGN_ANSWER_WORDS, answer_regions
from evaluators.settings import ExtractSettings

# "la bonne réponse est C", "答案是C", "故选C": answer phrases without a colon.
_FOREIGN_ANSWER_IS = (
    r"r[ée]ponse\s+(?:correcte\s+)?est|respuesta\s+(?:correcta\s+)?es|antwort\s+(?:ist|lautet)"
    r"|resposta\s+(?:correta\s+)?é|risposta\s+(?:corretta\s+)?è|答案(?:是|为|為|选|選)|故选|应选"
)
_PHRASE = re.compile(
    rf"(?:answer|option|choice)(?:\s+is|\s+(?:would|must|should|has\s+to|can\s+only)\s+be|\s*:|\s*=)|{_FOREIGN_ANSWER_IS}"
    rf"|(?:{FOREIGN_ANSWER_WORDS}|故选|应选)\s*[:：]",
    re.IGNORECASE,
)
# Full-width letters and brackets (Ｃ, （C）) as Chinese and Japanese outputs write them.
_FULL_WIDTH = str.maketrans({**{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}, "（": "(", "）": ")"})
# Neither a letter, a digit, "_", "-" nor "'" may touch a choice letter: "Cecile", "B12", "A-1", "A's".
_ALONE = r"(?![A-Za-z0-9_'\-])"
# "I choose B", "go with (C)": the letter right after the verb, not "choose D to be the midpoint".
_CHOOSE = re.compile(
    rf"\b(?i:choose|chose|pick|select|go\s+with)\s+(?i:option\s+|answer\s+|choice\s+)?\(?([A-Z])\)?{_ALONE}(?!\s+to\b)"
)
# "D is correct", "La D es correcta", "D est correcte", "D 是正确的".
_IS_CORRECT = re.compile(
    r"(?<![A-Za-z0-9_\-])\(?([A-Z])\)?(?:\s+is\s+(?:the\s+)?(?:correct|right|best)\b"
    r"|\s+(?:est|es|ist|è|é)\s+(?:correct[aeo]?|corrett[ao]|corret[ao]|richtig|korrekt)\b|\s*是?(?:正确|对的))"
)
# "C is ruled out, so it must be A."
_MUST_BE = re.compile(rf"\b(?i:it|this|that)\s+(?i:must|has\s+to|should)\s+be\s+(?i:option\s+|choice\s+)?\(?([A-Z])\)?{_ALONE}")
# "Therefore B.", "Thus, the answer: (C).": a conclusion that ends on the letter.
_CONCLUSION = re.compile(
    r"(?:\b(?i:therefore|thus|hence|so|consequently|donc|also)|因此|所以|故)[,:，]?\s*"
    r"(?i:(?:the\s+)?(?:correct\s+|right\s+|best\s+|final\s+)?(?:answer|option|choice)\s+(?:is\s+)?|option\s+|choice\s+)?"
    rf"\(?([A-Z])\)?{_ALONE}(?=\s*(?:[.!;。\n]|$))"
)
# "B) 42 kelvin", "D。不是 B", "D, since B ...": a response that opens with its letter.
_LEADING_LABEL = re.compile(r"\s*(?:\*\*)?\(?([A-Z])(?:(?:\)|\.|:)(?:\*\*)?(?:\s|$)|\)?\s*[。，、：；]|,\s)")
# A capital letter alone, or a lower-case one in parentheses: "(b)".
_CAPITAL = re.compile(rf"(?<![A-Za-z0-9_\-])([A-Z]){_ALONE}|\(([a-z])\)")
# A second letter joined to the first: "A or B", "A, B", "(A) and (C)"; not "C, not A", "D, it can't be".
_COORDINATED = re.compile(
    r"\)?\s*(?:,|/|&|\band/or\b|\band\b|\bor\b)\s*(?:option\s+|choice\s+)?\(?([A-Z])\)?"
    rf"{_ALONE}(?!\s+(?!and\b|or\b|are\b)[a-z])"
)
# What rejects the letter after it: "not C", "can't be A", "不是B", "no la B", "pas B".
_NEGATION = re.compile(
    r"(?:\bnot|n't\s+be|\bnor|\bno(?:\s+(?:la|el))?|\bnicht|\bpas|\bnon|不是|并非|而非|不选|排除)\s*[\"'(*]*$",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*\s*\(?([A-Z])\)?\s*\*\*")
_PHRASE_REACH = 60
# A one-line response this short may be a label and the option's text: "C Cecile".
_SHORT_LINE = 100
# Returned by the rules when the response names several letters: no choice, stop searching.
_SEVERAL = "several"


def _boxed_letter(boxed: str, letters: str) -> str | None:
    if LETTER_LIST.fullmatch(clean_option(boxed)):
        return _SEVERAL
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
                other = _COORDINATED.match(reach, found.end())
                return _SEVERAL if other and other.group(1) != letter else letter
    return None


def _stated_letter(window: str, letters: str) -> str | None:
    stated = [
        (m.end(), m.group(1))
        for pattern in (_CHOOSE, _IS_CORRECT, _CONCLUSION, _MUST_BE)
        for m in pattern.finditer(window)
        if m.group(1) in letters
    ]
    return max(stated)[1] if stated else None


def _opening_label(region: str, letters: str) -> str | None:
    leading = _LEADING_LABEL.match(region)
    if leading and leading.group(1) in letters:
        other = _COORDINATED.match(region, leading.end(1))  # "A, B and C all fail": no choice
        return _SEVERAL if other and other.group(1) != leading.group(1) else leading.group(1)
    line = region.strip()
    if len(line) <= _SHORT_LINE and "\n" not in line:
        labelled = option_label(line, letters)
        return labelled[0] if labelled else None
    return None


def _region_choice(region: str, letters: str, settings: ExtractSettings) -> str | None:
    boxed = last_boxed(region, settings)
    if boxed is not None:
        letter = _boxed_letter(boxed, letters)
        if letter:
            return letter
    window = region[-settings.phrase_window_chars :]
    letter = _phrase_letter(window, letters) or _stated_letter(window, letters)
    if letter:
        return letter
    bold = [m.group(1) for m in _BOLD.finditer(window) if m.group(1) in letters]
    if bold:
        return bold[-1]
    lines = [line for line in window.splitlines() if line.strip()]
    if lines and normalize_choice(lines[-1], letters):
        return normalize_choice(lines[-1], letters)
    return _opening_label(region, letters)


def extract_choice(
    response: str, settings: ExtractSettings = ExtractSettings(), letters: str | None = None
) -> str | None:
    """The letter a response chooses, following the module policy.

    Args:
        response: the raw model output.
        settings: extraction limits.
        letters: the valid letters (default: the first four of
            ``settings.choices``).

    Returns:
        The letter, or ``None`` when no choice is stated or several are.
    """
    letters = letters or settings.choices[:MIN_CHOICES]
    for region in answer_regions(response, settings):
        letter = _region_choice(region.translate(_FULL_WIDTH), letters, settings)
        if letter:
            return None if letter == _SEVERAL else letter
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
