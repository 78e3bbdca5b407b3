"""Where a response states its answer: the regions searched, and the shared cleaning.

Both extractors (``extract.py`` for math and integers, ``choice.py`` for
letters) read the same regions, so the policy lives here once:

* text after the last ``</think>`` is searched first; when it holds no
  answer, the inside of the think block;
* a response with ``<think>`` but no ``</think>`` (generation cut off) is
  searched inside the think block only;
* a response without think tags is one region.

Each region is cut to its last ``max_region_chars``, and a box command glued
to a word (``\\beginboxed{5}``) reads as ``\\boxed``.
"""

from __future__ import annotations

from evaluators.boxes import repair_boxes
from evaluators.settings import ExtractSettings

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# "Answer:" in the languages of multilingual suites (MGSM, MMMLU).
FOREIGN_ANSWER_WORDS = (
    r"Antwort|R[ée]ponse|Respuesta|Resposta|Risposta|Ответ|Відповідь|答案|回答|答|정답|Jawaban|Jibu|Svar|"
    r"Antwoord|Odpowied[źz]|Cevap|Javob|उत्तर|উত্তর|الإجابة|إجابة|Đáp án|คำตอบ"
)
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


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
    return [repair_boxes(r[-cap:] if len(r) > cap else r) for r in regions]


def strip_delimiters(text: str) -> str:
    """``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x`` (whole-text delimiters only).

    Args:
        text: an answer.

    Returns:
        The answer without its outer math delimiters and surrounding space.
    """
    text = text.strip()
    for left, right in _DELIMITERS:
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
            inner = text[len(left) : -len(right)]
            if left != "$" or "$" not in inner.replace("\\$", ""):
                return inner.strip()
    return text


def delimited(value: str) -> str | None:
    """The inside of the math group ``value`` opens with (``$5$ apples`` -> ``5``).

    Args:
        value: text that may start with ``$``, ``$$``, ``\\(`` or ``\\[``.

    Returns:
        The group's inside, or ``None`` when ``value`` opens no closed group
        (inline math does not span lines, as in math-verify).
    """
    for left, right in _DELIMITERS:
        if value.startswith(left):
            close = value.find(right, len(left))
            while close > 0 and right == "$" and value[close - 1] == "\\":
                close = value.find(right, close + 1)  # "\$" is a dollar sign, not a delimiter
            if close <= len(left):
                return None
            inner = value[len(left) : close]
            return None if left in ("$", "\\(") and "\n" in inner else inner
    return None


def clean_answer(value: str) -> str | None:
    """Drop markdown emphasis, quotes and end punctuation around an answer.

    Args:
        value: an extracted answer.

    Returns:
        ``42`` for ``**42**.``; ``None`` when nothing is left.
    """
    # A trailing backslash (a cut-off ``\\`` or a stray key) ends no answer.
    value = value.strip().rstrip("\\").strip("*").strip().strip("\"“”").strip().rstrip(".,;。").strip()
    return value.rstrip("\\").rstrip() or None
