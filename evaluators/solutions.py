"""Several solutions in one answer, against a gold that lists them with ``;``.

A gold ``p=5, q=2; p=7, q=2`` (or ``(5,2); (7,2)``) names two solutions. A
prediction may write them ``p = 5, q = 2 and p = 7, q = 2``, ``q = 2, p = 5;
q = 2, p = 7``, ``(p,q) = (5,2) \\text{ or } (7,2)``, ``(5, 2), (7, 2)`` or, with
spacing commands, ``p=5,\\ q=2 \\quad \\text{and} \\quad p=7,\\; q=2``.
Both sides are rewritten as the set of their solutions' tuples, ordered by
the gold's variable names (``\\{(5, 2), (7, 2)\\}``), and math-verify compares
the two sets. Convention: every solution, in any order, none missing and none
extra; variables are matched by name where both sides name them, else by
position in the gold's order.

A side this module cannot read whole (an expression that is neither an
assignment, a tuple nor, for one variable, a value) is left as written, and
the usual comparison decides.
"""

from __future__ import annotations

import re

MAX_PIECES = 64
_JOINERS = re.compile(r"\\text\s*\{\s*(?:and|or|,|;)?\s*\}|\\q?quad|(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])")
# Spacing commands: thin ones vanish ("1\\,000"), wide ones separate ("x=1,\\ y=2", "\\;").
_THIN_SPACE = re.compile(r"\\[,!]")
_WIDE_SPACE = re.compile(r"\\[;: ]|~")
_NAME = r"[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?"
# Pieces arrive stripped, so no pattern needs a lazy group before trailing space.
_ASSIGNMENT = re.compile(rf"({_NAME})\s*=\s*(.+)", re.DOTALL)
_NAMED_TUPLE = re.compile(rf"\(\s*({_NAME}(?:\s*,\s*{_NAME})+)\s*\)\s*=\s*(.+)", re.DOTALL)
_SET = re.compile(r"(?:\\left\s*)?\\\{(.*)\\\}", re.DOTALL)
_TUPLE = re.compile(r"(?:\\left\s*)?\((.*)\)", re.DOTALL)


def _top_level_split(text: str, separators: str) -> list[str]:
    """Split at ``separators`` outside any ``()``, ``[]`` or ``{}`` (one linear scan)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _unright(inner: str) -> str:
    inner = inner.rstrip()
    return inner[: -len("\\right")] if inner.endswith("\\right") else inner


def _tuple_items(piece: str) -> list[str] | None:
    match = _TUPLE.fullmatch(piece)
    if not match:
        return None
    items = _top_level_split(_unright(match.group(1)), ",")
    return items if len(items) > 1 else None


def _solutions(text: str) -> tuple[list[str], list[dict | list]] | None:
    """``(names in order of appearance, solutions)``: a solution is a name->value dict or a value list."""
    # NOTE: before any split at ";": the one in "\\;" separates no solutions.
    text = _WIDE_SPACE.sub(" ", _THIN_SPACE.sub("", text.replace("$", ""))).strip()
    braced = _SET.fullmatch(text)  # "\\{(5,2), (7,2)\\}": the set's items are the solutions
    text = _JOINERS.sub(";", _unright(braced.group(1)) if braced else text)
    names: list[str] = []
    solutions: list[dict | list] = []
    current: dict[str, str] = {}
    pieces = _top_level_split(text, ",;")
    if len(pieces) > MAX_PIECES:
        return None
    for piece in pieces:
        named = _NAMED_TUPLE.fullmatch(piece)
        if named:
            names = names or [name.strip() for name in named.group(1).split(",")]
            piece = named.group(2).strip()
        assignment = None if named else _ASSIGNMENT.fullmatch(piece)
        if assignment:
            name, value = assignment.group(1), assignment.group(2).strip()
            if name in current:
                solutions.append(current)
                current = {}
            current[name] = value
            if name not in names:
                names.append(name)
            continue
        if current:
            solutions.append(current)
            current = {}
        items = _tuple_items(piece)
        solutions.append(items if items is not None else [piece])
    if current:
        solutions.append(current)
    return names, solutions


def _tuples(solutions: list[dict | list], order: list[str]) -> list[list[str]] | None:
    rows = []
    for solution in solutions:
        if isinstance(solution, dict):
            if set(solution) != set(order):
                return None
            rows.append([solution[name] for name in order])
        elif order and len(solution) != len(order):
            return None
        else:
            rows.append(solution)
    return rows


def _render(rows: list[list[str]]) -> str:
    items = [row[0] if len(row) == 1 else "(" + ", ".join(row) + ")" for row in rows]
    return "\\{" + ", ".join(items) + "\\}"


def solution_sets(gold: str, pred: str) -> tuple[str, str] | None:
    """Both answers as sets of solutions, when the gold lists several with ``;``.

    Args:
        gold: the gold answer.
        pred: the extracted prediction.

    Returns:
        ``(gold, pred)`` rewritten as LaTeX sets of tuples, or ``None`` when
        the gold is not a ``;``-separated list of solutions or a side cannot
        be read whole.
    """
    if ";" not in gold or len(_top_level_split(gold, ";")) < 2:
        return None
    read_gold, read_pred = _solutions(gold), _solutions(pred)
    if read_gold is None or read_pred is None:
        return None
    order = read_gold[0] or read_pred[0]
    gold_rows, pred_rows = _tuples(read_gold[1], order), _tuples(read_pred[1], order)
    if gold_rows is None or pred_rows is None or len(gold_rows) < 2:
        return None
    return _render(gold_rows), _render(pred_rows)
