"""Table-driven grading of AIME integers and GPQA letters: (gold, response, expected)."""

import pytest

from evaluators import grade, grade_detailed

AIME_LEADING_ZEROS = [
    ("025", "\\boxed{25}", True),
    ("025", "\\boxed{025}", True),
    ("25", "\\boxed{025}", True),
    ("80", "Answer: 080", True),
    ("025", "\\boxed{250}", False),
    ("073", "\\boxed{37}", False),
]

AIME_NO_SUBSTRINGS = [
    ("711", "\\boxed{11}", False),
    ("11", "\\boxed{711}", False),
    ("11", "\\boxed{1100}", False),
    ("468", "\\boxed{486}", False),
    ("468", "\\boxed{468}", True),
    ("204", "The answer is 204.", True),
]

AIME_RANGE_AND_FORM = [
    ("999", "\\boxed{999}", True),
    ("0", "\\boxed{0}", True),
    ("100", "\\boxed{1000}", False),
    ("100", "\\boxed{-100}", False),
    ("70", "\\boxed{70.5}", False),
    # An all-zero decimal part states the integer.
    ("70", "\\boxed{70.0}", True),
    # An expression that equals the gold integer counts (issue 22); a non-integer does not.
    ("5", "\\boxed{\\frac{10}{2}}", True),
    ("5", "\\boxed{\\frac{11}{2}}", False),
    ("80", "\\boxed{\\text{80}}", True),
    ("33", "$\\boxed{33}$", True),
    # Integers outside 0-999 compare as integers too (other integer suites).
    ("1000", "\\boxed{1000}", True),
    ("1000", "\\boxed{1,000}", True),
    ("-3", "\\boxed{-3}", True),
]

AIME_EXTRACTION = [
    ("104", "<think>\\boxed{103}</think>\\boxed{104}", True),
    ("104", "<think>\\boxed{104}</think>\\boxed{103}", False),
    ("80", "We have 80 apples, so the total is 80", True),
    ("80", "We have 80 apples, so the total is 81", False),
    ("80", "", False),
    ("321", "Thus the final answer is $\\boxed{321}$.", True),
    ("321", "First \\boxed{321}, but then \\boxed{123}", False),
]

GPQA_FORMS = [
    ("C", "\\boxed{C}", True),
    ("C", "Comparing the options, I pick\n(C)", True),
    ("C", "Answer: $C$", True),
    ("C", "The correct option is C", True),
    ("C", "**C**", True),
    ("C", "The answer is (C)", True),
    ("C", "\\boxed{\\text{C}}", True),
    ("C", "\\boxed{(C)}", True),
    ("C", "The correct answer is **C**.", True),
    ("B", "Final answer: **B**", True),
    ("B", "The final answer is $\\boxed{B}$", True),
    ("B", "Answer: (B) 42 kelvin", True),
    ("(C)", "\\boxed{C}", True),
    ("c", "\\boxed{C}", True),
]

GPQA_WRONG_OR_MISSING = [
    ("C", "\\boxed{D}", False),
    ("C", "Answer: B", False),
    ("A", "The answer is a bit unclear without more data.", False),
    ("C", "Options: (A) 1 (B) 2 (C) 3 (D) 4. I think the answer is (B).", False),
    ("B", "Options: (A) 1 (B) 2 (C) 3 (D) 4. I think the answer is (B).", True),
    # A listing of the options is not a choice.
    ("D", "(A) 1\n(B) 2\n(C) 3\n(D) 4\n", False),
    ("C", "<think>the answer is A</think>\\boxed{C}", True),
    ("A", "<think>the answer is A</think>\\boxed{C}", False),
    ("B", "", False),
    ("B", "\\boxed{E}", False),
    ("A", "The correct option is D", False),
]

TABLE = [(g, r, e, "aime") for g, r, e in AIME_LEADING_ZEROS + AIME_NO_SUBSTRINGS + AIME_RANGE_AND_FORM + AIME_EXTRACTION]
TABLE += [(g, r, e, "gpqa") for g, r, e in GPQA_FORMS + GPQA_WRONG_OR_MISSING]


@pytest.mark.parametrize("gold,response,expected,kind", TABLE)
def test_aime_gpqa_table(gold, response, expected, kind):
    result = grade_detailed(response, gold, kind)
    assert result.correct is expected, result
    assert grade(response, gold, kind) is expected


def test_both_verdicts_per_kind():
    for kind in ("aime", "gpqa"):
        assert {row[2] for row in TABLE if row[3] == kind} == {True, False}


def test_aime_int_gold_and_reasons():
    assert grade_detailed("\\boxed{70}", 70, "aime").reason == "match: integer"
    assert grade_detailed("\\boxed{71}", "70", "aime").reason == "mismatch"
    assert "invalid gold" in grade_detailed("\\boxed{5}", "x", "aime").reason
    assert "not an integer" in grade_detailed("\\boxed{\\frac{11}{2}}", "5", "aime").reason
    assert grade_detailed("\\boxed{\\frac{10}{2}}", "5", "aime").reason == "match: integer (evaluated)"


def test_gpqa_reasons():
    assert grade_detailed("\\boxed{C}", "C", "gpqa").reason == "match: choice"
    assert grade_detailed("nothing", "C", "gpqa").reason == "no answer found"
    assert "invalid gold" in grade_detailed("\\boxed{C}", "  ", "gpqa").reason
    assert grade_detailed("\\boxed{E}", "E", "gpqa").reason == "match: choice"


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        grade("\\boxed{1}", "1", "physics")
