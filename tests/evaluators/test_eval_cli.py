"""``memshare grade`` through Typer's CliRunner, on files written to tmp_path."""

import json

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app

ROWS = [
    {"dataset": "math500", "kind": "math", "response": "so \\boxed{\\frac12}", "gold": "\\frac{1}{2}", "correct": False},
    {"dataset": "math500", "kind": "math", "response": "so \\boxed{3}", "gold": "4", "correct": False},
    {"dataset": "aime25", "kind": "aime", "response": "\\boxed{070}", "gold": 70, "correct": True},
    {"dataset": "gpqa", "kind": "gpqa", "response": "Answer: (B)", "gold": "C", "correct": True},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def runner():
    return CliRunner()


def test_json_summary(runner, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", ROWS)
    result = runner.invoke(app, ["grade", str(path), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["datasets"]["math500"] == {"num_graded": 2, "num_correct": 1, "num_problems": 2, "accuracy": 0.5}
    assert summary["datasets"]["aime25"]["accuracy"] == 1.0
    assert summary["datasets"]["gpqa"]["num_correct"] == 0
    lines = sorted(item["line"] for item in summary["disagreements"])
    assert lines == [1, 4]


def test_table_output_and_progress(runner, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", ROWS)
    result = runner.invoke(app, ["grade", str(path)])
    assert result.exit_code == 0, result.output
    assert "math500" in result.stdout and "50.00%" in result.stdout
    assert "Disagreements" in result.stdout


def test_out_file_keeps_extracted_and_reason(runner, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", ROWS)
    out = tmp_path / "regraded.jsonl"
    result = runner.invoke(app, ["grade", str(path), "--out", str(out), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["correct"] for row in rows] == [True, False, True, False]
    assert rows[0]["extracted"] == "\\frac12" and rows[0]["reason"].startswith("match")
    assert rows[3]["extracted"] == "B" and rows[3]["reason"] == "mismatch"
    assert rows[2]["gold"] == 70


def test_custom_fields_and_kind_for_all_rows(runner, tmp_path):
    rows = [
        {"output": "\\boxed{025}", "answer": "25", "bench": "aime24"},
        {"output": "\\boxed{11}", "answer": "711", "bench": "aime24"},
    ]
    path = write_jsonl(tmp_path / "preds.jsonl", rows)
    args = ["grade", str(path), "--kind", "aime", "--response-field", "output", "--gold-field", "answer"]
    args += ["--dataset-field", "bench", "--json", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {
        "datasets": {"aime24": {"num_graded": 2, "num_correct": 1, "num_problems": 2, "accuracy": 0.5}},
        "disagreements": [],
    }


def test_rows_without_dataset_are_grouped_by_kind(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"response": "\\boxed{C}", "gold": "C", "kind": "gpqa"}])
    result = runner.invoke(app, ["grade", str(path), "--json", "--quiet"])
    assert json.loads(result.stdout)["datasets"] == {
        "gpqa": {"num_graded": 1, "num_correct": 1, "num_problems": 1, "accuracy": 1.0}
    }


def _assert_clean_failure(result, fragment):
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("error:"), result.stderr
    assert fragment in error_lines[0]


def test_missing_file(runner, tmp_path):
    result = runner.invoke(app, ["grade", str(tmp_path / "absent.jsonl")])
    _assert_clean_failure(result, "no such file")


def test_malformed_json_line(runner, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n", encoding="utf-8")
    result = runner.invoke(app, ["grade", str(path)])
    _assert_clean_failure(result, "bad.jsonl:2: malformed JSON")


def test_missing_field(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"response": "\\boxed{1}", "kind": "math"}])
    result = runner.invoke(app, ["grade", str(path)])
    _assert_clean_failure(result, "missing field 'gold'")


def test_unknown_kind_in_row(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"response": "1", "gold": "1", "kind": "physics"}])
    result = runner.invoke(app, ["grade", str(path)])
    _assert_clean_failure(result, "unknown kind 'physics'")


def test_unknown_kind_option(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    result = runner.invoke(app, ["grade", str(path), "--kind", "chess"])
    _assert_clean_failure(result, "unknown kind 'chess'")


def test_empty_file(runner, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    result = runner.invoke(app, ["grade", str(path)])
    _assert_clean_failure(result, "no rows")


def test_non_object_row(runner, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    result = runner.invoke(app, ["grade", str(path)])
    _assert_clean_failure(result, "expected a JSON object")


def write_run(folder, rows, config):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    write_jsonl(folder / "samples.jsonl", rows)
    return folder


# Rows as ``memshare bench`` writes them: no kind, no dataset.
RUN_ROWS = [
    {"problem_id": "p1", "sample_index": 0, "response": "so \\boxed{5}", "gold": "5", "correct": True},
    {"problem_id": "p1", "sample_index": 1, "response": "so \\boxed{6}", "gold": "5", "correct": False},
    {"problem_id": "p2", "sample_index": 0, "response": "so \\boxed{7}", "gold": "7", "correct": True},
    {"problem_id": "p2", "sample_index": 1, "response": "so \\boxed{7}", "gold": "7", "correct": True},
    {"problem_id": "p3", "sample_index": 0, "response": "so \\boxed{1}", "gold": "2", "correct": False},
    {"problem_id": "p3", "sample_index": 1, "response": "no idea", "gold": "2", "correct": False},
]


def test_run_folder_reads_dataset_and_kind_from_config(runner, tmp_path):
    run = write_run(tmp_path / "math500__m__dense__abc", RUN_ROWS, {"schema_version": 1, "dataset": "math500"})
    for target in (run, run / "samples.jsonl"):
        result = runner.invoke(app, ["grade", str(target), "--json", "--quiet"])
        assert result.exit_code == 0, result.output
        stats = json.loads(result.stdout)["datasets"]["math500"]
        # pass@1 averages each problem's samples first: (1/2 + 1 + 0) / 3.
        assert stats == {"num_graded": 6, "num_correct": 3, "num_problems": 3, "accuracy": 0.5}


def test_run_folder_kind_from_dataset_registry(runner, tmp_path):
    rows = [{"problem_id": "1", "sample_index": 0, "response": "\\boxed{025}", "gold": "25"}]
    run = write_run(tmp_path / "run", rows, {"dataset": "aime24"})
    result = runner.invoke(app, ["grade", str(run), "--json", "--quiet", "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["datasets"]["aime24"]["accuracy"] == 1.0
    written = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert written["reason"] == "match: integer"


def test_rows_with_dataset_and_kind_win_over_config(runner, tmp_path):
    rows = [{"dataset": "gpqa-diamond", "kind": "gpqa", "problem_id": "q", "response": "Answer: C", "gold": "C"}]
    run = write_run(tmp_path / "run", rows, {"dataset": "math500"})
    result = runner.invoke(app, ["grade", str(run), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["datasets"] == {
        "gpqa-diamond": {"num_graded": 1, "num_correct": 1, "num_problems": 1, "accuracy": 1.0}
    }


def test_kind_option_overrides_config(runner, tmp_path):
    rows = [{"problem_id": "1", "response": "\\boxed{25.0}", "gold": "25"}]
    run = write_run(tmp_path / "run", rows, {"dataset": "math500"})
    as_math = json.loads(runner.invoke(app, ["grade", str(run), "--json", "-q"]).stdout)
    as_int = json.loads(runner.invoke(app, ["grade", str(run), "--json", "-q", "--kind", "integer"]).stdout)
    assert as_math["datasets"]["math500"]["accuracy"] == 1.0
    assert as_int["datasets"]["math500"]["accuracy"] == 1.0
    # Equal at math's 6 decimals, but no integer.
    rows = [{"problem_id": "1", "response": "\\boxed{24.9999999}", "gold": "25"}]
    run = write_run(tmp_path / "run2", rows, {"dataset": "math500"})
    assert json.loads(runner.invoke(app, ["grade", str(run), "--json", "-q"]).stdout)["datasets"]["math500"]["accuracy"] == 1.0
    as_int = json.loads(runner.invoke(app, ["grade", str(run), "--json", "-q", "--kind", "aime"]).stdout)
    assert as_int["datasets"]["math500"]["accuracy"] == 0.0


def test_percent_option(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"response": "\\boxed{10}", "gold": "10\\%", "kind": "math"}])
    library = json.loads(runner.invoke(app, ["grade", str(path), "--json", "-q"]).stdout)
    fraction = json.loads(runner.invoke(app, ["grade", str(path), "--json", "-q", "--percent", "fraction"]).stdout)
    assert library["datasets"]["math"]["accuracy"] == 1.0
    assert fraction["datasets"]["math"]["accuracy"] == 0.0
    result = runner.invoke(app, ["grade", str(path), "--percent", "half"])
    _assert_clean_failure(result, "--percent must be one of")


def test_run_folder_without_config_or_kind(runner, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    write_jsonl(folder / "samples.jsonl", [{"response": "\\boxed{1}", "gold": "1"}])
    result = runner.invoke(app, ["grade", str(folder)])
    _assert_clean_failure(result, "missing field 'kind'")
    assert runner.invoke(app, ["grade", str(folder), "--kind", "math", "-q"]).exit_code == 0


def test_folder_without_samples(runner, tmp_path):
    result = runner.invoke(app, ["grade", str(tmp_path)])
    _assert_clean_failure(result, "no samples.jsonl")


def test_ungraded_run_says_so(runner, tmp_path):
    rows = [{"problem_id": "1", "sample_index": 0, "response": "\\boxed{1}"}]
    run = write_run(tmp_path / "run", rows, {"dataset": "math500"})
    result = runner.invoke(app, ["grade", str(run)])
    _assert_clean_failure(result, "missing field 'gold' (the run is not graded yet")


def test_run_folder_uses_the_bench_reader(runner, tmp_path):
    # A killed run leaves a torn last line and may repeat a sample: the bench's
    # reader drops both, so the run still grades.
    run = write_run(tmp_path / "run", RUN_ROWS[:2], {"dataset": "math500"})
    with (run / "samples.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(RUN_ROWS[0]) + "\n" + '{"problem_id": "p9", "resp')
    result = runner.invoke(app, ["grade", str(run), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["datasets"]["math500"]["num_graded"] == 2


def test_plain_file_with_a_torn_line_is_refused(runner, tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"response": "x', encoding="utf-8")
    _assert_clean_failure(runner.invoke(app, ["grade", str(path)]), "preds.jsonl:2: malformed JSON")
