"""The three grader kinds, their aliases, and extraction per kind.

This sits above both extractors (``extract.py`` for math and integers,
``choice.py`` for letters) so that neither imports the other's caller.
"""

from __future__ import annotations

from evaluators.choice import extract_choice
from evaluators.extract import extract_math_answer
from evaluators.settings import ExtractSettings

KINDS = ("math", "aime", "gpqa")
# Names other suites use for the same three graders.
KIND_ALIASES = {"integer": "aime", "choice": "gpqa", "multiple_choice": "gpqa", "mc": "gpqa"}


def resolve_kind(kind: str) -> str:
    """The grader kind a name stands for.

    Args:
        kind: ``math``, ``aime``, ``gpqa`` or an alias (``integer``,
            ``choice``, ``multiple_choice``, ``mc``), any case.

    Returns:
        One of ``KINDS``.

    Raises:
        ValueError: for an unknown name.
    """
    name = str(kind).strip().lower()
    name = KIND_ALIASES.get(name, name)
    if name not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS + tuple(KIND_ALIASES))})")
    return name


def extract_answer(response: str, kind: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Extract the answer a response gives, for a benchmark kind.

    Args:
        response: the raw model output.
        kind: ``"math"``, ``"aime"`` or ``"gpqa"`` (or an alias).
        settings: extraction limits.

    Returns:
        The answer text (for ``gpqa`` a single letter), or ``None``.

    Raises:
        ValueError: for an unknown kind.
    """
    if resolve_kind(kind) == "gpqa":
        return extract_choice(response, settings)
    return extract_math_answer(response, settings)
