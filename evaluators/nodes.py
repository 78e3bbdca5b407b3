"""The shapes a parsed math answer can take.

The answer's outer structure (lists, tuples, intervals, sets, unions,
equations, matrices) is recognised by ``parse.py`` itself; only the leaves
are handed to the LaTeX parser. That keeps decisions sympy would get wrong
explicit: ``(8,-2)`` is an ordered pair, not the empty interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True, eq=False)
class TextNode:
    """Words, compared by ``normalize.text_key`` (``\\text{east}``)."""

    text: str
    key: str


@dataclass(frozen=True, eq=False)
class BaseNode:
    """A numeral with a base subscript, ``204_5``: digits, base and value."""

    text: str
    digits: str
    base: int
    value: int


@dataclass(frozen=True, eq=False)
class ScalarNode:
    """One expression; ``expr`` is the sympy object, ``None`` if unparsable."""

    text: str
    expr: Any


@dataclass(frozen=True, eq=False)
class EquationNode:
    """``lhs = rhs`` (also ``x \\in S``)."""

    text: str
    lhs: "Node"
    rhs: "Node"


@dataclass(frozen=True, eq=False)
class SetNode:
    """Unordered items: ``\\{1,2\\}`` (bare=False), ``1, -2`` or ``1 \\pm 2`` (bare=True)."""

    text: str
    items: tuple["Node", ...]
    bare: bool


@dataclass(frozen=True, eq=False)
class SeqNode:
    """Ordered items in brackets: a tuple ``(1,2)`` or an interval ``(3,4]``."""

    text: str
    open: str
    close: str
    items: tuple["Node", ...]


@dataclass(frozen=True, eq=False)
class UnionNode:
    """``A \\cup B``; the parts are compared as an unordered collection."""

    text: str
    items: tuple["Node", ...]


@dataclass(frozen=True, eq=False)
class MatrixNode:
    """A ``pmatrix``/``bmatrix``-style matrix, row by row."""

    text: str
    rows: tuple[tuple["Node", ...], ...]


Node = Union[TextNode, BaseNode, ScalarNode, EquationNode, SetNode, SeqNode, UnionNode, MatrixNode]


@dataclass(frozen=True, eq=False)
class MathAnswer:
    """A parsed answer: the input, its string key and its structure.

    Attributes:
        raw: the answer as given.
        key: ``normalize.structural_key(raw)``: equal keys mean equal answers.
        node: the parsed structure.
        parsed: ``False`` when some leaf could not be parsed or the answer was
            too long or too deeply nested to try (then only ``key`` counts).
    """

    raw: str
    key: str
    node: Node
    parsed: bool
