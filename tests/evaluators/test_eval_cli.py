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
    assert summary["datasets"]["math500"] == {"num_graded": 2, "num_correct": 1, "accuracy": 0.5}
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
        "datasets": {"aime24": {"num_graded": 2, "num_correct": 1, "accuracy": 0.5}},
        "disagreements": [],
    }


def test_rows_without_dataset_are_grouped_by_kind(runner, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"response": "\\boxed{C}", "gold": "C", "kind": "gpqa"}])
    result = runner.invoke(app, ["grade", str(path), "--json", "--quiet"])
    assert json.loads(result.stdout)["datasets"] == {"gpqa": {"num_graded": 1, "num_correct": 1, "accuracy": 1.0}}


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
