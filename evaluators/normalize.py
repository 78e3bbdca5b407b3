"""String normalization of LaTeX answers, before any parsing.

Two answers whose normalized strings are equal are equal; this catches most
pairs without sympy. Normalization removes presentation only:

* math delimiters (``$``, ``\\(...\\)``, ``\\[...\\]``), ``\\displaystyle``,
  ``\\left``/``\\right`` and ``\\big``-style sizes;
* ``\\dfrac``/``\\tfrac`` (to ``\\frac``), short forms ``\\frac12``,
  ``\\frac{270}7``, ``\\sqrt2`` (braced);
* spacing ``\\!``, ``\\,``, ``\\;``, ``\\:``, ``\\quad``, ``~``;
* thousands separators ``10,\\!080``, ``10{,}080`` always, and ``1,000``
  when the whole answer is one grouped number (``1, 000`` with a space is a
  list);
* degrees (``^\\circ``, ``^{\\circ}``, ``°``, ``\\text{ degrees}``), ``\\%``
  and ``\\$``: ``90^\\circ`` is ``90``, ``10\\%`` is ``10`` (a percentage is
  not turned into ``0.1``);
* units: a ``\\text{...}``/``\\mbox{...}`` word (with an optional ``^2``)
  next to a number is dropped, as is a trailing unit word (``5 cm``,
  ``12 inches``); other ``\\text{...}`` is unwrapped;
* ``\\text{ or }``/``\\text{ and }`` between answers become commas;
* bare ``pi`` and ``inf``/``infinity`` become ``\\pi`` and ``\\infty``.

Every regex here is linear (no nested quantifiers); inputs are capped by the
caller.
"""

from __future__ import annotations

import re

_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WRAP_NAMES = r"(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|mathbf|mathit|operatorname)"
_WRAPPED = re.compile(r"\\" + _WRAP_NAMES + r"\s*\{([^{}]*)\}")
_CONNECTOR = re.compile(r"\\" + _WRAP_NAMES + r"\s*\{\s*(?:or|and)\s*\}")
# Two letters at least: "\mathbf{v}" is a vector, not a unit.
_UNIT_TEXT = re.compile(r"\\" + _WRAP_NAMES + r"\s*\{\s*[A-Za-z]{2}[A-Za-z. ]*\}(?:\s*\^\s*\{?\s*[23]\s*\}?)?")
_SIZES = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![A-Za-z])\s*\.?")
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z])|\\text\{\s*degrees?\s*\}")
_FRAC_TWO = re.compile(r"\\frac\s*(\\[A-Za-z]+|[0-9A-Za-z])\s*(\\[A-Za-z]+|[0-9A-Za-z])")
_FRAC_FIRST = re.compile(r"\\frac\s*(\\[A-Za-z]+|[0-9A-Za-z])\s*(?=\{)")
_FRAC_SECOND = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\\[A-Za-z]+|[0-9A-Za-z])")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\[[^\]]*\])?\s*([0-9A-Za-z])")
_THOUSANDS_BRACED = re.compile(r"(\d)\s*\{,\}\s*(?=\d{3})")
_THOUSANDS_THIN = re.compile(r"(\d),\s*\\!\s*(?=\d{3})")
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LEADING_DOT = re.compile(r"(?<![\d.])\.(\d)")
_UNIT_WORDS = frozenset(
    "cm mm km m kg g mg ft in yd mi hr hrs h min s sec mph kph oz lb lbs l ml".split()
)
_FUNCTION_WORDS = frozenset("sin cos tan cot sec csc log ln exp lim max min gcd lcm det mod".split())
_TRAILING_WORD = re.compile(r"(?<=[\d}])\s+([A-Za-z]+(?:\s+[A-Za-z]+)?)(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$")
_PLAIN_WORDS = re.compile(r"[A-Za-z][A-Za-z '\-]*")
# Plain-text spellings models use for constants ("pi", "inf").
_BARE_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
_BARE_INFINITY = re.compile(r"(?<![\\A-Za-z])(?:infinity|infty|inf)(?![A-Za-z])")
_UNICODE = {"−": "-", "–": "-", "×": "\\times ", "·": "\\cdot ", "π": "\\pi ", "∞": "\\infty ", "√": "\\sqrt"}


def strip_delimiters(text: str) -> str:
    """Remove one outer pair of math delimiters and surrounding spaces.

    Args:
        text: an answer string.

    Returns:
        The answer without ``$...$``-style delimiters.
    """
    text = text.strip()
    for left, right in _DELIMS:
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            return text[len(left) : len(text) - len(right)].strip()
    return text


def _unbox(text: str) -> str:
    for cmd in ("\\boxed{", "\\fbox{"):
        if text.startswith(cmd) and text.endswith("}"):
            return text[len(cmd) : -1].strip()
    return text


def _drop_units(text: str) -> str:
    if not any(ch.isdigit() for ch in _UNIT_TEXT.sub("", text)):
        return text
    text = _UNIT_TEXT.sub(" ", text)
    match = _TRAILING_WORD.search(text)
    if match:
        words = match.group(1).split()
        if all(w.lower() not in _FUNCTION_WORDS for w in words) and (
            words[0].lower() in _UNIT_WORDS or len(words[0]) >= 4
        ):
            text = text[: match.start()]
    return text


def normalize_latex(text: str) -> str:
    """Normalize an answer's LaTeX for comparison and parsing.

    Args:
        text: the answer (bare LaTeX, possibly with ``$`` delimiters).

    Returns:
        The normalized LaTeX, single-spaced; see the module docstring.
    """
    text = _unbox(strip_delimiters(text))
    for uni, tex in _UNICODE.items():
        text = text.replace(uni, tex)
    text = text.replace("\n", " ").replace("\\displaystyle", " ")
    text = _CONNECTOR.sub(",", text)
    text = _SIZES.sub("", text)
    text = text.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    text = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", text)
    text = re.sub(r"\\[dt]binom(?![A-Za-z])", r"\\binom", text)
    text = _THOUSANDS_BRACED.sub(r"\1", text)
    text = _THOUSANDS_THIN.sub(r"\1", text)
    text = _SPACING.sub(" ", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    text = re.sub(r"\\text\{\s*percent\s*\}", "", text)
    text = _drop_units(text)
    for _ in range(3):
        # Innermost wrappers first: "\text{\textbf{x}}" needs two passes.
        text = _WRAPPED.sub(r"\1", text)
    text = _FRAC_TWO.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_FIRST.sub(r"\\frac{\1}", text)
    text = _FRAC_SECOND.sub(r"\\frac\1{\2}", text)
    text = _SQRT_SHORT.sub(lambda m: "\\sqrt" + (m.group(1) or "") + "{" + m.group(2) + "}", text)
    text = _LEADING_DOT.sub(r"0.\1", text)
    text = _BARE_PI.sub(r"\\pi ", text)
    text = _BARE_INFINITY.sub(r"\\infty ", text)
    text = " ".join(text.split()).strip().rstrip(".,;").strip()
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    return text


def structural_key(text: str) -> str:
    """Normalized LaTeX without any whitespace: the string-equality key.

    Args:
        text: the answer.

    Returns:
        ``normalize_latex(text)`` with all whitespace removed.
    """
    return "".join(normalize_latex(text).split())


def is_text_answer(text: str) -> bool:
    """Whether an answer is words rather than mathematics.

    An answer is text when it is entirely one ``\\text{...}``-like group
    holding no digit (``\\text{(C)}``, ``\\text{east}``), or when it is plain
    words with a run of at least three letters and nothing else
    (``Monday``). ``p - q`` or ``ab`` stay mathematics.

    Args:
        text: the answer (gold or prediction).

    Returns:
        ``True`` for a text answer.
    """
    bare = _unbox(strip_delimiters(text))
    whole = _WRAPPED.fullmatch(bare)
    if whole:
        inner = whole.group(1)
        return any(c.isalpha() for c in inner) and not any(c.isdigit() for c in inner)
    return bool(_PLAIN_WORDS.fullmatch(bare)) and re.search(r"[A-Za-z]{3}", bare) is not None


def text_key(text: str) -> str:
    """Comparison key of a text answer: case, spaces, wrappers and articles go.

    ``\\text{(C)}``, ``(C)`` and ``c`` share the key ``c``.

    Args:
        text: the answer.

    Returns:
        The lower-cased key.
    """
    plain = _WRAPPED.sub(r"\1", _unbox(strip_delimiters(text)))
    plain = plain.replace("\\", " ").lower().strip().rstrip(".").strip()
    plain = re.sub(r"^(?:the|an|a)\s+", "", plain)
    plain = "".join(plain.split())
    match = re.fullmatch(r"\(([a-z])\)", plain)
    return match.group(1) if match else plain
