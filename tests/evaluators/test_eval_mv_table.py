"""Rows from the issue tracker and from Math-Verify's own test suite: (gold, response, expected).

The Math-Verify rows are adapted from huggingface/Math-Verify ``tests/``
(test_all.py, test_boxed.py, test_numina_cases.py): same (gold, prediction,
verdict) idea, rewritten for our ``grade`` entry point. Every bug found
becomes a row; every group has both verdicts.
"""

import pytest

from evaluators import grade_detailed

# Predictions that are just the answer, or end in it, used to get no verdict.
BARE_ANSWERS = [
    ("5", "5", True),
    ("5", "6", False),
    ("\\frac{1}{2}", "$\\frac{1}{2}$", True),
    ("\\frac{1}{3}", "$\\dfrac{1}{3} $", True),
    ("\\frac{1}{3}", "$\\dfrac{1}{4} $", False),
    ("9", "Answer $9$", True),
    ("9", "Answer $8$", False),
    ("x \\geq 5", "Therefore $x \\geq 5$ is the solution.", True),
    ("x \\geq 5", "Therefore $x > 5$ is the solution.", False),
    ("42", "La respuesta es 42", True),
    ("42", "Die Antwort lautet 42.", True),
    ("42", "答案是 42", True),
    ("42", "La respuesta es 24", False),
    ("\\text{Evelyn}", "Evelyn", True),
    ("0", "x^2 - x^2", True),
]

# Wrong verdicts listed in the issue.
ISSUE_VERDICTS = [
    ("1/0", "2/0", False),
    ("\\frac{1}{0}", "\\frac{2}{0}", False),
    ("12:00", "1:00", False),
    ("12:00", "12:00", True),
    ("3:45 p.m.", "3:45 PM", True),
    ("\\pi", "3.14159", False),
    ("\\pi", "3.14159265359", True),
    ("(3,2)", "(p,q)=(3,2)", True),
    ("(3,2)", "(p,q)=(2,3)", False),
    ("x<2", "2>x", True),
    ("x<2", "2<x", False),
    ("2", "\\sqrt{4} = 2", True),
    ("3", "\\sqrt{4} = 2", False),
    ("1234", "1,234", True),
    ("1234", "1,235", False),
    ("0.335", "33.5%", True),
    ("33.5\\%", "0.335", True),
    ("10\\%", "10", True),
    ("10\\%", "0.2", False),
]

# Adapted from Math-Verify tests/test_all.py and test_boxed.py.
MATH_VERIFY_ROWS = [
    ("-5", "-5", True),
    ("7425000", "7,425,000", True),
    ("1000", "1000.0", True),
    ("0.4", ".4", True),
    ("1000.99", "$1,000.99", True),
    ("2", "AZYUK2A", False),
    ("10/9", "\\frac{10}{9}", True),
    ("-10/9", "-\\frac{10}{9}", True),
    ("[0,1)", "$[0,1)$", True),
    ("[0,9)", "$[0,1)$", False),
    ("(0,9)", "$[0,9)$", False),
    ("9", "Answer \\[ 9 \\]", True),
    ("9", "Answer \\( 9 \\)", True),
    ("10", "Answer \\( (9+1) \\)", True),
    ("\\sqrt{3}", "$\\sqrt3 $", True),
    ("1/3", "$\\cfrac{1}{3} $", True),
    ("1/3", "$ 1/3 $", True),
    # Plain math and numbers compete: the one that ends last wins.
    ("5", "$\\frac{1}{3}$ and then 5", True),
    ("\\frac{1}{3}", "$\\frac{1}{3}$ and then 5", False),
    ("x=1", "so $x = 1$", True),
    ("x = 2", "$x = 1$", False),
    ("1", "$\\boxed{1}$", True),
    ("1", "$\\boxed{2}$", False),
    ("\\{1,2\\}", "\\boxed{\\{2, 1\\}}", True),
    ("\\{1,2\\}", "\\boxed{\\{2, 3\\}}", False),
    ("(1,2)", "\\boxed{(1, 2)}", True),
    ("(1,2)", "\\boxed{(2, 1)}", False),
    ("x^2+2x+1", "\\boxed{(x+1)^2}", True),
    ("x^2+2x+1", "\\boxed{(x-1)^2}", False),
    ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\frac{1}{2}\\sqrt{3}}", True),
    ("2\\sqrt{2}", "\\boxed{\\sqrt{8}}", True),
    ("\\infty", "\\boxed{\\infty}", True),
    ("-\\infty", "\\boxed{\\infty}", False),
    ("50", "\\boxed{50\\%}", True),
    ("\\$18.90", "\\boxed{18.9}", True),
    ("1.5 \\times 10^{3}", "\\boxed{1500}", True),
    ("1.5 \\times 10^{3}", "\\boxed{150}", False),
    ("5", "The final answer is $5$. I hope it is correct.", True),
    ("5", "The final answer is $6$. I hope it is correct.", False),
]

UNITS_AND_SYMBOLS = [
    ("90^\\circ", "\\boxed{90°}", True),
    ("90^\\circ", "\\boxed{80°}", False),
    ("15", "\\boxed{15 cm^2}", True),
    ("15", "\\boxed{16 cm^2}", False),
    ("\\pi", "\\boxed{π}", True),
    ("\\sqrt{2}", "\\boxed{√2}", True),
    ("\\sqrt{2}", "\\boxed{√3}", False),
    ("1+2i", "\\boxed{(1+i)^2+1}", True),
    (".0000672", "\\boxed{0.0000673}", False),
    (".0000672", "\\boxed{6.72 \\times 10^{-5}}", True),
]

# Golds written as worked solutions.
WORKED_GOLDS = [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "so 72 clips", True),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "so 24 clips", False),
    ("She has 1,000 + 234 = 1,234.\n#### 1,234", "\\boxed{1234}", True),
    ("so the area is $\\boxed{\\frac{1}{2}}$.", "\\boxed{0.5}", True),
    ("so the area is $\\boxed{\\frac{1}{2}}$.", "\\boxed{0.25}", False),
]

INTEGER_ROWS = [
    ("10", "\\boxed{10\\text{ cm}}", True),
    ("10", "\\boxed{11\\text{ cm}}", False),
    ("34", "The largest $n$ is 34.", True),
    ("34", "The largest $n$ is 43.", False),
    ("34", "\\boxed{n = 34}", True),
    ("18", "Janet makes \\$18 every day at the market.\n#### 18", True),
    ("5", "\\boxed{5 \\text{ apples}}", True),
]

CHOICE_ROWS = [
    ("B", "\\boxed{\\text{(B) } 432}", True),
    ("C", "\\boxed{\\text{(B) } 432}", False),
    ("C", 'Answer: "C"', True),
    ("B", 'Answer: "C"', False),
    ("D", "The answer is for sure D, it can't be A or B", True),
    ("A", "The answer is for sure D, it can't be A or B", False),
    ("B", "The answer is not A, it is B", True),
    ("E", "Answer: (E)", True),
    ("H", "Among all ten options, the answer is H.", True),
    # Golds given as the option's text, or as a labelled option.
    ("432", "\\boxed{\\text{(B) } 432}", True),
    ("432", "\\boxed{\\text{(B) } 423}", False),
    ("Paris", "The answer is (C) Paris.", True),
    ("Paris", "The answer is (C) Lyon.", False),
    ("(B) 432", "\\boxed{B}", True),
    ("(B) 432", "\\boxed{C}", False),
    ("B. 432", "\\boxed{432}", True),
]

MATH_TABLE = BARE_ANSWERS + ISSUE_VERDICTS + MATH_VERIFY_ROWS + UNITS_AND_SYMBOLS + WORKED_GOLDS
TABLE = [(g, r, e, "math") for g, r, e in MATH_TABLE]
TABLE += [(g, r, e, "integer") for g, r, e in INTEGER_ROWS]
TABLE += [(g, r, e, "choice") for g, r, e in CHOICE_ROWS]


@pytest.mark.parametrize("gold,response,expected,kind", TABLE)
def test_mv_table(gold, response, expected, kind):
    result = grade_detailed(response, gold, kind)
    assert result.correct is expected, result


def test_every_group_has_both_verdicts():
    groups = [BARE_ANSWERS, ISSUE_VERDICTS, MATH_VERIFY_ROWS, UNITS_AND_SYMBOLS, WORKED_GOLDS, CHOICE_ROWS]
    for group in groups:
        assert {row[2] for row in group} == {True, False}


# Multiple-choice forms, several from Math-Verify's tests/test_string_extraction.py.
CHOICE_FORMS = [
    ("A", "The answer is A.", True),
    ("B", "Final answer is B", True),
    ("A", "A. Because B is not valid", True),
    ("B", "A. Because B is not valid", False),
    ("B", "I choose B because the others fail.", True),
    ("C", "After checking each option, I'd go with (C).", True),
    ("C", "Option C is correct since the rate doubles.", True),
    ("D", "Option C is correct since the rate doubles.", False),
    ("B", "B) 42 kelvin, since the gas expands.", True),
    ("B", "**Answer: B**", True),
    ("B", "The correct answer is $\\boxed{B}$.", True),
    # No letter chosen: a bare "Because B is valid" is not read as B.
    ("B", "Because B is valid", False),
    ("A", "No valid answer here", False),
]


@pytest.mark.parametrize("gold,response,expected", CHOICE_FORMS)
def test_choice_forms(gold, response, expected):
    assert grade_detailed(response, gold, "gpqa").correct is expected


# Forms common in model outputs and answer keys (written by us): bare and bold
# numbers, GSM8K's "####", equal forms of one value, multilingual "Answer:"
# words, full-width letters, scientific notation: (gold, response, kind, expected).
OTHER_SUITES = [
 ("42", "**42**", "math", True), ("42", "The answer is **42**.", "math", True), ("42", "#### 42", "math", True),
 ("42", "42.", "integer", True), ("42", "Final answer: 42", "integer", True), ("42", "Answer: $\\boxed{42}$", "integer", True),
 ("42", "**Final Answer**\n\n\\[\n\\boxed{42}\n\\]", "integer", True),
 ("\\begin{pmatrix} -7 \\\\ 14 \\end{pmatrix}", "\\begin{pmatrix}-7\\\\14\\end{pmatrix}", "math", True),
 ("[0,1]", "[0,1]", "math", True), ("x+2n+1", "x+1", "math", False),
 ("\\frac{1}{2}", "1/2", "math", True), ("0.5", "\\frac12", "math", True), ("2", "2.0", "math", True),
 ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", "math", True), ("3\\sqrt{3}", "\\sqrt{27}", "math", True),
 ("(1,2)", "(1,2)", "math", True), ("\\{1,2\\}", "{1,2}", "math", True), ("1,2", "\\{1, 2\\}", "math", True),
 ("2x+1", "1+2x", "math", True), ("x^2+2x+1", "(x+1)^2", "math", True),
 ("\\frac{3}{4}", "0.75", "math", True), ("0.75", "3/4", "math", True), ("75\\%", "0.75", "math", True),
 ("\\$10", "10 dollars", "math", True), ("10", "\\$10.00", "math", True),
 ("5\\sqrt{2}", "5 \\sqrt 2", "math", True), ("\\infty", "\\infty", "math", True),
 ("-1", "−1", "math", True), ("\\text{B}", "B", "math", True), ("B", "\\text{(B)}", "math", True),
 ("2", "two", "math", False),
 ("C", "Respuesta: C", "gpqa", True), ("C", "Réponse : C", "gpqa", True), ("C", "答案：C", "gpqa", True),
 ("C", "Antwort: C", "gpqa", True), ("C", "Answer: Ｃ", "gpqa", True), ("C", "Ответ: C", "gpqa", True),
 ("C", "The answer is $\\boxed{\\mathrm{C}}$", "gpqa", True), ("C", "\\boxed{C) 42}", "gpqa", True),
 ("C", "Answer: C) 42", "gpqa", True), ("C", "(C)", "gpqa", True), ("C", "C", "gpqa", True), ("C", "c", "gpqa", True),
 ("A", "The answer is: A", "gpqa", True), ("A", "Correct option: A", "gpqa", True), ("A", "the correct choice is (A)", "gpqa", True),
 ("D", "Therefore, the answer is \\textbf{D}.", "gpqa", True), ("D", "Thus the answer is option D.", "gpqa", True),
 ("14", "There are 14 students. Therefore 14 is the answer.", "integer", True),
 ("14", "Die Antwort ist 14", "integer", True), ("14", "答案：14", "integer", True),
 ("\\frac{1}{4}", "La réponse est $\\frac{1}{4}$.", "math", True),
 ("5", "x = 5", "math", True), ("5", "$x=5$", "integer", True),
 ("1/2", "0.5", "math", True), ("\\dfrac{\\pi}{4}", "\\pi/4", "math", True), ("\\pi/4", "45^\\circ", "math", False),
 ("4", "\\boxed{4}.", "math", True), ("4", "so $\\boxed{4}$", "math", True),
 ("10", "10.000", "integer", True), ("12", "twelve", "integer", False),
 ("[-1, 2)", "[-1,2)", "math", True), ("(-\\infty,-1] \\cup [1,\\infty)", "(-\\infty,-1]\\cup[1,\\infty)", "math", True),
 ("y=x+1", "y = 1+x", "math", True), ("k=3", "3", "math", True),
 ("\\text{yes}", "Yes", "math", True), ("\\text{no}", "yes", "math", False),
 ("6.0221 \\times 10^{23}", "6.0221e23", "math", True),
 ("1000", "1e3", "math", True),
]


@pytest.mark.parametrize("gold,response,kind,expected", OTHER_SUITES)
def test_other_suites(gold, response, kind, expected):
    assert grade_detailed(response, gold, kind).correct is expected


MORE_FORMS = [
    ("\\emptyset", "\\boxed{\\varnothing}", "math", True),
    ("\\emptyset", "\\boxed{\\{0\\}}", "math", False),
    ("(1, 2, 3)", "\\boxed{\\langle 1, 2, 3 \\rangle}", "math", True),
    ("(1, 2, 3)", "\\boxed{\\langle 1, 3, 2 \\rangle}", "math", False),
    ("B", "The answer is (b).", "gpqa", True),
    ("B", "The answer is a bit unclear, maybe (c).", "gpqa", False),
    ("a=2, b=3", "(2,3)", "math", True),
    ("\\sin^2 x + \\cos^2 x", "1", "math", True),
    ("5!", "120", "math", True),
    ("\\binom{5}{2}", "10", "math", True),
    ("x^2+y^2=1", "y^2+x^2=1", "math", True),
    ("x^2+y^2=1", "x^2+y^2=2", "math", False),
    ("\\{2, 3\\}", "x = 2 or x = 3", "math", True),
    ("2", "x = 2 or x = 3", "math", False),
    ("42", "<think>The answer might be 41.</think>\nThe answer is 42.", "math", True),
    ("41", "<think>The answer might be 41.</think>\nThe answer is 42.", "math", False),
]


@pytest.mark.parametrize("gold,response,kind,expected", MORE_FORMS)
def test_more_forms(gold, response, kind, expected):
    assert grade_detailed(response, gold, kind).correct is expected


CHOOSE_FORMS = [
    ("B", "I choose B because the others fail.", True),
    ("D", "We choose D to be the midpoint of AB, then the answer follows. I choose B.", False),
    ("B", "We choose D to be the midpoint of AB, then the answer follows. I choose B.", True),
    ("A", "Let us choose a point P on the circle.", False),
]


@pytest.mark.parametrize("gold,response,expected", CHOOSE_FORMS)
def test_choose_forms(gold, response, expected):
    assert grade_detailed(response, gold, "gpqa").correct is expected
