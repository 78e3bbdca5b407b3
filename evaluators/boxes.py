"""Boxed answers: the last readable ``\\boxed{}``/``\\fbox{}``, and boxes that form one answer.

Braces are balanced by a linear scan (``braces.py``); a box whose braces never
close, or whose content is longer than ``max_answer_chars``, is skipped in
favour of the one before it, unless the ``$`` closing its math shows where it
ends (``$\\boxed{42$``). Adjacent boxes separated only by spaces,
commas, ``$``, ``\\quad``, a short ``\\text{...}`` or "and"/"or" are one
answer, as math-verify joins them (``\\boxed{-2} \\text{and} \\boxed{1}``).
"""

from __future__ import annotations

import re

from evaluators.braces import command_argument, dollar_end
from evaluators.settings import ExtractSettings

BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_JOINED_BOXES = 5
_BOX_JOINER = re.compile(
    r"[\s,;$.]*(?:(?:\\quad|\\qquad|\\[()\[\]]|\\text\{[^{}]{0,30}\}|and|or)[\s,;$.]*){0,6}"
)
_MAX_JOINER_CHARS = 80
# "\\beginboxed{5}": a box command glued to another word.
_GLUED_BOX = re.compile(r"\\[A-Za-z]{1,12}boxed(?=\s*\{)")
# In a short gold, a few words may sit between boxes ("\\boxed{1} papers and \\boxed{2} bins").
GOLD_JOINER = re.compile(r"[\s,;$.\\()]*(?:[A-Za-z]+[\s,;$.]+){0,2}(?:and|or)?[\s,;$.\\()]*")


def _box_at(text: str, end: int, settings: ExtractSettings) -> tuple[int, int, str] | None:
    """``(start, stop, content)`` of the last readable box starting before ``end``."""
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
            opened = text.find("{", best, best + len(best_cmd) + 8)
            begin = opened + 1 if opened >= 0 else text.find(arg, best)
            return best, begin + len(arg) + (1 if opened >= 0 else 0), arg.strip()
        broken = _dollar_box(text, best + len(best_cmd), settings)
        if broken is not None:
            return best, broken[0], broken[1]
        end = best
    return None


def _dollar_box(text: str, pos: int, settings: ExtractSettings) -> tuple[int, str] | None:
    """``(stop, content)`` of a box whose ``}`` is lost to the ``$`` closing its math."""
    opened = pos
    while opened < len(text) and text[opened] in " \t":
        opened += 1
    if opened >= len(text) or text[opened] != "{":
        return None
    stop = dollar_end(text, opened, settings.max_answer_chars)
    content = text[opened + 1 : stop].strip() if stop is not None else ""
    # Inline math does not span lines: a "$" further on belongs to other math.
    if not content or "\n" in content:
        return None
    return stop, content


def repair_boxes(text: str) -> str:
    """Read ``\\beginboxed{...}`` (a box command glued to a word) as ``\\boxed{...}``.

    Args:
        text: a response or a region.

    Returns:
        The text with glued box commands separated.
    """
    return _GLUED_BOX.sub(r"\\boxed", text) if "boxed" in text else text


def last_boxes(
    text: str, settings: ExtractSettings = ExtractSettings(), joiner: re.Pattern | None = None
) -> tuple[int, str] | None:
    """The last box, joined with the boxes right before it (``\\boxed{-2}, \\boxed{1}``).

    Boxes count as one answer when only spaces, commas, ``$``, ``\\quad``,
    a short ``\\text{...}`` or "and"/"or" separate them, as math-verify joins
    them.

    Args:
        text: the region to search.
        settings: extraction limits.
        joiner: what may separate joined boxes (default: the above).

    Returns:
        ``(start of the first joined box, content)``, the contents joined by
        ``", "``; ``None`` when there is no readable box.
    """
    found = _box_at(text, len(text), settings)
    if found is None:
        return None
    start, _, content = found
    parts = [content]
    while len(parts) < MAX_JOINED_BOXES:
        before = _box_at(text, start, settings)
        between = text[before[1] : start] if before is not None else ""
        if before is None or len(between) > _MAX_JOINER_CHARS or not (joiner or _BOX_JOINER).fullmatch(between):
            break
        start = before[0]
        parts.append(before[2])
    unique = list(dict.fromkeys(reversed(parts)))  # a restated box is one answer
    return start, ", ".join(unique)


def last_boxed(text: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Content of the last well-formed ``\\boxed``/``\\fbox`` in ``text``.

    Args:
        text: the region to search.
        settings: extraction limits.

    Returns:
        The stripped content of the last box, or ``None`` when there is none
        (or every candidate is unbalanced or empty).
    """
    found = _box_at(text, len(text), settings)
    return found[2] if found else None
