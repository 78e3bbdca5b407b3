"""Equivalence of two parsed math answers, gold first (as in Math-Verify).

Rules, by shape of the gold (G) and the prediction (P):

* equal string keys -> equal, whatever the shapes (``match: string``);
* text: compared by ``text_key`` only;
* base numerals: ``204_5`` equals ``204_{5}`` and any numeral of the same
  value in another base; a bare ``204`` (the digits without the subscript)
  also matches ``204_5``. The decimal value ``54`` does not: the question
  asked for base 5;
* equations: ``y = 2x+3`` vs ``2x+3`` compares right-hand sides when the
  left-hand side is a lone symbol (either way round); two equations with the
  same lone-symbol left side compare right sides; otherwise
  ``lhs - rhs`` must be proportional (``2x+2y=2`` is ``x+y=1``);
* sets and bare lists (``1, -2``; ``\\{1,2\\}``; ``1 \\pm 2``) are unordered
  multisets; a one-element set matches its element;
* tuples and intervals are ordered, brackets included (``(3,4]`` is not
  ``(3,4)``); a gold tuple also matches a bare list in the same order
  (missing parentheses);
* unions: the same parts in any order;
* matrices: same shape, entry by entry; a column or row vector also matches
  a tuple of its entries;
* leaves: ``scalar.scalar_match``.
"""

from __future__ import annotations

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
from evaluators.normalize import text_key
from evaluators.scalar import proportional, scalar_match
from evaluators.settings import CompareSettings


def _lone_symbol(node: Node) -> bool:
    return isinstance(node, ScalarNode) and getattr(node.expr, "is_Symbol", False)


def _ordered(gold: tuple[Node, ...], pred: tuple[Node, ...], s: CompareSettings, name: str) -> str | None:
    if len(gold) != len(pred):
        return None
    for g, p in zip(gold, pred):
        if _match(g, p, s) is None:
            return None
    return name


def _unordered(gold: tuple[Node, ...], pred: tuple[Node, ...], s: CompareSettings, name: str) -> str | None:
    if len(gold) != len(pred):
        return None
    unused = list(pred)
    for g in gold:
        for i, p in enumerate(unused):
            if _match(g, p, s) is not None:
                del unused[i]
                break
        else:
            return None
    return name


def _seq_name(node: Node) -> str:
    if isinstance(node, SeqNode) and (node.open, node.close) == ("(", ")"):
        infinite = any("\\infty" in item.text for item in node.items)
        return "interval" if infinite else "tuple"
    return "interval" if isinstance(node, SeqNode) else "tuple"


def _base(gold: Node, pred: Node) -> str | None:
    if isinstance(gold, BaseNode) and isinstance(pred, BaseNode):
        return "base" if gold.value == pred.value else None
    base, other = (gold, pred) if isinstance(gold, BaseNode) else (pred, gold)
    digits = "".join(other.text.split()).lower()
    return "base" if isinstance(base, BaseNode) and digits == base.digits else None


def _equation(gold: Node, pred: Node, s: CompareSettings) -> str | None:
    if isinstance(gold, EquationNode) and isinstance(pred, EquationNode):
        if _lone_symbol(gold.lhs) and _lone_symbol(pred.lhs):
            if gold.lhs.expr == pred.lhs.expr:
                return _match(gold.rhs, pred.rhs, s)
            return None
        sides = (gold.lhs, gold.rhs, pred.lhs, pred.rhs)
        if all(isinstance(x, ScalarNode) and x.expr is not None for x in sides):
            try:
                g = gold.lhs.expr - gold.rhs.expr
                p = pred.lhs.expr - pred.rhs.expr
            except Exception:  # sympy refuses to subtract e.g. sets
                return None
            return "equation" if proportional(g, p, s) else None
        return None
    if isinstance(gold, EquationNode):
        return _match(gold.rhs, pred, s) if _lone_symbol(gold.lhs) else None
    return _match(gold, pred.rhs, s) if _lone_symbol(pred.lhs) else None


def _vector(node: Node) -> tuple[Node, ...] | None:
    if isinstance(node, MatrixNode):
        if len(node.rows) == 1:
            return node.rows[0]
        if all(len(row) == 1 for row in node.rows):
            return tuple(row[0] for row in node.rows)
        return None
    if isinstance(node, SeqNode) and node.open == "(" and node.close == ")":
        return node.items
    return None


def _collections(gold: Node, pred: Node, s: CompareSettings) -> str | None:
    if isinstance(gold, SetNode):
        if isinstance(pred, SetNode):
            return _unordered(gold.items, pred.items, s, "set")
        return _match(gold.items[0], pred, s) if len(gold.items) == 1 else None
    if isinstance(pred, SetNode):
        if isinstance(gold, SeqNode) and pred.bare:
            return _ordered(gold.items, pred.items, s, _seq_name(gold))
        return _match(gold, pred.items[0], s) if len(pred.items) == 1 else None
    if isinstance(gold, SeqNode) and isinstance(pred, SeqNode):
        if (gold.open, gold.close) != (pred.open, pred.close):
            return None
        return _ordered(gold.items, pred.items, s, _seq_name(gold))
    if isinstance(gold, UnionNode) and isinstance(pred, UnionNode):
        return _unordered(gold.items, pred.items, s, "union")
    if isinstance(gold, MatrixNode) and isinstance(pred, MatrixNode):
        if len(gold.rows) != len(pred.rows):
            return None
        flat_g = tuple(cell for row in gold.rows for cell in row)
        flat_p = tuple(cell for row in pred.rows for cell in row)
        if [len(r) for r in gold.rows] != [len(r) for r in pred.rows]:
            return None
        return _ordered(flat_g, flat_p, s, "matrix")
    gv, pv = _vector(gold), _vector(pred)
    if gv is not None and pv is not None and (isinstance(gold, MatrixNode) or isinstance(pred, MatrixNode)):
        return _ordered(gv, pv, s, "matrix")
    return None


def _match(gold: Node, pred: Node, s: CompareSettings) -> str | None:
    """How ``pred`` matches ``gold`` (a method name), or ``None``."""
    if "".join(gold.text.split()) == "".join(pred.text.split()) and gold.text:
        return "string"
    if isinstance(gold, TextNode) or isinstance(pred, TextNode):
        return "text" if text_key(gold.text) == text_key(pred.text) else None
    if isinstance(gold, BaseNode) or isinstance(pred, BaseNode):
        return _base(gold, pred)
    if isinstance(gold, EquationNode) or isinstance(pred, EquationNode):
        return _equation(gold, pred, s)
    if isinstance(gold, ScalarNode) and isinstance(pred, ScalarNode):
        return scalar_match(gold.expr, pred.expr, s)
    return _collections(gold, pred, s)


def verify_detailed(
    gold: MathAnswer, pred: MathAnswer, settings: CompareSettings = CompareSettings()
) -> tuple[bool, str]:
    """Compare a parsed prediction with a parsed gold, with the reason.

    Args:
        gold: the parsed gold answer (first, as in Math-Verify).
        pred: the parsed prediction.
        settings: comparison settings.

    Returns:
        ``(correct, reason)``; the reason is ``match: <method>`` or
        ``mismatch``.
    """
    if gold.key and gold.key == pred.key:
        return True, "match: string"
    method = _match(gold.node, pred.node, settings)
    if method is None:
        return False, "mismatch"
    return True, f"match: {method}"


def verify(gold: MathAnswer, pred: MathAnswer, settings: CompareSettings = CompareSettings()) -> bool:
    """Whether ``pred`` is mathematically equivalent to ``gold``.

    Args:
        gold: the parsed gold answer (first, as in Math-Verify).
        pred: the parsed prediction.
        settings: comparison settings.

    Returns:
        ``True`` when equivalent (see the module docstring for the rules).
    """
    return verify_detailed(gold, pred, settings)[0]
