"""Equivalence of two parsed answers: math-verify's ``verify``, with our conventions.

Gold comes first (``verify`` is not symmetric). What we add around the library:

* the percent convention is a setting (``CompareSettings.percent``), applied
  by rewriting math-verify's percent form ``x * UnevaluatedExpr(1/100)``;
* a decimal matches a number only when it agrees at ``float_rounding``
  decimals AND within ``float_rel_tol``: at 6 decimals alone every number
  below 5e-7 would be equal (``6.72e-5`` vs ``6.73e-5``);
* a symbol ``i`` is the imaginary unit (math-verify decides per string
  whether ``i`` is complex, so ``1+2i`` and ``(1+i)^2+1`` would differ);
* a column or row vector equals the tuple of its entries;
* an equation reads with its unknown on the left (``2 = x`` is ``x = 2``),
  so that math-verify takes it as an assignment and unwraps it;
* division by zero (``zoo``, ``nan``) is never equal to anything.

Runs inside a pool worker: the caller's deadline bounds it.
"""

from __future__ import annotations

from typing import Any

from evaluators.settings import CompareSettings


def _sympy() -> Any:
    import sympy

    return sympy


def _percent_value(expr: Any) -> Any | None:
    """``x`` when ``expr`` is math-verify's percent form of ``x``, else ``None``."""
    sp = _sympy()
    if isinstance(expr, sp.Mul) and len(expr.args) == 2:
        if expr.args[1] == sp.UnevaluatedExpr(sp.Rational(1, 100)):
            return expr.args[0]
    return None


def _map_percent(expr: Any, as_fraction: bool) -> Any:
    sp = _sympy()
    value = _percent_value(expr)
    if value is not None:
        return value / 100 if as_fraction else value
    if isinstance(expr, (sp.FiniteSet, sp.Tuple)) and expr.args:
        return type(expr)(*(_map_percent(arg, as_fraction) for arg in expr.args))
    return expr


def _has_percent(expr: Any) -> bool:
    sp = _sympy()
    if _percent_value(expr) is not None:
        return True
    return isinstance(expr, (sp.FiniteSet, sp.Tuple)) and any(_has_percent(arg) for arg in expr.args)


def _i_symbols(expr: Any) -> dict:
    try:
        return {s: _sympy().I for s in expr.free_symbols if getattr(s, "name", "") == "i"}
    except Exception:  # sympy raises many types on odd trees
        return {}


def _imaginary(expr: Any) -> Any:
    sp = _sympy()
    try:
        if isinstance(expr, sp.Eq):
            # NOTE: per side, unevaluated: Eq(exp(I*pi), -1) would become True.
            return sp.Eq(_imaginary(expr.lhs), _imaginary(expr.rhs), evaluate=False)
        return expr.xreplace(_i_symbols(expr))
    except Exception:
        return expr


def _oriented(expr: Any) -> Any:
    """``Eq(x, 2)`` for ``Eq(2, x)``: a constant left side moves right."""
    sp = _sympy()
    try:
        if isinstance(expr, sp.Eq) and not expr.lhs.free_symbols and expr.rhs.free_symbols:
            return sp.Eq(expr.rhs, expr.lhs, evaluate=False)
    except Exception:  # sides without free_symbols (sets, matrices) stay as written
        pass
    return expr


def _vector_as_tuple(expr: Any) -> Any:
    sp = _sympy()
    if isinstance(expr, sp.MatrixBase) and 1 in expr.shape and len(expr) > 1:
        return sp.Tuple(*expr)
    return expr


def _undefined(expr: Any) -> bool:
    sp = _sympy()
    try:
        return isinstance(expr, sp.Basic) and expr.has(sp.zoo, sp.nan)
    except Exception:
        return False


def _as_number(expr: Any) -> Any | None:
    sp = _sympy()
    return expr if isinstance(expr, sp.Number) else None


def _numbers_equal(gold: Any, pred: Any, settings: CompareSettings) -> bool:
    """A decimal against a number: equal at ``float_rounding`` decimals and within ``float_rel_tol``."""
    a, b = float(gold), float(pred)
    if round(a, settings.float_rounding) != round(b, settings.float_rounding):
        return False
    return abs(a - b) <= settings.float_rel_tol * max(abs(a), abs(b)) or a == b


def _library_verify(gold: Any, pred: Any, settings: CompareSettings) -> bool:
    from math_verify import verify

    return verify(
        gold,
        pred,
        float_rounding=settings.float_rounding,
        numeric_precision=settings.numeric_precision,
        allow_set_relation_comp=settings.set_relation,
        timeout_seconds=None,
    )


def _equal(gold: Any, pred: Any, settings: CompareSettings) -> bool:
    sp = _sympy()
    if isinstance(gold, str) or isinstance(pred, str):
        return isinstance(gold, str) and isinstance(pred, str) and gold.strip() == pred.strip() != ""
    if _undefined(gold) or _undefined(pred):
        return False
    if _i_symbols(gold) or _i_symbols(pred):
        gold, pred = _imaginary(gold), _imaginary(pred)
    gold, pred = _vector_as_tuple(gold), _vector_as_tuple(pred)
    gold, pred = _oriented(gold), _oriented(pred)
    a, b = _as_number(gold), _as_number(pred)
    if a is not None and b is not None and (isinstance(a, sp.Float) or isinstance(b, sp.Float)):
        return _numbers_equal(a, b, settings)
    return _library_verify(gold, pred, settings)


def _variants(gold: Any, pred: Any, mode: str) -> list[tuple[Any, Any]]:
    if mode == "library" or not (_has_percent(gold) or _has_percent(pred)):
        return [(gold, pred)]
    fraction = (_map_percent(gold, True), _map_percent(pred, True))
    number = (_map_percent(gold, False), _map_percent(pred, False))
    return {"fraction": [fraction], "number": [number], "either": [fraction, number]}[mode]


def verify_parsed(gold: tuple, pred: tuple, settings: CompareSettings = CompareSettings()) -> tuple[bool, str]:
    """Compare two ``parse_answer`` results, gold first.

    Args:
        gold: the parsed gold (``(object, string)`` or ``()``).
        pred: the parsed prediction.
        settings: comparison settings.

    Returns:
        ``(correct, reason)``: ``match: math-verify``, ``mismatch``,
        ``mismatch (prediction not parsable)`` or ``mismatch (gold not parsable)``.
    """
    if not gold:
        return False, "mismatch (gold not parsable)"
    if not pred:
        return False, "mismatch (prediction not parsable)"
    for g, p in _variants(gold[0], pred[0], settings.percent):
        if _equal(g, p, settings):
            return True, "match: math-verify"
    return False, "mismatch"


def _constant(expr: Any) -> Any | None:
    """``expr`` simplified, when that leaves no free symbol; else ``None``."""
    try:
        simple = _sympy().simplify(expr)
    except Exception:  # sympy raises many types on odd trees
        return None
    return None if simple.free_symbols else simple


def integer_value(parsed: tuple, settings: CompareSettings = CompareSettings()) -> int | None:
    """The integer a parsed expression equals exactly (``\\sqrt{36}`` -> 6), if any.

    The nearest integer of a 30-digit evaluation is a candidate only; it
    counts when math-verify's ``verify`` confirms it equals the expression,
    so ``\\log_2 8`` is 3 and ``10.98`` or ``\\frac{7}{2}`` are no integer. An
    expression with symbols counts when sympy's ``simplify`` leaves an
    integer that ``verify`` confirms (``y^3 - y^3`` is 0; ``n + 1`` is none).

    Args:
        parsed: a ``parse_answer`` result.
        settings: comparison settings (for ``verify``).

    Returns:
        The integer, or ``None`` for a non-integer, a symbolic expression
        that does not simplify to an integer, a set or relation, or an
        undefined value.
    """
    sp = _sympy()
    if not parsed or not isinstance(parsed[0], sp.Expr) or _undefined(parsed[0]):
        return None
    expr = parsed[0]
    if expr.free_symbols:
        # "y^3 - y^3", "\\frac{2n}{n}": the parser keeps these unevaluated, and
        # they may still be constant; verify confirms the value against the parse.
        constant = _constant(expr)
        if constant is None or not constant.is_Integer or not _library_verify(constant, expr, settings):
            return None
        return int(constant)
    if expr.is_Integer:
        return int(expr)
    if isinstance(expr, sp.Float):
        return int(expr) if expr == int(expr) else None
    approx = expr.evalf(30)
    if not approx.is_real:
        return None
    nearest = sp.Integer(int(sp.floor(approx + sp.Rational(1, 2))))
    if abs(approx - nearest) > sp.Float("1e-20") * max(1, abs(nearest)):
        return None
    return int(nearest) if _library_verify(nearest, expr, settings) else None
