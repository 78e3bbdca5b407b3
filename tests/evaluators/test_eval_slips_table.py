"""Answer forms that slipped past the grader (issue 22): (gold, response, kind, expected).

One group per class of disagreement with the field's graders, each with the
negative rows that keep the fix honest (two letters do not match one, a
wrong integer written as an expression still fails). Written by us.
"""

import time

import pytest

from evaluators import CompareSettings, GradeSettings, grade_detailed

# The integer rule evaluates an expression (through the LaTeX parser, in a
# worker) and accepts it when it equals the gold.
INTEGER_EXPRESSIONS = [
    ("12", "\\boxed{5+7}", "integer", True),
    ("12", "\\boxed{5+8}", "integer", False),
    ("5", "\\boxed{\\frac{10}{2}}", "integer", True),
    ("3", "\\boxed{\\frac{7}{2}}", "integer", False),
    ("6", "\\boxed{\\sqrt{36}}", "integer", True),
    ("2", "\\boxed{\\sqrt{5}}", "integer", False),
    ("11", "So $x \\approx 11$.", "integer", True),
    ("11", "\\boxed{x \\approx 11}", "integer", True),
    ("11", "\\boxed{x \\approx 12}", "integer", False),
    ("11", "\\boxed{x \\approx 10.98}", "integer", False),
    ("1024", "\\boxed{2^{10}}", "integer", True),
    ("1023", "\\boxed{2^{10}}", "integer", False),
    ("36", "The answer is $\\binom{9}{2}$.", "integer", True),
    ("3", "\\boxed{\\log_2 8}", "integer", True),
    ("25", "\\boxed{25 \\text{ or } 26}", "integer", False),
    ("7", "\\boxed{n+1}", "integer", False),
]

# Letters stated in prose; two letters never match one, and a letter inside a
# longer token (an id, a word) is not a choice.
CHOICE_PROSE = [
    ("B", "It's not A, because the rate would halve. Therefore B.", "choice", True),
    ("A", "It's not A, because the rate would halve. Therefore B.", "choice", False),
    ("C", "Checking each option, the answer is C, not A.", "choice", True),
    ("A", "Checking each option, the answer is C, not A.", "choice", False),
    ("C", "Après vérification, la bonne réponse est C.", "choice", True),
    ("D", "Après vérification, la bonne réponse est C.", "choice", False),
    ("C", "所以答案是C。", "choice", True),
    ("C", "故选：C。", "choice", True),
    ("B", "故选：C。", "choice", False),
    ("D", "最终答案：（D）", "choice", True),
    ("D", "The answer is $\\mathrm{(D)}\\ 12$", "choice", True),
    ("D", "\\boxed{\\mathrm{(D)}\\ 12}", "choice", True),
    ("C", "\\boxed{\\mathrm{(D)}\\ 12}", "choice", False),
    ("A", "The answer is A or B.", "choice", False),
    ("B", "The answer is A or B.", "choice", False),
    ("A", "The answer is \\boxed{A, B}", "choice", False),
    ("C", "Answer: A and C", "choice", False),
    ("C", "The answer is (A) and (C).", "choice", False),
    ("A", "Answer: A/B", "choice", False),
    ("C", "The answer is C, D is wrong.", "choice", True),
    ("D", "The answer is D, it cannot be A or B", "choice", True),
    ("B", "The answer is B because A is wrong.", "choice", True),
    ("B", "The answer is B12, the sample id.", "choice", False),
    ("A", "The answer is compound A1.", "choice", False),
    ("C", "The answer is Cecile.", "choice", False),
]

# Golds and predictions that carry the option's text after the letter.
CHOICE_OPTION_TEXT = [
    ("C Cecile", "\\boxed{C}", "choice", True),
    ("C Cecile", "The answer is C.", "choice", True),
    ("C Cecile", "\\boxed{D}", "choice", False),
    ("C Cecile", "C Cecile", "choice", True),
    ("C Cecile", "D Dana", "choice", False),
    ("C Cecile", "Cecile", "choice", True),
    ("C Cecile", "Dana", "choice", False),
    ("(C) Cecile", "C Cecile", "choice", True),
    ("C", "C Cecile", "choice", True),
    ("C", "(C) Cecile", "choice", True),
    ("D", "C Cecile", "choice", False),
    ("C", "\\boxed{C Cecile}", "choice", True),
    ("D", "\\boxed{C Cecile}", "choice", False),
]

# "Answer:" in another language, where the last number of the sentence is not the answer.
FOREIGN_MARKERS = [
    ("12", "Réponse : 12 pommes, soit 3 de plus qu'hier.", "math", True),
    ("3", "Réponse : 12 pommes, soit 3 de plus qu'hier.", "math", False),
    ("12", "答案：12个苹果，比昨天多3个。", "math", True),
    ("3", "答案：12个苹果，比昨天多3个。", "math", False),
    ("42", "Antwort: 42 Euro, also 7 Euro pro Person.", "math", True),
    ("7", "Antwort: 42 Euro, also 7 Euro pro Person.", "math", False),
    ("18", "Respuesta: 18 dólares en total, es decir 2 por día durante 9 días.", "integer", True),
    ("9", "Respuesta: 18 dólares en total, es decir 2 por día durante 9 días.", "integer", False),
    ("42", "答案是 42，因为 6 乘以 7 等于 42。", "math", True),
]

# A phrase made of several inline-math segments is the answer whole.
PROSE_ANSWERS = [
    (
        "$f$ is increasing on $(0,1)$ and decreasing on $(1,\\infty)$",
        "$f$ is increasing on $(0,1)$ and decreasing on $(1,\\infty)$",
        "math",
        True,
    ),
    (
        "$f$ is increasing on $(0,1)$ and decreasing on $(1,\\infty)$",
        "$f$ is increasing on $(0,1)$ and decreasing on $(2,\\infty)$",
        "math",
        False,
    ),
    ("$a=1$ and $b=2$", "The answer is $a=1$ and $b=2$.", "math", True),
    ("$a=1$ and $b=2$", "The answer is $a=1$ and $b=3$.", "math", False),
    ("$x$ is odd and $y$ is even", "$x$ is odd and $y$ is even", "math", True),
    ("$x$ is odd and $y$ is even", "$x$ is even and $y$ is odd", "math", False),
]

EQUATION_ORIENTATION = [
    ("2 = x", "\\boxed{2}", "math", True),
    ("2 = x", "\\boxed{x = 2}", "math", True),
    ("2 = x", "\\boxed{3}", "math", False),
    ("2 = x", "\\boxed{x = 3}", "math", False),
    ("x = 2", "\\boxed{2 = x}", "math", True),
    ("x = 2", "\\boxed{3 = x}", "math", False),
    ("3 = y", "\\boxed{y = 3}", "math", True),
    ("-1", "\\boxed{e^{i\\pi} = -1}", "math", True),
    ("1", "\\boxed{e^{i\\pi} = -1}", "math", False),
]

# Percent in words reads as ``\\%``, then the percent setting decides: (gold, response, mode, expected).
PERCENT_WORDS = [
    ("0.1", "\\boxed{10 percent}", "fraction", True),
    ("0.1", "\\boxed{10\\text{ percent}}", "fraction", True),
    ("0.1", "The rate is 10 pct.", "fraction", True),
    ("0.25", "\\boxed{25 percentage}", "fraction", True),
    ("0.1", "\\boxed{10 per cent}", "fraction", True),
    ("10", "\\boxed{10 percent}", "fraction", False),
    ("0.2", "\\boxed{10 percent}", "fraction", False),
    ("10", "\\boxed{10 percent}", "number", True),
    ("0.1", "\\boxed{10 percent}", "number", False),
    ("10\\%", "\\boxed{10 percent}", "fraction", True),
    ("10 percent", "\\boxed{0.1}", "fraction", True),
    ("10 percent", "\\boxed{10}", "fraction", False),
    ("10", "\\boxed{10 percent}", "library", True),
]

PLAIN_NOTATION = [
    ("\\sqrt[4]{2}", "\\boxed{2**(1/4)}", "math", True),
    ("2^{1/4}", "2**(1/4)", "math", True),
    ("2^{1/4}", "2**(1/3)", "math", False),
    ("\\sqrt{3}", "sqrt(3)", "math", True),
    ("\\sqrt{3}", "The answer is sqrt(3).", "math", True),
    ("\\sqrt{3}", "sqrt(2)", "math", False),
    ("3\\sqrt{2}", "3*sqrt(2)", "math", True),
    ("\\frac{\\sqrt{3}}{2}", "sqrt(3)/2", "math", True),
    ("\\frac{\\sqrt{3}}{2}", "sqrt(3/2)", "math", False),
    ("x^2+1", "\\boxed{x**2 + 1}", "math", True),
    ("8", "\\boxed{2**3}", "integer", True),
    ("9", "\\boxed{2**3}", "integer", False),
]

STRAY_CHARACTERS = [
    ("5", "so the answer is \\boxed{5}\\", "math", True),
    ("5", "Answer: 5 \\", "math", True),
    ("6", "Answer: 5 \\", "math", False),
    ("5", "Thus \\beginboxed{5}", "math", True),
    ("5", "Thus \\beginboxed{6}", "math", False),
    ("\\frac{1}{2}", "Hence \\beginboxed{\\frac{1}{2}}.", "math", True),
    ("42", "The answer is $\\boxed{42$.", "math", True),
    ("42", "The answer is $\\boxed{41$.", "math", False),
    ("\\frac{1}{2}", "so $\\boxed{\\frac{1}{2}$ is the area.", "math", True),
    ("5", "$\\boxed{5$}", "math", True),
    ("12, 13", "$\\boxed{12 $ and $13 }$", "math", True),
    ("12, 13", "$\\boxed{12 $ and $14 }$", "math", False),
]

SEVERAL_SOLUTIONS = [
    ("p=5, q=2; p=7, q=2", "p = 5, q = 2 and p = 7, q = 2", "math", True),
    ("p=5, q=2; p=7, q=2", "\\boxed{p = 7, q = 2 \\text{ and } p = 5, q = 2}", "math", True),
    ("p=5, q=2; p=7, q=2", "\\boxed{q = 2, p = 5; q = 2, p = 7}", "math", True),
    ("p=5, q=2; p=7, q=2", "\\boxed{(5, 2), (7, 2)}", "math", True),
    ("p=5, q=2; p=7, q=2", "\\boxed{p = 5, q = 2}", "math", False),
    ("p=5, q=2; p=7, q=2", "\\boxed{p = 5, q = 2 \\text{ and } p = 7, q = 3}", "math", False),
    ("p=5, q=2; p=7, q=2", "\\boxed{(2, 5), (2, 7)}", "math", False),
    ("p=5, q=2; p=7, q=2", "\\boxed{p=5, q=2; p=7, q=2; p=3, q=1}", "math", False),
    ("(5,2); (7,2)", "\\boxed{(p,q) = (5,2) \\text{ or } (7,2)}", "math", True),
    ("(5,2); (7,2)", "\\boxed{(p,q) = (5,2)}", "math", False),
]

GROUPS = {
    "integer_expressions": INTEGER_EXPRESSIONS,
    "choice_prose": CHOICE_PROSE,
    "choice_option_text": CHOICE_OPTION_TEXT,
    "foreign_markers": FOREIGN_MARKERS,
    "prose_answers": PROSE_ANSWERS,
    "equation_orientation": EQUATION_ORIENTATION,
    "plain_notation": PLAIN_NOTATION,
    "stray_characters": STRAY_CHARACTERS,
    "several_solutions": SEVERAL_SOLUTIONS,
}
TABLE = [(name, *row) for name, rows in GROUPS.items() for row in rows]
# The bound for one grading call.
MAX_CALL_S = 6.0


@pytest.mark.parametrize("group,gold,response,kind,expected", TABLE)
def test_slips_table(group, gold, response, kind, expected):
    start = time.monotonic()
    result = grade_detailed(response, gold, kind)
    assert result.correct is expected, result
    assert time.monotonic() - start < MAX_CALL_S


@pytest.mark.parametrize("gold,response,mode,expected", PERCENT_WORDS)
def test_percent_words(gold, response, mode, expected):
    settings = GradeSettings(compare=CompareSettings(percent=mode))
    assert grade_detailed(response, gold, "math", settings).correct is expected


def test_every_group_has_both_verdicts():
    for rows in [*GROUPS.values(), PERCENT_WORDS]:
        assert {row[-1] for row in rows} == {True, False}
