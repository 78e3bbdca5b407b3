"""The building pieces, used on their own: braces, extraction, normalization,
parsing, verification, settings and results."""

import dataclasses

import pytest

from evaluators import (
    CompareSettings,
    ExtractSettings,
    GradeResult,
    GradeSettings,
    extract_answer,
    extract_choice,
    is_text_answer,
    normalize_latex,
    parse_aime_int,
    parse_math,
    structural_key,
    text_key,
    verify,
)
from evaluators.braces import command_argument, group_end, nesting_depth, outer_pair, split_top_level
from evaluators.compare import verify_detailed
from evaluators.nodes import BaseNode, EquationNode, MatrixNode, SeqNode, SetNode, TextNode, UnionNode

# --- braces -----------------------------------------------------------------


def test_group_end_skips_escaped_braces():
    text = "{a \\} b {c}}"
    assert group_end(text, 0, 100) == len(text) - 1
    assert group_end("{{{", 0, 100) is None
    assert group_end("{" + "x" * 50 + "}", 0, 10) is None


def test_command_argument_forms():
    assert command_argument("\\boxed{\\frac{a}{b}}", 6, 100) == "\\frac{a}{b}"
    assert command_argument("\\boxed 5$", 6, 100) == "5"
    assert command_argument("\\boxedx", 6, 100) is None
    assert command_argument("\\boxed{1", 6, 100) is None


def test_split_top_level_and_outer_pair():
    assert split_top_level("(1,2), \\{3,4\\}, 5", ",") == ["(1,2)", " \\{3,4\\}", " 5"]
    assert split_top_level("(0,9) \\cup (9,36)", "\\cup") == ["(0,9) ", " (9,36)"]
    assert split_top_level("a \\cupdot b", "\\cup") == ["a \\cupdot b"]
    assert split_top_level("(1,2", ",") == ["(1,2"]
    assert outer_pair("(3,4]") == ("(", "3,4", "]")
    assert outer_pair("(a+5)(b+2)") is None
    assert outer_pair("\\{1,2\\}") == ("\\{", "1,2", "\\}")
    assert nesting_depth("{[(x)]}") == 3


# --- extraction -------------------------------------------------------------


@pytest.mark.parametrize(
    "response,expected",
    [
        ("\\boxed{1} then \\boxed{\\frac{2}{3}}", "\\frac{2}{3}"),
        ("\\fbox{7}", "7"),
        ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
        ("text \\boxed{2} and cut off \\boxed{3", "2"),
        ("<think>\\boxed{1}</think>\\boxed{2}", "2"),
        ("<think>\\boxed{1}</think>no box here", "1"),
        ("<think>partial \\boxed{9}", "9"),
        ("The final answer is $x^2$. Done", "x^2"),
        ("the answer is \\(3\\)", "3"),
        ("Answer: 12 apples. Then more text", "12 apples"),
        ("**Final Answer:** 7", "7"),
        ("I computed 42 somewhere", None),
        ("", None),
    ],
)
def test_extract_math(response, expected):
    assert extract_answer(response, "math") == expected


def test_extract_respects_caps():
    settings = ExtractSettings(max_answer_chars=10)
    assert extract_answer("\\boxed{" + "1" * 50 + "}", "math", settings) is None
    assert extract_answer("x" * 200_000 + "\\boxed{5}", "math") == "5"


@pytest.mark.parametrize(
    "response,expected",
    [
        ("\\boxed{B}", "B"),
        ("Answer: $D$", "D"),
        ("The correct option is A.", "A"),
        ("So the answer is **(C)**", "C"),
        ("(A) x\n(B) y", None),
        ("nothing", None),
    ],
)
def test_extract_choice(response, expected):
    assert extract_choice(response) == expected
    assert extract_answer(response, "gpqa") == expected


def test_extract_unknown_kind():
    with pytest.raises(ValueError):
        extract_answer("\\boxed{1}", "chemistry")


# --- normalization ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "( 3, \\frac{\\pi}{2} )"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\frac12", "\\frac{1}{2}"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
        ("10,\\!080", "10080"),
        ("10{,}080", "10080"),
        ("1,000", "1000"),
        ("1, 000", "1, 000"),
        ("90^{\\circ}", "90"),
        ("\\$18.90", "18.90"),
        ("50\\%", "50"),
        ("864 \\mbox{ inches}^2", "864"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("\\sqrt[3]2", "\\sqrt[3]{2}"),
        (".35625", "0.35625"),
        ("$x$", "x"),
        ("\\text{(C)}", "(C)"),
        ("2 \\text{ or } 3", "2 , 3"),
    ],
)
def test_normalize_latex(raw, expected):
    assert normalize_latex(raw) == expected


def test_structural_and_text_keys():
    assert structural_key("1 - 12i") == structural_key("1-12 i")
    assert is_text_answer("\\text{east}") and is_text_answer("Monday")
    assert not is_text_answer("p - q") and not is_text_answer("\\text{5 cm}") and not is_text_answer("ab")
    assert text_key("\\text{(C)}") == text_key("c") == "c"
    assert text_key("The Ellipse") == "ellipse"


def test_parse_aime_int():
    assert parse_aime_int("025") == 25
    assert parse_aime_int("\\text{7}") == 7
    assert parse_aime_int("1000") is None
    assert parse_aime_int("2.5") is None
    assert parse_aime_int("-3") is None


# --- parsing and verification -----------------------------------------------


@pytest.mark.parametrize(
    "latex,node_type",
    [
        ("\\text{east}", TextNode),
        ("204_5", BaseNode),
        ("1, -2", SetNode),
        ("\\{1,2\\}", SetNode),
        ("1 \\pm \\sqrt{3}", SetNode),
        ("(8,-2)", SeqNode),
        ("(3,4]", SeqNode),
        ("(0,1) \\cup (2,3)", UnionNode),
        ("y = 2x + 3", EquationNode),
        ("x \\in [-2,7]", EquationNode),
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", MatrixNode),
    ],
)
def test_parse_math_structure(latex, node_type):
    parsed = parse_math(latex)
    assert isinstance(parsed.node, node_type)
    assert parsed.parsed


def test_parse_math_leaves_are_sympy():
    import sympy

    assert parse_math("3+4i").node.expr == 3 + 4 * sympy.I
    assert parse_math("\\sqrt[3]{2}").node.expr == sympy.root(2, 3)
    assert parse_math("\\frac{1}{2}").node.expr == sympy.Rational(1, 2)


def test_parse_math_never_raises_on_garbage():
    parsed = parse_math("\\frac{{{")
    assert parsed.parsed is False
    deep = parse_math("{" * 500 + "1" + "}" * 500)
    assert deep.parsed is False


def test_verify_gold_first_and_detailed_reasons():
    assert verify(parse_math("\\frac{1}{2}"), parse_math("0.5"))
    assert not verify(parse_math("\\frac{1}{2}"), parse_math("0.6"))
    assert verify_detailed(parse_math("2k+2"), parse_math("2(k+1)"))[1].startswith("match:")
    assert verify_detailed(parse_math("1"), parse_math("2")) == (False, "mismatch")


def test_verify_tolerance_is_configurable():
    loose = CompareSettings(float_rel_tol=1e-2)
    assert not verify(parse_math("\\pi"), parse_math("3.14"))
    assert verify(parse_math("\\pi"), parse_math("3.14"), loose)


def test_imaginary_unit_can_be_a_plain_symbol():
    settings = CompareSettings(imaginary_i=False)
    assert verify(parse_math("i^2"), parse_math("-1"))
    assert not verify(parse_math("i^2", settings), parse_math("-1", settings), settings)


# --- settings and results ---------------------------------------------------


def test_settings_and_results_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GradeSettings().timeout_s = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        GradeResult(True, "1", "match: string").correct = False  # type: ignore[misc]
    assert GradeResult(True, "1", "match: string").to_dict() == {
        "correct": True,
        "extracted": "1",
        "reason": "match: string",
    }


# --- huge-number guard ------------------------------------------------------


@pytest.mark.parametrize(
    "latex,refused",
    [
        ("9^{9^{9^{9}}}", True),
        ("(10^{10^{10}})!", True),
        ("2^{10000000}", True),
        ("123456!", True),
        ("10^{10}!", True),
        ("2^{2^n}", False),
        ("e^{x^2}", False),
        ("2^{100}", False),
        ("6.72 \\times 10^{-5}", False),
        ("5!", False),
    ],
)
def test_huge_number_guard(latex, refused):
    from evaluators.guard import too_large

    assert too_large(latex) is refused
