"""Parse a LaTeX answer into a ``MathAnswer`` tree with sympy leaves.

Structure is read here, outermost first:

1. text answers (``\\text{east}``, ``Monday``) -> ``TextNode``;
2. numerals with a base subscript (``204_5``, ``204_{5}``) -> ``BaseNode``;
3. top-level commas -> an unordered ``SetNode`` (a list of solutions);
4. top-level ``=`` or ``\\in`` -> ``EquationNode`` (first and last side of a
   chain ``a = b = c``); a one-variable inequality (``x > 5``,
   ``-2 \\le x \\le 7``) -> the interval it describes, as a ``SeqNode``;
5. top-level ``\\cup`` -> ``UnionNode``;
6. a ``pmatrix``/``bmatrix``/``vmatrix``/``matrix``/``array`` -> ``MatrixNode``;
7. ``\\{...\\}`` -> ``SetNode``; a bracket pair spanning the answer with a
   comma inside -> ``SeqNode`` (tuple or interval, ordered); without a comma
   the brackets are mere grouping;
8. ``\\pm``/``\\mp`` -> the two-element ``SetNode`` of both signs;
9. anything else is one expression, parsed by latex2sympy2_extended (an
   ANTLR grammar building sympy objects; raw text is never handed to
   ``sympify``/``parse_expr``/``eval``). The symbol ``i`` becomes the
   imaginary unit when ``CompareSettings.imaginary_i`` is set.

Parsing itself has no time limit (sympy evaluates ``9^{9^{9}}`` eagerly):
use ``grade`` or ``timeout.WorkerPool`` for untrusted input. Length and
nesting caps and the huge-number guard from ``CompareSettings`` are
applied here, though.
"""

from __future__ import annotations

import re
from functools import lru_cache

from evaluators.braces import nesting_depth, outer_pair, split_top_level
from evaluators.guard import too_large
from evaluators.nodes import (
    BaseNode,
    EquationNode,
    MathAnswer,
    MatrixNode,
    Node,
    ScalarNode,
    SeqNode,
    SetNode,
    TextNode,
    UnionNode,
)
from evaluators.normalize import is_text_answer, normalize_latex, structural_key, text_key
from evaluators.settings import CompareSettings

_BASE = re.compile(r"([0-9A-Za-z]+)_\{?\s*(\d{1,2})\s*\}?")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(.*)\\end\{\1\}", re.DOTALL)
_ARRAY_SPEC = re.compile(r"^\s*\{[lcr| ]*\}")
_MAX_STRUCTURE_DEPTH = 8
_RELATION = re.compile(r"(\\leqslant|\\geqslant|\\leq|\\geq|\\le|\\ge|<=|>=|<|>)(?![A-Za-z])")
_LONE_VARIABLE = re.compile(r"[A-Za-z]")


def _base_node(text: str) -> BaseNode | None:
    match = _BASE.fullmatch(text)
    if not match:
        return None
    digits, base = match.group(1), int(match.group(2))
    if not 2 <= base <= 36:
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    return BaseNode(text, digits.lower(), base, value)


def _leaf(text: str, settings: CompareSettings) -> ScalarNode:
    from latex2sympy2_extended import latex2sympy

    try:
        expr = latex2sympy(text, normalization_config=None)
    except Exception:  # the ANTLR grammar raises bare Exception on syntax errors
        return ScalarNode(text, None)
    if settings.imaginary_i:
        free = getattr(expr, "free_symbols", ())
        imaginary = {sym: _imaginary_unit() for sym in free if sym.name == "i"}
        if imaginary:
            expr = expr.subs(imaginary)
    return ScalarNode(text, expr)


def _imaginary_unit():
    import sympy

    return sympy.I


def _matrix(text: str, settings: CompareSettings, depth: int) -> MatrixNode | None:
    match = _MATRIX.fullmatch(text)
    if not match:
        return None
    body = _ARRAY_SPEC.sub("", match.group(2)) if match.group(1) == "array" else match.group(2)
    rows = [row for row in body.split("\\\\") if row.strip()]
    cells = tuple(tuple(_node(cell, settings, depth + 1) for cell in row.split("&")) for row in rows)
    if not cells or len({len(row) for row in cells}) != 1:
        return None
    return MatrixNode(text, cells)


def _set(text: str, parts: list[str], settings: CompareSettings, depth: int, bare: bool) -> SetNode:
    items: list[Node] = []
    for part in parts:
        if not part.strip():
            continue
        node = _node(part, settings, depth + 1)
        # "\{1 \pm \sqrt{5}, -2\}" has three elements, not two.
        if isinstance(node, SetNode) and node.bare:
            items.extend(node.items)
        else:
            items.append(node)
    return SetNode(text, tuple(items), bare=bare)


def _bracketed(text: str, settings: CompareSettings, depth: int) -> Node | None:
    pair = outer_pair(text)
    if pair is None:
        return None
    open_tok, inner, close_tok = pair
    parts = split_top_level(inner, ",")
    if open_tok == "\\{":
        return _set(text, parts, settings, depth, bare=False)
    if len(parts) >= 2:
        return SeqNode(text, open_tok, close_tok, tuple(_node(p, settings, depth + 1) for p in parts))
    if open_tok == "(" and close_tok == ")":
        return _node(inner, settings, depth + 1)
    return None


def _plus_minus(text: str, settings: CompareSettings, depth: int) -> SetNode | None:
    if "\\pm" not in text and "\\mp" not in text:
        return None
    plus = text.replace("\\pm", "+").replace("\\mp", "-")
    minus = text.replace("\\pm", "-").replace("\\mp", "+")
    return SetNode(text, (_node(plus, settings, depth + 1), _node(minus, settings, depth + 1)), bare=True)


def _inequality(text: str, settings: CompareSettings, depth: int) -> SeqNode | None:
    """``x > 5`` -> ``(5, \\infty)``; ``-2 \\le x \\le 7`` -> ``[-2, 7]``."""
    pieces = _RELATION.split(text)
    if len(pieces) not in (3, 5):
        return None
    terms = [p.strip() for p in pieces[0::2]]
    ops = ["<" if op.startswith(("<", "\\l")) else ">" for op in pieces[1::2]]
    closed = [op in ("<=", ">=") or op.startswith(("\\le", "\\ge")) for op in pieces[1::2]]
    if len(terms) == 3:
        if not _LONE_VARIABLE.fullmatch(terms[1]) or ops[0] != ops[1]:
            return None
        low, high = (0, 2) if ops[0] == "<" else (2, 0)
        bounds = (terms[low], terms[high])
        brackets = (closed[0], closed[1]) if ops[0] == "<" else (closed[1], closed[0])
    else:
        if _LONE_VARIABLE.fullmatch(terms[0]):
            value, var_first = terms[1], True
        elif _LONE_VARIABLE.fullmatch(terms[1]):
            value, var_first = terms[0], False
        else:
            return None
        # "x > a" and "a < x" both bound x from below.
        below = (ops[0] == ">") == var_first
        bounds = (value, "\\infty") if below else ("-\\infty", value)
        brackets = (closed[0], False) if below else (False, closed[0])
    open_tok = "[" if brackets[0] else "("
    close_tok = "]" if brackets[1] else ")"
    items = tuple(_node(b, settings, depth + 1) for b in bounds)
    return SeqNode(text, open_tok, close_tok, items)


def _equation(text: str, settings: CompareSettings, depth: int) -> EquationNode | None:
    for sep in ("\\in", "="):
        parts = split_top_level(text, sep)
        if len(parts) < 2:
            continue
        # "<=", ">=", "!=" and "==" are not assignments.
        if sep == "=" and any(p.endswith(("<", ">", "!")) or not p.strip() for p in parts):
            return None
        lhs, rhs = parts[0], parts[-1]
        return EquationNode(text, _node(lhs, settings, depth + 1), _node(rhs, settings, depth + 1))
    return None


def _node(text: str, settings: CompareSettings, depth: int) -> Node:
    text = text.strip()
    if depth > _MAX_STRUCTURE_DEPTH or not text:
        return ScalarNode(text, None)
    base = _base_node(text)
    if base is not None:
        return base
    parts = split_top_level(text, ",")
    if len(parts) >= 2:
        return _set(text, parts, settings, depth, bare=True)
    for build in (_equation, _inequality):
        found = build(text, settings, depth)
        if found is not None:
            return found
    unions = split_top_level(text, "\\cup")
    if len(unions) >= 2:
        return UnionNode(text, tuple(_node(p, settings, depth + 1) for p in unions))
    for build in (_matrix, _bracketed, _plus_minus):
        found = build(text, settings, depth)
        if found is not None:
            return found
    return _leaf(text, settings)


def _all_parsed(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return node.expr is not None
    if isinstance(node, (TextNode, BaseNode)):
        return True
    if isinstance(node, EquationNode):
        return _all_parsed(node.lhs) and _all_parsed(node.rhs)
    if isinstance(node, MatrixNode):
        return all(_all_parsed(cell) for row in node.rows for cell in row)
    return all(_all_parsed(item) for item in node.items)


def parseable(normalized: str, settings: CompareSettings = CompareSettings()) -> bool:
    """Whether a normalized answer is within the parser's limits.

    Args:
        normalized: output of ``normalize_latex``.
        settings: the length and nesting caps, and the huge-number guard.

    Returns:
        ``False`` for answers too long, too deeply nested, or (with
        ``refuse_huge_numbers``) holding numerals too large to evaluate.
    """
    if len(normalized) > settings.max_parse_chars or nesting_depth(normalized) > settings.max_nesting:
        return False
    return not (settings.refuse_huge_numbers and too_large(normalized))


@lru_cache(maxsize=4096)
def _parse_cached(latex: str, settings: CompareSettings) -> MathAnswer:
    key = structural_key(latex)
    if is_text_answer(latex):
        return MathAnswer(latex, key, TextNode(latex, text_key(latex)), True)
    normalized = normalize_latex(latex)
    if not parseable(normalized, settings):
        return MathAnswer(latex, key, ScalarNode(normalized, None), False)
    node = _node(normalized, settings, 0)
    return MathAnswer(latex, key, node, _all_parsed(node))


def parse_math(latex: str, settings: CompareSettings = CompareSettings()) -> MathAnswer:
    """Parse a LaTeX answer (gold or extracted prediction).

    Results are cached per (answer, settings): a gold graded against many
    samples is parsed once per process.

    Args:
        latex: the answer, bare LaTeX or ``$``-delimited.
        settings: parsing limits (length, nesting, imaginary unit).

    Returns:
        The parsed ``MathAnswer``; never raises on bad LaTeX (unparsable
        leaves hold ``expr=None`` and ``parsed`` is ``False``).
    """
    return _parse_cached(latex, settings)


def clear_cache() -> None:
    """Forget cached parses (e.g. to time parsing from cold)."""
    _parse_cached.cache_clear()
