"""Answer forms that slipped past the grader (issue 32): (gold, response, kind, expected).

One group per class of the issue, each with rows that failed before the fix
and negative rows that keep it honest (a different text is still wrong, two
letters still choose none, a symbolic answer is still no integer). Written by us.
"""

import time

import pytest

from evaluators import CompareSettings, GradeSettings, grade_detailed

# The same text on both sides matches, whatever the kind; only whitespace is normalised.
IDENTICAL = [
    ("even $k$", "even $k$", "math", True),
    ("$n$ is even", "$n$  is\neven", "math", True),
    ("even $k$", "odd $k$", "math", False),
    ("5\\", "5\\", "math", True),
    ("5\\", "5\\", "integer", True),
    ("2,75", "2,75", "integer", True),
    ("2,75", "2,57", "integer", False),
    ("C\n-3", "C\n-3", "choice", True),
    # A gold's stray trailing backslash ends no answer, as in a response.
    ("5\\", "\\boxed{5}", "integer", True),
    ("5\\", "\\boxed{5}", "math", True),
    ("5\\", "\\boxed{6}", "integer", False),
]

# Under the integer kind a decimal gold goes to the math comparison; a comma
# with 1-2 digits after it is a decimal comma, with 3 a thousands separator.
DECIMAL_COMMAS = [
    ("2,75", "\\boxed{2.75}", "integer", True),
    ("2,75", "\\boxed{2,75}", "integer", True),
    ("2,75", "\\boxed{\\frac{11}{4}}", "integer", True),
    ("2,75", "\\boxed{275}", "integer", False),
    ("2,75", "\\boxed{3}", "integer", False),
    ("2,5", "\\boxed{2.5}", "integer", True),
    ("2,5", "Respuesta: 2,5", "integer", True),
    ("2,5", "\\boxed{25}", "integer", False),
    ("2.75", "\\boxed{2,75}", "integer", True),
    ("-0,5", "\\boxed{-\\frac{1}{2}}", "integer", True),
    ("3,600,000", "\\boxed{3600000}", "integer", True),
    ("3,600,000", "\\boxed{3.6}", "integer", False),
    ("3,600", "\\boxed{3.6}", "integer", False),
]

# Letters glued to a digit make an id, not a number.
DIGIT_IN_TOKEN = [
    ("7", "Answer: QX7ZB", "integer", False),
    ("7", "\\boxed{QX7ZB}", "integer", False),
    ("7", "QX7ZB", "integer", False),
    ("7", "The answer is QX7ZB.", "integer", False),
    ("12", "\\boxed{B12}", "integer", False),
    ("7", "The code QX7ZB opens box 7.", "integer", True),
    ("12", "\\boxed{12cm}", "integer", True),
]

# The letter the answer affirms, not the one it rejects, in English and other languages.
CHOICE_AFFIRMED = [
    ("D", "D is correct since B would need a negative mass.", "choice", True),
    ("B", "D is correct since B would need a negative mass.", "choice", False),
    ("A", "Not C, so the answer must be A.", "choice", True),
    ("C", "Not C, so the answer must be A.", "choice", False),
    ("A", "It is not C; the answer should be A.", "choice", True),
    ("A", "C is ruled out, so it must be A.", "choice", True),
    ("C", "C is ruled out, so it must be A.", "choice", False),
    ("D", "答案是 D，不是 B", "choice", True),
    ("B", "答案是 D，不是 B", "choice", False),
    ("D", "答案：不是B，而是D", "choice", True),
    ("B", "答案：不是B，而是D", "choice", False),
    ("D", "D。不是 B", "choice", True),
    ("B", "D。不是 B", "choice", False),
    ("D", "D，因为 B 不守恒。", "choice", True),
    ("D", "D, since B violates conservation.", "choice", True),
    ("B", "D, since B violates conservation.", "choice", False),
    ("A", "A, B and C all violate conservation.", "choice", False),
    ("D", "D 是正确的，因为 B 的符号错了。", "choice", True),
    ("B", "D 是正确的，因为 B 的符号错了。", "choice", False),
    ("D", "La D es correcta porque B no conserva la energía.", "choice", True),
    ("D", "D est correcte car B ne conserve pas l'énergie.", "choice", True),
    ("B", "D est correcte car B ne conserve pas l'énergie.", "choice", False),
]

# A gold that gives its option's text on the line after the letter.
CHOICE_GOLD_TEXT_LINE = [
    ("C\n-3", "\\boxed{C}", "choice", True),
    ("C\n-3", "C", "choice", True),
    ("C\n-3", "\\boxed{D}", "choice", False),
    ("C\n$-3$", "The answer is (C).", "choice", True),
    ("C\nthe electron spin", "The answer is C.", "choice", True),
    ("C\nthe electron spin", "\\boxed{B}", "choice", False),
    ("C\nthe electron spin", "the electron spin", "choice", True),
    ("C\nthe electron spin", "the proton spin", "choice", False),
]

# After "Answer:" in another language, a sentence gives its first number (or
# first math group holding a digit), not its last; currency signs are units.
FOREIGN_FIRST_NUMBER = [
    ("35", "Respuesta: quedan 35 € por pagar en 6 meses", "integer", True),
    ("6", "Respuesta: quedan 35 € por pagar en 6 meses", "integer", False),
    ("35", "Respuesta: quedan 35 € por pagar en 6 meses", "math", True),
    ("35", "Réponse : il reste 35 € à payer en 6 mois.", "integer", True),
    ("35", "Antwort: Es bleiben 35 € in 6 Monaten.", "integer", True),
    ("35", "答案：还剩 35 元，分 6 个月付清。", "integer", True),
    ("35", "Respuesta: quedan $35$ € por pagar en $6$ meses", "integer", True),
    ("6", "Respuesta: quedan $35$ € por pagar en $6$ meses", "integer", False),
    ("\\frac{35}{2}", "Respuesta: quedan $\\frac{35}{2}$ € en 6 meses", "math", True),
    ("34", "Respuesta: el mayor $n$ es 34.", "integer", True),
    ("35", "Respuesta: $35 € al mes$ durante $6$ meses", "integer", True),
    ("6", "Respuesta: $35 € al mes$ durante $6$ meses", "integer", False),
]

# An integer answer written as an expression that simplifies to an integer.
INTEGER_SIMPLIFIED = [
    ("0", "\\boxed{y^3 - y^3}", "integer", True),
    ("1", "\\boxed{y^3 - y^3}", "integer", False),
    ("2", "\\boxed{\\frac{2n}{n}}", "integer", True),
    ("5", "\\boxed{x - x + 5}", "integer", True),
    ("1", "\\boxed{\\sin^2 x + \\cos^2 x}", "integer", True),
    ("0", "\\boxed{y^3 - y^2}", "integer", False),
    ("7", "\\boxed{n+1}", "integer", False),
]

# Solutions joined by "\\quad \\text{and} \\quad", with spacing commands inside, or as separate math groups.
SOLUTIONS_JOINED = [
    ("x=1, y=2; x=3, y=4", "\\boxed{x=1,\\ y=2 \\quad \\text{and} \\quad x=3,\\ y=4}", "math", True),
    ("x=1, y=2; x=3, y=4", "\\boxed{x=1, \\, y=2 \\quad \\text{and} \\quad x=3, \\, y=4}", "math", True),
    ("x=1, y=2; x=3, y=4", "\\boxed{x=1,\\; y=2 \\quad\\text{and}\\quad x=3,\\; y=4}", "math", True),
    ("x=1, y=2; x=3, y=4", "\\boxed{x=1,\\ y=2 \\quad \\text{and} \\quad x=3,\\ y=5}", "math", False),
    ("x=1, y=2; x=3, y=4", "$x=1, y=2$ \\quad \\text{and} \\quad $x=3, y=4$", "math", True),
    ("x = -1; x = 2", "Hence $x = -1$ \\quad \\text{and} \\quad $x = 2$.", "math", True),
    ("x = -1; x = 2", "Hence $x = -1$ \\quad \\text{and} \\quad $x = 3$.", "math", False),
    ("x = -1; x = 2", "Hence $x = -1$ \\quad \\text{or} \\quad $x = 2$ \\quad \\text{or} \\quad $x = 5$.", "math", False),
    ("(1,2); (3,4)", "The solutions are $(1,2)$ \\quad \\text{and} \\quad $(3,4)$.", "math", True),
]

# Percent in words after a fraction is ``\\%`` too: (gold, response, mode, expected).
PERCENT_FRACTIONS = [
    ("0.0075", "\\boxed{\\frac{3}{4}\\text{ percent}}", "fraction", True),
    ("0.75", "\\boxed{\\frac{3}{4}\\text{ percent}}", "fraction", False),
    ("0.75", "\\boxed{\\frac{3}{4}\\text{ percent}}", "number", True),
    ("0.0075", "\\boxed{\\frac{3}{4}\\text{ percent}}", "number", False),
    ("0.0075", "\\boxed{\\frac{3}{4}\\text{ percent}}", "library", True),
    ("0.0075", "\\boxed{\\frac34\\text{ percent}}", "fraction", True),
    ("0.0075", "\\boxed{3/4 percent}", "fraction", True),
    ("\\frac{3}{4}\\%", "\\boxed{\\frac{3}{4}\\text{ percent}}", "fraction", True),
    ("\\frac{3}{4}\\text{ percent}", "\\boxed{0.0075}", "fraction", True),
    ("0.0075", "\\boxed{\\frac{3}{4}}", "fraction", False),
]

GROUPS = {
    "identical": IDENTICAL,
    "decimal_commas": DECIMAL_COMMAS,
    "digit_in_token": DIGIT_IN_TOKEN,
    "choice_affirmed": CHOICE_AFFIRMED,
    "choice_gold_text_line": CHOICE_GOLD_TEXT_LINE,
    "foreign_first_number": FOREIGN_FIRST_NUMBER,
    "integer_simplified": INTEGER_SIMPLIFIED,
    "solutions_joined": SOLUTIONS_JOINED,
}
TABLE = [(name, *row) for name, rows in GROUPS.items() for row in rows]
# The bound for one grading call.
MAX_CALL_S = 6.0


@pytest.mark.parametrize("group,gold,response,kind,expected", TABLE)
def test_slips2_table(group, gold, response, kind, expected):
    start = time.monotonic()
    result = grade_detailed(response, gold, kind)
    assert result.correct is expected, result
    assert time.monotonic() - start < MAX_CALL_S


@pytest.mark.parametrize("gold,response,mode,expected", PERCENT_FRACTIONS)
def test_percent_fractions(gold, response, mode, expected):
    settings = GradeSettings(compare=CompareSettings(percent=mode))
    start = time.monotonic()
    assert grade_detailed(response, gold, "math", settings).correct is expected
    assert time.monotonic() - start < MAX_CALL_S


def test_every_group_has_both_verdicts():
    for rows in [*GROUPS.values(), PERCENT_FRACTIONS]:
        assert {row[-1] for row in rows} == {True, False}


@pytest.mark.parametrize(
    "response",
    [
        "\\boxed{(x+1)^{999} - (x+1)^{999} + 5}",
        "\\boxed{\\sin(x)^{50} - \\cos(x)^{50} + x^{77} y^{3}}",
        "$1$ \\quad \\text{and} \\quad " * 3000 + "$5$",
    ],
)
def test_new_rules_stay_within_the_bound(response):
    # simplify on a symbolic integer answer, and the joining of math groups, run under the deadline.
    start = time.monotonic()
    grade_detailed(response, "5", "integer")
    assert time.monotonic() - start < MAX_CALL_S
