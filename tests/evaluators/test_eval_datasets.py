"""Self-consistency on the reference datasets (read from ../shared/datasets)."""

from concurrent.futures import ThreadPoolExecutor

from evaluators import extract_math_answer, grade_detailed, parse_answer, text_verdict, verify_parsed


def _failures(pairs, kind):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: grade_detailed(p[0], p[1], kind), pairs))
    return [(gold, result) for (_, gold), result in zip(pairs, results) if not result.correct]


def test_math500_gold_against_itself(load_dataset):
    rows = load_dataset("math500")
    assert len(rows) == 500
    pairs = [(f"The answer is $\\boxed{{{row['answer']}}}$.", row["answer"]) for row in rows]
    assert _failures(pairs, "math") == []


def test_math500_gold_against_solution_last_box(load_dataset):
    rows = load_dataset("math500")
    pairs = [(row["solution"], row["answer"]) for row in rows]
    assert _failures(pairs, "math") == []


def test_math500_golds_parse_and_verify_themselves(load_dataset):
    rows = load_dataset("math500")
    for row in rows:
        if text_verdict(row["answer"], row["answer"]) is not None:
            continue  # word answers are compared as words, never parsed
        parsed = parse_answer(row["answer"])
        assert parsed, row["answer"]
        assert verify_parsed(parsed, parse_answer(row["answer"]))[0], row["answer"]


def test_math500_shifted_golds_rarely_match(load_dataset):
    # Guards against a grader that says yes too easily: neighbouring golds
    # differ except for a handful of genuinely equal answers.
    rows = load_dataset("math500")
    golds = [row["answer"] for row in rows]
    pairs = [(f"\\boxed{{{golds[(i + 1) % len(golds)]}}}", gold) for i, gold in enumerate(golds)]
    assert len(_failures(pairs, "math")) >= len(golds) - 10


def test_math500_solution_boxes_extract(load_dataset):
    rows = load_dataset("math500")
    assert all(extract_math_answer(row["solution"]) for row in rows)


def test_aime_golds_against_themselves(load_dataset):
    for name in ("aime24", "aime25"):
        rows = load_dataset(name)
        assert len(rows) == 30
        golds = [str(row["answer"]) for row in rows]
        pairs = [(f"\\boxed{{{gold}}}", gold) for gold in golds]
        # Leading zeros dropped by the model still match ("025" vs 25).
        pairs += [(f"The answer is {int(gold)}.", gold) for gold in golds]
        pairs += [(f"So the final count is {int(gold)} apples", gold) for gold in golds]
        assert _failures(pairs, "aime") == []
        wrong = [(f"\\boxed{{{int(gold) + 1}}}", gold) for gold in golds]
        assert len(_failures(wrong, "aime")) == len(wrong)


def test_math500_golds_as_bare_answers(load_dataset):
    # Predictions that are just the answer, or the answer in the usual phrases.
    rows = load_dataset("math500")
    forms = (
        "{}",
        "${}$",
        "Final Answer: The final answer is ${}$. I hope it is correct.",
    )
    for form in forms:
        pairs = [(form.format(row["answer"]), row["answer"]) for row in rows]
        assert _failures(pairs, "math") == [], form
