"""Multiple-choice (GPQA) answers: a single letter A-D.

Extraction policy, per region (see ``extract.answer_regions``), first hit wins:

1. the last ``\\boxed{...}`` whose content is a letter (``\\boxed{C}``,
   ``\\boxed{(C)}``, ``\\boxed{\\text{C}}``);
2. the last phrase "answer is / answer: / option is / choice is" followed by
   a letter (``Answer: $C$``, ``The correct option is C``,
   ``answer is (C)``, ``answer is **C**``);
3. the last bold letter ``**C**`` / ``**(C)**``;
4. a last non-empty line that is only a letter, e.g. ``(C)``.

Letters after phrases must be upper case so that "the answer is a ..." is
not read as choice A. A ``(C)`` in the middle of the text is never taken:
responses often restate every option.
"""

from __future__ import annotations

import re

from evaluators.extract import answer_regions, last_boxed
from evaluators.settings import ExtractSettings

CHOICES = "ABCD"

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{")
_LETTER_LEAD = re.compile(r"\(?([A-D])\)?(?=$|[\s.,:;)])")
_LETTER_ONLY = re.compile(r"\(?([A-Da-d])\)?\.?")
_PHRASE = re.compile(
    r"(?:answer|option|choice)(?:\s+is|\s*:|\s*=)",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*\s*\(?([A-D])\)?\s*\*\*")


def _clean(value: str) -> str:
    value = _WRAPPERS.sub("", value)
    for ch in "${}*":
        value = value.replace(ch, "")
    return value.replace("\\(", "").replace("\\)", "").strip()


def normalize_choice(value: str) -> str | None:
    """The letter a whole value stands for (``"(c)"``, ``"\\text{C}"``, ``"C."``).

    Args:
        value: a gold label or boxed content.

    Returns:
        ``"A"``-``"D"``, or ``None`` when the value is not a lone letter.
    """
    match = _LETTER_ONLY.fullmatch(_clean(value))
    return match.group(1).upper() if match else None


def _phrase_letter(window: str) -> str | None:
    for match in reversed(list(_PHRASE.finditer(window))):
        rest = _clean(window[match.end() : match.end() + 80].lstrip(" \t*:"))
        rest = rest.removeprefix("option").removeprefix("Option").strip()
        found = _LETTER_LEAD.match(rest)
        if found:
            return found.group(1)
    return None


def _region_choice(region: str, settings: ExtractSettings) -> str | None:
    boxed = last_boxed(region, settings)
    if boxed is not None:
        letter = normalize_choice(boxed)
        if letter:
            return letter
    window = region[-settings.phrase_window_chars :]
    letter = _phrase_letter(window)
    if letter:
        return letter
    bold = list(_BOLD.finditer(window))
    if bold:
        return bold[-1].group(1)
    lines = [line for line in window.splitlines() if line.strip()]
    if lines:
        return normalize_choice(lines[-1])
    return None


def extract_choice(response: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """The letter A-D a response chooses, following the module policy.

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        ``"A"``-``"D"``, or ``None`` when no choice is stated.
    """
    for region in answer_regions(response, settings):
        letter = _region_choice(region, settings)
        if letter:
            return letter
    return None
