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
                return i
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


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is outside every bracket and brace.

    ``\\{``/``\\}`` count as brackets and ``\\\\`` is never a separator, so
    ``\\{1,2\\}, 3`` splits into two parts. Brackets of any kind balance each
    other, which keeps half-open intervals such as ``(3,4]`` together.

    Args:
        text: the text to split.
        sep: a separator string (``,``, ``=``, ``\\cup``, ...).

    Returns:
        The parts (one part, the whole text, when ``sep`` never occurs at the
        top level or brackets are unbalanced).
    """
    parts: list[str] = []
    depth = 0
    last = 0
    i = 0
    n = len(text)
    m = len(sep)
    while i < n:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt == "{" or nxt == "}":
                depth += 1 if nxt == "{" else -1
                i += 2
                continue
            if depth == 0 and text.startswith(sep, i) and sep.startswith("\\"):
                end = i + m
                # "\cup" must not match the start of "\cupdot".
                if end >= n or not text[end].isalpha():
                    parts.append(text[last:i])
                    last = i = end
                    continue
            # A command name's letters are harmless; an escaped symbol such
            # as "\," or "\\" must not be read as a separator.
            i += 1 if nxt.isalpha() else 2
            continue
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth -= 1
            if depth < 0:
                return [text]
        elif depth == 0 and text.startswith(sep, i) and not sep.startswith("\\"):
            parts.append(text[last:i])
            last = i = i + m
            continue
        i += 1
    if depth != 0:
        return [text]
    parts.append(text[last:])
    return parts


def outer_pair(text: str) -> tuple[str, str, str] | None:
    """Return ``(open, inner, close)`` when one bracket pair spans ``text``.

    ``(a+5)(b+2)`` is not spanned by one pair; ``(3,4]`` is (brackets of any
    kind balance each other, so half-open intervals are found).

    Args:
        text: stripped text.

    Returns:
        The opening bracket, the inside and the closing bracket, or ``None``.
    """
    if len(text) < 2:
        return None
    if text.startswith("\\{") and text.endswith("\\}"):
        open_tok, close_tok, body = "\\{", "\\}", text[2:-2]
    elif text[0] in "([" and text[-1] in ")]":
        open_tok, close_tok, body = text[0], text[-1], text[1:-1]
    else:
        return None
    # The opening bracket must stay open until the very end.
    depth = 0
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1 : i + 2]
            if nxt == "{":
                depth += 1
            elif nxt == "}":
                depth -= 1
            i += 2
            if depth < 0:
                return None
            continue
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth -= 1
            if depth < 0:
                return None
        i += 1
    if depth != 0:
        return None
    return open_tok, body, close_tok
