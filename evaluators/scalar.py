"""Equality of two sympy expressions: exact, numeric, then symbolic.

Order and tolerances (see ``CompareSettings``):

1. identical sympy objects, or two rationals that are equal -> ``exact``;
   two rationals that differ are different (no tolerance on integers).
2. no free symbols: both sides are evaluated to ``eval_digits`` digits and
   compared with a relative tolerance: ``float_rel_tol`` (1e-6) when either
   side holds a decimal literal, ``exact_rel_tol`` (1e-12) otherwise. For
   constants this evaluation is decisive: ``\\sqrt{2}/2`` equals
   ``1/\\sqrt{2}``; ``0.333`` does not equal ``1/3``.
3. free symbols: both sides are evaluated at ``random_points`` fixed
   pseudo-random points (mixed signs, so ``|x|`` differs from ``x``); any
   disagreement decides "different"; agreement everywhere decides "equal"
   (``numeric``). When evaluation is impossible (undefined functions,
   relations) ``simplify(a - b) == 0`` decides (``symbolic``).

All of it may be slow on hostile input; the caller imposes the deadline.
"""

from __future__ import annotations

import random
from typing import Any

from evaluators.settings import CompareSettings


def _has_float(expr: Any) -> bool:
    import sympy

    return bool(getattr(expr, "has", None)) and expr.has(sympy.Float)


def _close(a: Any, b: Any, tol: float) -> bool:
    """Relative closeness of two evaluated sympy numbers (complex allowed)."""
    import sympy

    if a.has(sympy.nan, sympy.zoo) or b.has(sympy.nan, sympy.zoo):
        return False
    if a.has(sympy.oo, -sympy.oo) or b.has(sympy.oo, -sympy.oo):
        return a == b
    diff = abs(a - b)
    scale = max(abs(a), abs(b))
    if scale == 0:
        return True
    return bool(diff <= tol * scale)


def _evaluate(expr: Any, digits: int, point: dict | None = None) -> Any | None:
    import sympy

    try:
        # evalf(subs=...) substitutes inside the numeric evaluation, so x^1000
        # at x = 2.7 is never expanded into an exact rational first.
        value = sympy.N(expr, digits, subs=point) if point else sympy.N(expr, digits)
    except Exception:  # sympy raises many types on unevaluable input
        return None
    if not getattr(value, "is_number", False) or value.free_symbols:
        return None
    return value


def _points(symbols: list[Any], count: int) -> list[dict[Any, Any]]:
    import sympy

    # Seeded so that verdicts are reproducible across runs and processes.
    rng = random.Random(20240611)
    points = []
    for _ in range(count):
        point = {}
        for sym in symbols:
            magnitude = rng.uniform(0.3, 2.7)
            point[sym] = sympy.Rational(round(magnitude * 10_000), 10_000) * rng.choice((1, -1))
        points.append(point)
    return points


def scalar_match(a: Any, b: Any, settings: CompareSettings = CompareSettings()) -> str | None:
    """Decide whether two sympy objects are the same value.

    Args:
        a: the gold's sympy object.
        b: the prediction's sympy object.
        settings: tolerances and evaluation settings.

    Returns:
        ``"exact"``, ``"numeric"`` or ``"symbolic"`` for equal values, ``None``
        otherwise.
    """
    import sympy

    if a is None or b is None:
        return None
    try:
        if a == b:
            return "exact"
    except Exception:  # comparing unrelated sympy types may raise
        return None
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        return None
    if a.is_Rational and b.is_Rational:
        return None
    tol = settings.float_rel_tol if (_has_float(a) or _has_float(b)) else settings.exact_rel_tol
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    if not symbols:
        va, vb = _evaluate(a, settings.eval_digits), _evaluate(b, settings.eval_digits)
        if va is not None and vb is not None:
            return "numeric" if _close(va, vb, tol) else None
        return _symbolic(a, b)
    evaluated = 0
    for point in _points(symbols, settings.random_points):
        va = _evaluate(a, settings.eval_digits, point)
        vb = _evaluate(b, settings.eval_digits, point)
        if va is None or vb is None:
            continue
        if not _close(va, vb, tol):
            return None
        evaluated += 1
    if evaluated == settings.random_points and evaluated > 0:
        return "numeric"
    return _symbolic(a, b)


def _symbolic(a: Any, b: Any) -> str | None:
    import sympy

    try:
        return "symbolic" if sympy.simplify(a - b) == 0 else None
    except Exception:  # simplify can raise on exotic objects
        return None


def proportional(a: Any, b: Any, settings: CompareSettings = CompareSettings()) -> bool:
    """Whether ``a = c * b`` for a nonzero constant ``c`` (equations ``a = 0``).

    Used for equations such as planes, where ``2x + 2y = 2`` and ``x + y = 1``
    state the same thing.

    Args:
        a: gold ``lhs - rhs``.
        b: prediction ``lhs - rhs``.
        settings: evaluation settings.

    Returns:
        ``True`` when the ratio is a nonzero constant.
    """
    import sympy

    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        return False
    if a == 0 or b == 0:
        return a == b
    try:
        ratio = sympy.simplify(a / b)
    except Exception:  # see _symbolic
        return False
    return bool(ratio.is_number and not ratio.free_symbols and ratio != 0 and ratio.is_finite)
