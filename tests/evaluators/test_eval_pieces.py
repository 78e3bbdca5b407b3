"""The building pieces, used on their own: braces, extract, parse, compare,
the string shortcuts, the integer and choice rules, settings and results."""

import dataclasses

import pytest

from evaluators import (
    CompareSettings,
    ExtractSettings,
    GradeResult,
    GradeSettings,
    compare_integer,
    extract_answer,
    extract_choice,
    gold_answer,
    option_label,
    parse_answer,
    parse_integer,
    parseable,
    resolve_kind,
    same_answer,
    text_verdict,
    time_verdict,
    verify_parsed,
)
from evaluators.boxes import last_boxes
from evaluators.braces import command_argument, group_end, nesting_depth
from evaluators.extract import bare_final, strip_delimiters
from evaluators.options import parse_gold
from evaluators.parse import prepare

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
    assert nesting_depth("{[(x)]}") == 3


# --- extract ----------------------------------------------------------------


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
        ("Answer $9$", "9"),
        # Joined boxes: only separators between them.
        ("\\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}", "-2, 1"),
        ("\\boxed{4}\n\n\\boxed{4}", "4"),
        ("First \\boxed{3}, but then I fix it: \\boxed{5}", "5"),
        # A "final answer is" after the last box restates the answer.
        ("so \\boxed{255} in interest. Final Answer: The final answer is $10,455$.", "10,455"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        # Bare final expressions.
        ("5", "5"),
        ("$\\dfrac{1}{3} $", "\\dfrac{1}{3}"),
        ("(p,q)=(3,2)", "(p,q)=(3,2)"),
        ("Evelyn", "Evelyn"),
        ("15 cm^2", "15 cm^2"),
        ("I computed 42 somewhere", "42"),
        ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5"),
        ("Soucis : 2,74 $ a..", "2,74"),
        ("\\text{The answer is } 5", "5"),
        ("so the answer is **5**.", "5"),
        ("Therefore, the answer is $\\frac{7}{2}$, which is 3.5.", "\\frac{7}{2}"),
        ("### Final Answer\n\nThe value is $17$.", "17"),
        ("Respuesta: 17", "17"),
        ("#### 17", "17"),
        ("To answer: first compute 3+4 = 7." + " Then we simplify." * 30 + " So we get 12.", "12"),
        ("\\boxed{5}. Final answer is as above.", "5"),
        ("", None),
        ("No idea, sorry.", None),
    ],
)
def test_extract_math(response, expected):
    assert extract_answer(response, "math") == expected


def test_unreadable_box_blocks_the_bare_fallback():
    assert extract_answer("so \\boxed{" + "1+" * 5000 + "1}", "math") is None
    assert extract_answer("Thus $\\boxed{\\frac{1}{2}", "math") is None


def test_extract_respects_caps():
    settings = ExtractSettings(max_region_chars=50, phrase_window_chars=30, max_answer_chars=10)
    assert extract_answer("\\boxed{1}" + " " * 100, "math", settings) is None
    assert extract_answer("\\boxed{" + "1" * 20 + "}", "math", settings) is None
    assert extract_answer("x" * 100 + " answer: 4", "math", settings) == "4"


def test_gold_answer_forms():
    assert gold_answer("Natalia sold 24 clips.\n#### 72") == "72"
    assert gold_answer("#### 1,234") == "1,234"
    assert gold_answer("the area is $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert gold_answer("\\boxed{1} papers and \\boxed{2} bins") == "1, 2"
    assert gold_answer("$[0,1)$") == "[0,1)"
    assert gold_answer("x=5") == "x=5"


def test_small_helpers():
    assert strip_delimiters("$$x$$") == "x"
    assert strip_delimiters("$a$ and $b$") == "$a$ and $b$"
    assert last_boxes("no box") is None
    assert bare_final("   ") is None


# --- parse ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("90°", "90^\\circ"),
        ("√2", "\\sqrt{2}"),
        ("pi/2", "\\pi /2"),
        ("15 cm^2", "15"),
        ("5.4 cents", "5.4"),
        ("1000,99", "1000.99"),
        ("0,111", "0.111"),
        ("58,500", "58,500"),
        ("-2,1", "-2,1"),
        ("5 or 6", "5 or 6"),
    ],
)
def test_prepare(text, expected):
    assert prepare(text) == expected


def test_parse_answer_returns_sympy():
    import sympy

    parsed = parse_answer("\\frac{1}{2}")
    assert parsed[0] == sympy.Rational(1, 2)
    assert parse_answer("\\frac{1}{2}") is parsed  # cached
    assert parse_answer("") == ()


def test_parseable_gate():
    assert parseable("\\frac{1}{2}")
    assert not parseable("9^{9^{9^{9}}}")
    assert parseable("9^{9^{9^{9}}}", CompareSettings(refuse_huge_numbers=False))
    assert not parseable("1" * 700)
    assert not parseable("(" * 70 + ")" * 70)


# --- compare ----------------------------------------------------------------


def _compare(gold: str, pred: str, settings: CompareSettings = CompareSettings()) -> bool:
    return verify_parsed(parse_answer(gold), parse_answer(pred), settings)[0]


@pytest.mark.parametrize(
    "percent,gold,pred,expected",
    [
        ("library", "10\\%", "10", True),
        ("library", "10\\%", "0.1", True),
        ("library", "33.5\\%", "0.335", True),
        ("library", "10\\%", "0.2", False),
        ("fraction", "10\\%", "10", False),
        ("fraction", "10\\%", "0.1", True),
        ("fraction", "33.5\\%", "0.335", True),
        ("number", "10\\%", "10", True),
        ("number", "10\\%", "0.1", False),
        ("number", "33.5\\%", "33.5", True),
        ("either", "33.5\\%", "33.5", True),
        ("either", "33.5\\%", "0.335", True),
        ("either", "33.5\\%", "3.35", False),
        ("fraction", "\\{10\\%, 20\\%\\}", "\\{0.1, 0.2\\}", True),
    ],
)
def test_percent_convention(percent, gold, pred, expected):
    assert _compare(gold, pred, CompareSettings(percent=percent)) is expected


def test_decimals_need_relative_agreement():
    assert _compare(".0000672", "0.0000673") is False
    assert _compare(".0000672", "0.0000672") is True
    assert _compare("\\frac{1}{3}", "0.333333") is True
    assert _compare("\\frac{1}{3}", "0.333") is False
    assert _compare("\\pi", "3.14159") is False
    assert _compare("5", "5.0") is True


def test_conventions_around_the_library():
    assert _compare("1+2i", "(1+i)^2+1") is True
    assert _compare("1+2i", "(1+i)^2") is False
    assert _compare("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)") is True
    assert _compare("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(2, 1)") is False
    assert _compare("\\frac{1}{0}", "\\frac{1}{0}") is False
    assert _compare("(5,\\infty)", "x > 5") is True
    assert _compare("(5,\\infty)", "x > 5", CompareSettings(set_relation=False)) is False


def test_compare_reasons():
    assert verify_parsed((), parse_answer("1")) == (False, "mismatch (gold not parsable)")
    assert verify_parsed(parse_answer("1"), ()) == (False, "mismatch (prediction not parsable)")
    assert verify_parsed(parse_answer("1"), parse_answer("1.0")) == (True, "match: math-verify")


# --- string shortcuts -------------------------------------------------------


def test_same_answer():
    assert same_answer("\\left( 1, 2 \\right)", "(1,2)")
    assert same_answer("\\dfrac{1}{2}", "\\frac{1}{2}")
    assert not same_answer("", "")
    assert not same_answer("12", "21")


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("12:00", "12:00", True),
        ("12:00", "1:00", False),
        ("3:45 p.m.", "3:45 PM", True),
        ("3:45 p.m.", "3:45 am", False),
        ("3:45", "3:45 pm", True),
        ("\\text{9:05}", "9:05", True),
        ("9:05", "905", False),
        ("3:2", "3:2", None),
        ("5", "5", None),
    ],
)
def test_time_verdict(gold, pred, expected):
    assert time_verdict(gold, pred) is expected


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("\\text{Evelyn}", "Evelyn", True),
        ("\\text{Evelyn}", "Evlyne", False),
        ("\\text{ellipse}", "\\text{an ellipse}", True),
        ("Monday", "\\text{monday}", True),
        ("\\text{(C)}", "C", True),
        ("x", "x", None),
        ("ab", "ba", None),
        ("\\text{5 cm}", "5", None),
    ],
)
def test_text_verdict(gold, pred, expected):
    assert text_verdict(gold, pred) is expected


# --- integer rule -----------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("025", 25),
        ("10\\text{ cm}", 10),
        ("\\text{80}", 80),
        ("n = 34", 34),
        ("34 apples", 34),
        ("1,000", 1000),
        ("70.0", 70),
        ("-3", -3),
        ("70.5", None),
        ("\\frac{10}{2}", None),
        ("10^3", None),
        ("25 or 26", None),
        ("x = 25 \\text{ or } 26", None),
        ("\\$1,\\!000", 1000),
        ("", None),
    ],
)
def test_parse_integer(text, expected):
    assert parse_integer(text) == expected


def test_compare_integer_reasons():
    assert compare_integer("25", "025") == (True, "match: integer")
    assert compare_integer("25", "26") == (False, "mismatch")
    assert compare_integer("x", "1")[1].startswith("invalid gold")
    assert compare_integer("1", "1/2")[1].startswith("not an integer")


# --- choice -----------------------------------------------------------------


def test_choice_pieces():
    assert option_label("\\text{(B) } 432") == ("B", "432")
    assert option_label("B. 432") == ("B", "432")
    assert option_label("432") is None
    assert parse_gold("(c)").letter == "C"
    assert parse_gold("Paris").text == "Paris"
    assert extract_choice("The answer is not A, it is B") == "B"
    assert extract_choice("I think the answer is I.", letters="ABCD") is None
    assert extract_choice("I think the answer is I.", letters="ABCDEFGHIJ") == "I"


# --- kinds, settings and results --------------------------------------------


def test_resolve_kind():
    assert resolve_kind("Integer") == "aime"
    assert resolve_kind("multiple_choice") == "gpqa"
    assert resolve_kind("math") == "math"
    with pytest.raises(ValueError, match="unknown kind"):
        resolve_kind("chess")


def test_settings_are_frozen_and_validated():
    settings = GradeSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout_s = 1.0  # type: ignore[misc]
    assert settings.compare.percent == "library"
    with pytest.raises(ValueError, match="percent"):
        CompareSettings(percent="half")
    with pytest.raises(ValueError, match="timeout_s"):
        GradeSettings(timeout_s=0)
    with pytest.raises(ValueError, match="choices"):
        ExtractSettings(choices="abc")


def test_result_to_dict():
    result = GradeResult(True, "5", "match: string")
    assert result.to_dict() == {"correct": True, "extracted": "5", "reason": "match: string"}
