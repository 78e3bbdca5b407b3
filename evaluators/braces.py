"""Linear-time scanning of TeX groups.

Everything here walks the text once, character by character, so that deeply
nested or unbalanced input (5000 open braces, a cut-off response) costs time
proportional to its length and never recursion or regex backtracking.
"""

from __future__ import annotations

OPENERS = "([{"
CLOSERS = ")]}"


def group_end(text: str, start: int, limit: int) -> int | None:
    """Find the ``}`` closing the ``{`` at ``text[start]``.

    Escaped braces (``\\{``, ``\\}``) are not TeX grouping and are skipped.

    Args:
        text: the text to scan.
        start: index of an opening ``{``.
        limit: give up after scanning this many characters.

    Returns:
        The index of the matching ``}``, or ``None`` when it is missing within
        ``limit`` characters.
    """
    found = _scan(text, start, limit, stop_at_dollar=False)
    return found[1] if found and found[0] == "}" else None


def dollar_end(text: str, start: int, limit: int) -> int | None:
    """Find the ``$`` that ends the math holding an unclosed ``{`` at ``text[start]``.

    ``$\\boxed{42$`` closes its math before its box: the ``$`` ends the
    group too.

    Args:
        text: the text to scan.
        start: index of an opening ``{`` whose ``}`` is missing.
        limit: give up after scanning this many characters.

    Returns:
        The index of the first unescaped ``$`` reached before the group
        closes, or ``None`` (no ``$``, or the group does close first).
    """
    found = _scan(text, start, limit, stop_at_dollar=True)
    return found[1] if found and found[0] == "$" else None


def _scan(text: str, start: int, limit: int, *, stop_at_dollar: bool) -> tuple[str, int] | None:
    """Walk from the ``{`` at ``start``: ``("}", i)`` where the group closes, ``("$", i)`` at the
    first unescaped ``$`` inside it (when asked), ``None`` past ``limit`` or the end."""
    depth = 0
    stop = min(len(text), start + limit + 1)
    i = start
    while i < stop:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return "}", i
        elif ch == "$" and stop_at_dollar:
            return "$", i
        i += 1
    return None


def command_argument(text: str, pos: int, limit: int) -> str | None:
    """Read the argument of a TeX command whose name ends just before ``pos``.

    A braced argument ``{...}`` is returned without its braces. The no-brace
    form (``\\boxed 5``) is read up to the next whitespace or ``$``, which is
    what a model means even though TeX would take a single token.

    Args:
        text: the text to scan.
        pos: index right after the command name.
        limit: the longest argument accepted.

    Returns:
        The argument, or ``None`` when it is missing, unbalanced or too long.
    """
    i = pos
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] == "{":
        end = group_end(text, i, limit)
        if end is None:
            return None
        return text[i + 1 : end]
    if i == pos:
        # "\boxedx" is another command name, not "\boxed x".
        return None
    j = i
    stop = min(n, i + limit)
    while j < stop and not text[j].isspace() and text[j] != "$":
        j += 1
    word = text[i:j].rstrip(".,;")
    return word or None


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``{}``, ``()`` and ``[]`` (escaped braces count too).

    Args:
        text: the text to measure.

    Returns:
        The maximum depth reached; unbalanced closers are ignored.
    """
    depth = best = 0
    for ch in text:
        if ch in OPENERS:
            depth += 1
            if depth > best:
                best = depth
        elif ch in CLOSERS and depth > 0:
            depth -= 1
    return best
