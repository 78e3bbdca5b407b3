"""The CLI as a user drives it (Typer's CliRunner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app

runner = CliRunner()


def test_help_lists_the_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("bench", "grade", "analyze", "models", "datasets"):
        assert cmd in res.output


def test_models_json():
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0
    rows = {r["alias"]: r for r in json.loads(res.output)["models"]}
    assert rows["smollm2-135m"]["offline"] is True
    assert rows["qwq-32b"]["source"] == "Qwen/QwQ-32B"


def test_datasets_json():
    res = runner.invoke(app, ["datasets", "--json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.output)["datasets"]}
    assert set(rows) == {"math500", "aime24", "aime25", "gpqa-diamond"}
    assert rows["math500"]["loads_from"].startswith("packaged")


@pytest.mark.parametrize("args,match", [
    (["--limit", "0"], "--limit must be at least 1"),
    (["--dataset", "nope"], "unknown dataset"),
    (["--model", "nope"], "unknown model"),
    (["--data-file", "/no/such.jsonl"], "not found"),
    (["--policy", "dense,bogus"], "unknown policy bogus"),
    (["--step-threshold", "1.5"], "step_threshold must be a number in [0, 1]"),
    (["--block-size", "20"], "--block-size must be a positive multiple of 16"),
    (["--kv-blocks", "4", "--limit", "1"], "--kv-blocks 4 cannot hold one request"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--distance", "manhattan"], "distance must be one of"),
])
def test_bench_bad_input_is_one_clear_line(args, match, tmp_path):
    res = runner.invoke(app, ["bench", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    assert match in res.output
    assert "Traceback" not in res.output
    assert not any(tmp_path.iterdir()), "bad input must not leave results behind"


def test_non_numeric_option_is_rejected_without_traceback():
    res = runner.invoke(app, ["bench", "--max-tokens", "many"])
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_bench_runs_the_real_engine_and_resumes(tmp_path):
    args = ["bench", "--limit", "2", "--max-tokens", "64", "--policy", "dense,memshare", "--out", str(tmp_path),
            "--json", "--quiet"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    runs = {r["policy"]: r for r in json.loads(res.output[res.output.index("{"):])["runs"]}
    assert set(runs) == {"dense", "memshare"}
    for r in runs.values():
        assert r["num_prompts"] == 2 and r["num_graded"] == 2
        assert r["output_tokens"] > 0 and r["output_tokens_per_s"] > 0 and r["wall_s"] > 0
        assert r["leaked_blocks"] == 0 and r["peak_kv_blocks"] > 0
        assert r["num_preemptions"] == 0
        for key in ("affected_ratio", "stage1_ms_per_step", "stage2_ms_per_step", "mean_running_requests",
                    "accuracy", "num_correct", "mean_ttft_s", "mean_tpot_s", "ideal_gain", "loop_or_cap_share"):
            assert key in r
        assert 0 < r["kv_blocks_per_running"] <= r["peak_kv_blocks"]
    assert runs["dense"]["concurrency_gain"] == 1.0 and runs["memshare"]["concurrency_gain"] > 0
    samples = [json.loads(x) for x in open(f"{runs['dense']['run_dir']}/samples.jsonl")]
    assert len(samples) == 2 and all("extracted" in s and "reason" in s for s in samples)
    # Rerun: everything is finished, nothing is generated again, nothing is duplicated.
    res2 = runner.invoke(app, args)
    assert res2.exit_code == 0
    again = [json.loads(x) for x in open(f"{runs['dense']['run_dir']}/samples.jsonl")]
    assert again == samples
