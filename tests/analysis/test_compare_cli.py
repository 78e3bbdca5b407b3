"""``memshare compare`` through Typer's CliRunner: bad input fails in one line; the packaged
model runs end to end on 2 prompts at a tiny size, writes its run folders, and resumes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("args, message", [
    (["--kv-budget", "1.5"], "--kv-budget values must be fractions in (0, 1)"),
    (["--kv-budget", "0.5,abc"], "--kv-budget must be a comma list of numbers"),
    (["--methods", "quest"], "unknown method quest"),
    (["--methods", "random-share"], "add memshare to --methods"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--max-tokens", "1"], "--max-tokens must be at least 2"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(runner, tmp_path, args, message):
    result = runner.invoke(app, ["compare", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_names_every_method_and_the_budget(runner):
    result = runner.invoke(app, ["compare", "--help"])
    assert result.exit_code == 0
    for word in ("memshare", "random-share", "streaming", "h2o", "snapkv", "rkv", "random-evict", "--kv-budget",
                 "Quest"):
        assert word in result.stdout


@pytest.mark.slow
def test_compare_runs_on_two_prompts_and_resumes(tmp_path):
    args = ["compare", "--limit", "2", "--max-tokens", "16", "--kv-budget", "0.95", "--methods",
            "memshare,random-share,streaming,rkv", "--out", str(tmp_path), "--threads", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    methods = [(m["method"], m["kv_budget"]) for m in r["methods"]]
    assert methods == [("dense", 1.0), ("memshare", 0.95), ("random-share", 0.95), ("streaming", 0.95), ("rkv", 0.95)]
    for m in r["methods"]:
        assert {"method", "kv_budget", "kv_fraction", "top1_agreement", "kl", "same_answer_as_dense", "loop_or_cap",
                "mean_output_tokens"} <= set(m)
        assert 0.0 < m["kv_fraction"] <= 1.0 and 0.0 <= m["top1_agreement"] <= 1.0 and m["mean_output_tokens"] <= 16
    for m in r["methods"][3:]:  # eviction: within budget on both prompts
        assert m["budget_met"] == "2/2" and m["kv_fraction"] <= 0.95
    png = tmp_path / "compare.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = sorted(tmp_path.glob("*__rkv@0.95__*/samples.jsonl"))
    assert len(samples) == 1 and len(samples[0].read_text().splitlines()) == 2
    again = CliRunner().invoke(app, [*args[:-1], "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["methods"] == r["methods"]  # resumed, nothing rerun
    assert len(samples[0].read_text().splitlines()) == 2
