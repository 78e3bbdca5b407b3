"""Regression rows adapted from Math-Verify's own test suite (huggingface/Math-Verify, Apache-2.0).

``data/math_verify_cases.jsonl`` holds the ``(gold, pred, expected)`` rows of
its tests (test_all, test_boxed, test_numina_cases, test_open_thoughts,
test_strict, test_yujianll), each with the comparison settings its test used
(``float_rounding``, ``set_relation``). Left out, with the reason:

* a gold written with doubled backslashes (``\\\\boxed{35 cm} ++++++``): not
  LaTeX a model writes;
* two boxes separated by ``y_2 =``: we grade the last box;
* ``1 - \\frac{1}{e}`` labelled equal to ``1 + \\frac{1}{e}``;
* a ``\\boxed{12 $ and $13 }`` broken across math groups.
"""

import json
from pathlib import Path

import pytest

from evaluators import CompareSettings, GradeSettings, grade_detailed

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "math_verify_cases.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['source'].rsplit('::', 1)[1]}" for i, c in enumerate(CASES)])
def test_math_verify_case(case):
    settings = GradeSettings(compare=CompareSettings(**case["compare"]))
    result = grade_detailed(case["pred"], case["gold"], "math", settings)
    assert result.correct is case["expected"], result


def test_cases_have_both_verdicts():
    assert len(CASES) > 250
    assert {case["expected"] for case in CASES} == {True, False}
