"""Pull the final answer out of a model response.

Policy, in order:

1. Regions. Text after the last ``</think>`` is searched first; when it holds
   no answer, the inside of the think block is searched. A response with
   ``<think>`` but no ``</think>`` (generation cut off) is searched inside the
   think block only. A response without think tags is one region.
2. Inside a region, the LAST ``\\boxed{...}`` or ``\\fbox{...}`` wins (models
   restate a corrected answer last; when several parts are boxed, the last
   box is the one graded). Braces are balanced, so ``\\boxed{\\frac{a}{b}}``
   is whole; the no-brace form ``\\boxed 5`` is read up to the next space. A
   box whose braces never close (cut-off output) is skipped in favour of the
   one before it.
3. Without a box, the last answer phrase is used: "final answer is X",
   "the answer is X", "Answer: X". X is the ``$...$`` (or ``\\(...\\)``,
   ``\\[...\\]``) group right after the phrase, else the rest of the line up
   to the first sentence end.
4. Nothing found: ``None``. No "last number in the text" fallback: it turns
   arithmetic from the reasoning into answers and rewards guessing.

Only the last ``max_region_chars`` of a region are scanned and phrases are
looked for in the last ``phrase_window_chars``; every scan is linear.
"""

from __future__ import annotations

import re

from evaluators.braces import command_argument
from evaluators.settings import ExtractSettings

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
BOX_COMMANDS = ("\\boxed", "\\fbox")

# The phrase itself only; the value after it is cut out by hand. No nested
# quantifiers, so a hostile window cannot make this backtrack.
_PHRASE = re.compile(
    r"(?:final\s+answer|\banswer)(?:\s+is|\s+would\s+be|\s*:|\s*=)",
    re.IGNORECASE,
)
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def answer_regions(response: str, settings: ExtractSettings = ExtractSettings()) -> list[str]:
    """Split a response into the regions searched for an answer, best first.

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        One or two regions, each cut to its last ``max_region_chars``.
    """
    close = response.rfind(THINK_CLOSE)
    if close >= 0:
        opened = response.rfind(THINK_OPEN, 0, close)
        think = response[opened + len(THINK_OPEN) if opened >= 0 else 0 : close]
        regions = [response[close + len(THINK_CLOSE) :], think]
    else:
        opened = response.find(THINK_OPEN)
        regions = [response[opened + len(THINK_OPEN) :] if opened >= 0 else response]
    cap = settings.max_region_chars
    return [r[-cap:] if len(r) > cap else r for r in regions]


def last_boxed(text: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Content of the last well-formed ``\\boxed``/``\\fbox`` in ``text``.

    Args:
        text: the region to search.
        settings: extraction limits.

    Returns:
        The stripped content of the last box, or ``None`` when there is none
        (or every candidate is unbalanced or empty).
    """
    end = len(text)
    for _ in range(settings.max_box_candidates):
        best = -1
        best_cmd = ""
        for cmd in BOX_COMMANDS:
            at = text.rfind(cmd, 0, end)
            if at > best:
                best, best_cmd = at, cmd
        if best < 0:
            return None
        arg = command_argument(text, best + len(best_cmd), settings.max_answer_chars)
        if arg is not None and arg.strip():
            return arg.strip()
        end = best
    return None


def _delimited(value: str) -> str | None:
    for left, right in _DELIMITERS:
        if value.startswith(left):
            close = value.find(right, len(left))
            if close > len(left):
                return value[len(left) : close]
            return None
    return None


def answer_phrase(text: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Value after the last answer phrase in the tail of ``text``.

    Args:
        text: the region to search.
        settings: extraction limits.

    Returns:
        The answer text (math delimiters and trailing punctuation removed),
        or ``None`` when no phrase is followed by a value.
    """
    window = text[-settings.phrase_window_chars :]
    for match in reversed(list(_PHRASE.finditer(window))):
        rest = window[match.end() : match.end() + settings.max_answer_chars]
        value = _phrase_value(rest)
        if value:
            return value
    return None


def _phrase_value(rest: str) -> str | None:
    rest = rest.lstrip(" \t*:").lstrip()
    inner = _delimited(rest)
    if inner is None:
        line = rest.split("\n", 1)[0]
        end = _SENTENCE_END.search(line)
        inner = line[: end.start()] if end else line
    value = inner.strip().strip("*").strip().rstrip(".,;").strip()
    return value or None


def extract_math_answer(response: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Final answer of a math (or AIME) response, following the module policy.

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        The answer's LaTeX, or ``None`` when the response states no answer.
    """
    for region in answer_regions(response, settings):
        found = last_boxed(region, settings) or answer_phrase(region, settings)
        if found:
            inner = last_boxed(found, settings)
            # "The answer is $\boxed{5}$" keeps only what is inside the box.
            return inner if inner else found
    return None


def extract_answer(response: str, kind: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Extract the answer a response gives, for a benchmark kind.

    Args:
        response: the raw model output.
        kind: ``"math"``, ``"aime"`` or ``"gpqa"``.
        settings: extraction limits.

    Returns:
        The answer text (for ``gpqa`` a single letter A-D), or ``None``.

    Raises:
        ValueError: for an unknown kind.
    """
    if kind in ("math", "aime"):
        return extract_math_answer(response, settings)
    if kind == "gpqa":
        from evaluators.gpqa import extract_choice

        return extract_choice(response, settings)
    raise ValueError(f"unknown kind {kind!r} (expected math, aime or gpqa)")
