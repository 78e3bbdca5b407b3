"""Pull the final answer out of a model response (or out of a worked gold).

math-verify's own extraction reads the whole text with priority regexes; long
reasoning outputs need a policy of their own first. Policy, in order:

1. Regions (``regions.py``): after ``</think>`` first, then inside the
   think block.
2. Inside a region, the LAST ``\\boxed{...}`` or ``\\fbox{...}`` wins (models
   restate a corrected answer last), joined with the boxes right before it
   when only separators lie between (``boxes.py``), unless a "final answer
   is ..." phrase comes after it.
3. Without a box, the last answer phrase: "final answer is X", "the answer
   is X", "Answer: X", "Answer" directly followed by ``$X$``, GSM8K's
   "#### X", or "Answer:" in another language ("Respuesta:", "答案："). X is
   the ``$...$`` (or ``\\(...\\)``, ``\\[...\\]``) group right after the
   phrase, else the rest of the line up to the first sentence end (``.``,
   ``。``); when X is a sentence, the number it opens with ("Final answer: 12
   apples, so 3 more" gives 12), after a marker in another language its first
   number or math group holding a digit ("Respuesta: quedan 35 € por pagar en
   6 meses" gives 35), else its final expression ("The largest $n$ is 34",
   step 4).
4. Without a phrase, the bare final expression: a short region that is only
   mathematics (``5``, ``$\\frac{1}{2}$``, ``(p,q)=(3,2)``) or a few words
   (``Evelyn``) is the answer whole; otherwise the last math group or the last
   number in the tail, whichever ends later ("Therefore $x \\geq 5$ is the
   solution.", "La respuesta es 42", "答案是 42"). Not when the response
   holds a box that cannot be read (cut off, or longer than
   ``max_answer_chars``): the digits around it are not an answer.
5. Nothing found: ``None``.

Only the last ``max_region_chars`` of a region are scanned, phrases and bare
expressions only in the last ``phrase_window_chars``; every regex is linear
or bounded (no unbounded nested quantifiers), so hostile text cannot make it
backtrack.
"""

from __future__ import annotations

import re

from evaluators.boxes import BOX_COMMANDS, GOLD_JOINER, last_boxes
from evaluators.regions import FOREIGN_ANSWER_WORDS, answer_regions, clean_answer, delimited, strip_delimiters
from evaluators.settings import ExtractSettings

GSM8K_MARK = "####"

_PHRASE = re.compile(
    r"(?:final\s+answer|\banswer)(?:\s+is|\s+would\s+be|\s*:|\s*=)|答案是|####"
    rf"|(?:{FOREIGN_ANSWER_WORDS})\s*[:：]",
    re.IGNORECASE,
)
# "Respuesta:", "答案：", "答案是": a phrase whose sentence gives its first number.
_FOREIGN_PHRASE = re.compile(rf"(?:{FOREIGN_ANSWER_WORDS})\s*[:：]|答案是", re.IGNORECASE)
# "Answer $9$": the bare word counts only when math follows at once.
_BARE_ANSWER_WORD = re.compile(r"\banswer\s*(?=\$|\\\(|\\\[)", re.IGNORECASE)
# A phrase whose value is a sentence counts only this close to the region's end.
PROSE_PHRASE_REACH = 300
_SENTENCE_END = re.compile(r"\.(?:\s|$)|[。！？]")
_MATH_GROUP = re.compile(r"\$\$[^$]{1,2000}\$\$|\$[^$\n]{1,2000}\$|\\\((?:[^\\\n]|\\[^)]){1,2000}\\\)|\\\[(?:[^\\]|\\[^\]]){1,2000}\\\]")
# Between math groups that list one answer: "$x = -1$ \\quad \\text{and} \\quad $x = 2$".
_GROUP_JOINER = re.compile(r"[\s,]*(?:(?:\\q?quad|\\text\s*\{\s*(?:and|or)?\s*\})[\s,]*){1,6}")
MAX_JOINED_GROUPS = 8
_PERCENT = r"(?:\s*\\?%|\s+(?:percent(?:age)?|per\s?cent|pct)(?![A-Za-z]))?"
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+,(?:\d{2}|\d{4,})(?![\d,])|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?"
    rf"{_PERCENT}|(?<![A-Za-z0-9_.])-?\.\d+{_PERCENT}",
    re.IGNORECASE,
)
# "Réponse : 12 pommes, soit 3 de plus": a value that opens with a number followed by words.
_LEADING_NUMBER = re.compile(rf"(?:{_NUMBER.pattern})(?=\s*(?:[^\W\d_]|[,;，、]))", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[，、；]|,\s*[^\W\d_]{2}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{[^{}]*\}")
_WORD = re.compile(r"[^\W\d_]{2,}")
# Words that occur in bare mathematics rather than in sentences.
_MATH_WORDS = frozenset({"or", "and", "pi", "inf", "infty", "sin", "cos", "tan", "log", "ln", "exp", "sqrt", "mod"})
_TEXT_ONLY = re.compile(r"[^\W\d_][\w'\-]{0,40}(?: [^\W\d_][\w'\-]{0,40}){0,3}\.?")


def _phrase_value(rest: str, whole: bool = False) -> str | None:
    rest = rest.lstrip(" \t*:：}").lstrip()  # "\\text{The answer is } 5"
    inner = None if whole else delimited(rest)
    if inner is None:
        line = rest.split("\n", 1)[0]
        end = _SENTENCE_END.search(line)
        inner = line[: end.start()] if end else line
    return clean_answer(inner)


def _last_phrase(text: str, settings: ExtractSettings) -> tuple[int, str, bool, bool] | None:
    """``(position, value, strong, foreign)`` of the last answer phrase with a value."""
    offset = max(0, len(text) - settings.phrase_window_chars)
    window = text[offset:]
    matches = list(_PHRASE.finditer(window)) + list(_BARE_ANSWER_WORD.finditer(window))
    for match in sorted(matches, key=lambda m: m.end(), reverse=True):
        value = _phrase_value(window[match.end() : match.end() + settings.max_answer_chars])
        if value:
            strong = match.group().lower().startswith("final")
            return offset + match.start(), value, strong, bool(_FOREIGN_PHRASE.fullmatch(match.group()))
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
    found = _last_phrase(text, settings)
    return found[1] if found else None


def _is_bare_math(text: str) -> bool:
    """Whether ``text`` is mathematics or a short name, not a sentence."""
    if "$" in text.replace("\\$", ""):
        return False  # math groups inside prose
    if _TEXT_ONLY.fullmatch(text):
        return True  # "Evelyn", "an ellipse", "Monday."
    words = _WORD.findall(_COMMAND.sub(" ", _TEXT_GROUP.sub(" ", text)))
    words = [word for word in words if word.lower() not in _MATH_WORDS]
    # A value with a unit ("15 cm^2", "5.4 cents") is still bare; a sentence
    # ("12个苹果，比昨天多3个") is not.
    return not words or (len(words) <= 2 and not text[:1].isalpha() and not _CLAUSE_BREAK.search(text))


def bare_final(text: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """The bare final expression of a region without box or phrase.

    Args:
        text: the region to search.
        settings: extraction limits.

    Returns:
        The whole (short, sentence-free) region, else the last math group
        (joined with the groups before it that only ``\\quad`` or
        ``\\text{and}`` separate) or number of the tail, whichever ends
        later; ``None`` when there is none.
    """
    tail = text[-settings.phrase_window_chars :].strip()
    if not tail:
        return None
    whole = clean_answer(tail)
    if whole and len(whole) <= settings.max_bare_chars and _is_bare_math(strip_delimiters(whole)):
        return clean_answer(strip_delimiters(whole))
    best: tuple[int, str] | None = None
    groups = list(_MATH_GROUP.finditer(tail))
    if groups:
        # Groups joined by \quad or \text{and} are one answer, as adjacent boxes are.
        last = len(groups) - 1
        first = last
        while last - first < MAX_JOINED_GROUPS - 1 and first > 0:
            if not _GROUP_JOINER.fullmatch(tail, groups[first - 1].end(), groups[first].start()):
                break
            first -= 1
        best = (groups[last].end(), ", ".join(strip_delimiters(m.group()) for m in groups[first : last + 1]))
    for match in _NUMBER.finditer(tail):
        if best is None or match.end() > best[0]:
            best = (match.end(), match.group())
    if best is None or not best[1]:
        return None
    return best[1]


def _first_number(value: str) -> str | None:
    """The first number, or math group holding a digit, of a sentence."""
    groups = [m for m in _MATH_GROUP.finditer(value) if any(ch.isdigit() for ch in m.group())]
    number = _NUMBER.search(value)
    if groups and (number is None or groups[0].start() < number.start()):
        return strip_delimiters(groups[0].group()) or None
    return number.group().strip() if number else None


def _phrase_answer(region: str, phrase: tuple[int, str, bool, bool], settings: ExtractSettings) -> str | None:
    position, value, _, foreign = phrase
    inner = last_boxes(value, settings)
    if inner is not None:
        return inner[1]  # "The answer is $\\boxed{5}$" keeps what is in the box
    value = strip_delimiters(value)
    if _is_bare_math(value):
        return value
    if len(region) - position > PROSE_PHRASE_REACH:
        return None  # "To answer: first ..." early on is not where the answer is
    # "Respuesta: quedan 35 € por pagar en 6 meses": after a foreign marker the
    # sentence's first number (or math group with a digit), not its last.
    first = _first_number(value) if foreign else None
    if first:
        return first
    # "Final Answer: 42 apples, so 7 each": the number the phrase opens with,
    # not the sentence's last (as graders that read "Answer: N" do).
    leading = _LEADING_NUMBER.match(value)
    if leading:
        return leading.group().strip()
    # "Final Answer: The largest $n$ is 34." -> the sentence's final expression.
    return bare_final(value, settings)


def _region_answer(region: str, settings: ExtractSettings, boxed_somewhere: bool) -> str | None:
    box = last_boxes(region, settings)
    phrase = _last_phrase(region, settings)
    answer = _phrase_answer(region, phrase, settings) if phrase is not None else None
    if box is not None:
        # NOTE: a box wins over phrases, except a "final answer is X" after it
        # with a value: the model boxed an intermediate result, then restated.
        restated = phrase is not None and phrase[2] and phrase[0] > box[0] and answer is not None
        if not (restated and any(ch.isdigit() or ch == "\\" for ch in answer)):
            return box[1]
    if answer is not None:
        return answer
    if phrase is not None and len(region) - phrase[0] <= PROSE_PHRASE_REACH:
        return None  # the closing phrase states no readable value ("Answer $ \\n 9 \\n $")
    if boxed_somewhere:
        return None  # a box cut off or too long to read: its digits are not an answer
    return bare_final(region, settings)


def extract_math_answer(response: str, settings: ExtractSettings = ExtractSettings()) -> str | None:
    """Final answer of a math (or integer) response, following the module policy.

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        The answer's LaTeX, or ``None`` when the response states no answer.
    """
    boxed_somewhere = any(cmd in response for cmd in BOX_COMMANDS)
    for region in answer_regions(response, settings):
        found = _region_answer(region, settings, boxed_somewhere)
        if found:
            return found
    return None


def gold_answer(gold: str, settings: ExtractSettings = ExtractSettings()) -> str:
    """The answer a gold label states.

    A worked solution ending in ``#### 18`` (GSM8K) gives ``18``; one holding
    ``\\boxed{...}`` gives its last box; anything else is the gold itself,
    without outer math delimiters or a trailing backslash (``5\\`` is ``5``).

    Args:
        gold: the gold label.
        settings: extraction limits.

    Returns:
        The gold answer text (possibly empty).
    """
    mark = gold.rfind(GSM8K_MARK)
    if mark >= 0:
        return gold[mark + len(GSM8K_MARK) :].strip().rstrip(".")
    if "\\boxed" in gold or "\\fbox" in gold:
        short = len(gold) <= settings.max_bare_chars
        boxed = last_boxes(gold[-settings.max_region_chars :], settings, GOLD_JOINER if short else None)
        if boxed:
            return boxed[1]
    # A stray trailing backslash ends no answer, in a gold as in a response.
    return strip_delimiters(gold).rstrip("\\").rstrip()


def math_segments(text: str) -> int:
    """How many inline-math groups a text holds (``$f$ is odd on $(0,1)$``: 2).

    Args:
        text: a gold answer.

    Returns:
        The number of ``$...$``, ``\\(...\\)`` and ``\\[...\\]`` groups.
    """
    return sum(1 for _ in _MATH_GROUP.finditer(text))


def prose_answers(response: str, settings: ExtractSettings = ExtractSettings()) -> list[str]:
    """The final answer read whole: the short final region, the last phrase's whole line.

    A gold that is prose with several math groups (``$a=1$ and $b=2$``) is
    the answer as a phrase; the extraction policy would keep one group of it.

    Args:
        response: the raw model output.
        settings: extraction limits.

    Returns:
        Up to two candidates, for an exact (cosmetic) comparison only.
    """
    region = next((r for r in answer_regions(response, settings) if r.strip()), "")
    tail = region[-settings.phrase_window_chars :]
    found = []
    whole = clean_answer(tail)
    if whole and len(whole) <= settings.max_answer_chars:
        found.append(whole)
    matches = list(_PHRASE.finditer(tail))
    if matches:
        value = _phrase_value(tail[matches[-1].end() : matches[-1].end() + settings.max_answer_chars], whole=True)
        if value:
            found.append(value)
    return found
