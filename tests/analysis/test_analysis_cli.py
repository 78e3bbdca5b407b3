"""``memshare analyze`` through Typer's CliRunner: bad input fails in one line; the real
packaged model runs end to end at a tiny size (slow)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--step-thresholds", "0.5,1.5"], "--step-thresholds values must be in [0, 1]"),
    (["--block-thresholds", "2.5"], "--block-thresholds values must be in [0, 2]"),
    (["--block-thresholds", "0.5,abc"], "--block-thresholds must be a comma list of numbers"),
    (["--fidelity", "--distance", "q"], "--distance must be one of"),
    (["--fidelity", "--policies", "random"], "add memshare to --policies"),
    (["--fidelity", "--policies", "memshare,dense"], "unknown policy dense"),
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
])
def test_bad_input_is_one_line_and_exit_2(runner, tmp_path, args, message):
    result = runner.invoke(app, ["analyze", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_replay_study_records_its_trace_file_not_the_default_dataset():
    from memshare.analysis.config import AnalyzeConfig

    d = AnalyzeConfig(replay="traces/deepseek-r1.jsonl", free_running=0, fidelity=True).to_dict()
    assert d["replay"] == "traces/deepseek-r1.jsonl" and d["dataset"] is None
    assert AnalyzeConfig(free_running=0).to_dict()["dataset"] == "math500"


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    return tmp_path_factory.mktemp("analyze")


@pytest.mark.slow
def test_premise_on_the_packaged_model(shared_out):
    result = CliRunner().invoke(app, ["analyze", "--limit", "1", "--max-tokens", "96", "--out", str(shared_out),
                                      "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "k_unrope" in result.stdout and "Spearman" in result.stdout
    png = shared_out / "trace_0.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    s = json.loads((shared_out / "summary.json").read_text())
    assert s["num_traces"] == 1 and s["traces"][0]["output_tokens"] <= 96 and s["traces"][0]["prompt_tokens"] > 0
    assert s["num_blocks"] >= 1 and s["num_pairs"] == s["num_blocks"] * (s["num_blocks"] - 1) // 2
    for name, d in s["distances"].items():
        assert 0.0 <= d["median_all"] <= 2.0 if d["median_all"] is not None else s["num_pairs"] == 0, name
        assert all(0.0 <= f <= 1.0 for f in d["share_fraction"].values())
    assert 0.0 <= s["repetition"]["repeated_block_aligned"] <= s["repetition"]["repeated_any_offset"] <= 1.0
    assert (shared_out / "traces.json").is_file()


@pytest.mark.slow
def test_fidelity_on_the_packaged_model(shared_out):
    result = CliRunner().invoke(app, ["analyze", "--fidelity", "--limit", "1", "--max-tokens", "96", "--out",
                                      str(shared_out), "--threads", "1", "--step-thresholds", "0",
                                      "--block-thresholds", "2", "--free-running", "1", "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert json.loads((shared_out / "fidelity.json").read_text())["teacher_forcing"] == r["teacher_forcing"]
    memshare, random = r["teacher_forcing"]
    assert memshare["policy"] == "memshare" and random["policy"] == "random"
    assert random["random_rate"] == pytest.approx(min(1.0, memshare["affected_ratio"]))
    assert random["shared_blocks"] == memshare["shared_blocks"]  # matched by seed (match_random)
    # thresholds 0 / 2 accept any Stage-1 candidate: the second output block shares with the first
    assert memshare["shared_blocks"] >= 1 and memshare["full_blocks"] >= 2
    assert memshare["tokens"] == r["traces"][0]["output_tokens"] and 0 < memshare["tokens_after_first_share"]
    assert 0.0 <= memshare["top1_agreement"] <= 1.0 and memshare["mean_kl"] >= 0.0
    dense, *free = r["free_running"]
    assert dense["policy"] == "dense" and dense["diverged"] == 0 and len(free) == 2
    assert all(f["prompts"] == 1 and f["runs"][0]["output_tokens"] <= 96 for f in free)
