"""Plain-text and Python notation rewritten as LaTeX (``2**(1/4)`` -> ``2^{(1/4)}``).

math-verify's LaTeX parser reads ``sqrt(3)`` but not ``**``, and reads
``sin(x)`` as a product of letters. Its plain-expression extraction would
read both, through sympy's ``parse_expr``, which evaluates Python code; model
text never goes there. Instead this module rewrites the few plain forms
models write, textually:

* ``a**b`` -> ``a^{b}`` (``b`` a number, a name, or a parenthesised group);
* ``sqrt(...)`` -> ``\\sqrt{...}``;
* ``sin(``, ``cos(``, ``tan(``, ``log(``, ``ln(``, ``exp(`` -> ``\\sin(`` etc.

Parentheses are matched by one linear scan, so hostile nesting costs time
proportional to its length; an unmatched parenthesis leaves the text as it is.
"""

from __future__ import annotations

import re

_POWER_OPERAND = re.compile(r"\s*([A-Za-z0-9.]+)")
_FUNCTION = re.compile(r"(?<![\\A-Za-z])(sqrt|sin|cos|tan|log|ln|exp)\s*\(")


def _matching_parens(text: str) -> dict[int, int]:
    """``open index -> close index`` for every balanced pair of ``()``."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            pairs[stack.pop()] = i
    return pairs


def _has_base(text: str, at: int) -> bool:
    """Whether the ``**`` at ``at`` follows an operand (not markdown bold)."""
    before = text[:at].rstrip()
    return bool(before) and (before[-1].isalnum() or before[-1] in ")}")


def plain_to_latex(text: str) -> str:
    """Rewrite Python-style powers and function calls as LaTeX.

    Args:
        text: an answer, LaTeX or plain.

    Returns:
        The answer with ``**`` and ``sqrt(...)`` (and the common function
        names) in LaTeX; unchanged when it holds neither.
    """
    if "**" not in text and not _FUNCTION.search(text):
        return text
    pairs = _matching_parens(text)
    closers: dict[int, str] = {}  # what a matched ")" becomes
    out: list[str] = []
    i = 0
    while i < len(text):
        if i in closers:
            out.append(closers.pop(i))
            i += 1
            continue
        if text.startswith("**", i) and _has_base(text, i):
            j = i + 2
            while j < len(text) and text[j] == " ":
                j += 1
            if j in pairs:
                out.append("^{(")
                closers[pairs[j]] = ")}"
                i = j + 1
                continue
            operand = _POWER_OPERAND.match(text, i + 2)
            if operand:
                out.append("^{" + operand.group(1) + "}")
                i = operand.end()
                continue
        call = _FUNCTION.match(text, i) if text[i] in "sctle" else None
        if call and call.end() - 1 in pairs:
            if call.group(1) == "sqrt":
                out.append("\\sqrt{")
                closers[pairs[call.end() - 1]] = "}"
            else:
                out.append("\\" + call.group(1) + "(")
            i = call.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)
