"""Trace replay without an engine: the trace loader, forced decoding's row bookkeeping, the
top-k KL bound and the KV budget list."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from memshare.bench.config import parse_budgets
from memshare.bench.fidelity import compare_positions, topk_kl
from memshare.errors import UserError
from memshare.replay import load_traces


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_traces_load_with_kind_from_dataset(tmp_path):
    f = _write(tmp_path / "t.jsonl", [{"id": "1", "dataset": "aime24", "problem": "P", "answer": "7", "reasoning": "r"},
                                      {"id": "2", "problem": "Q", "content": "c"}])
    traces = load_traces(f)
    assert [t.problem.kind for t in traces] == ["aime", "math"]
    assert traces[0].reasoning == "r" and traces[1].content == "c" and traces[0].problem.gold == "7"


@pytest.mark.parametrize("row", [{"problem": "P"}, {"reasoning": "r"}, {"problem": "P", "reasoning": "  "}])
def test_a_row_without_usable_fields_is_one_clear_error(tmp_path, row):
    with pytest.raises(UserError, match="row 1: a replay row needs 'problem'"):
        load_traces(_write(tmp_path / "t.jsonl", [row]))


def test_duplicate_ids_are_refused(tmp_path):
    rows = [{"id": "1", "problem": "P", "content": "a"}, {"id": "1", "problem": "Q", "content": "b"}]
    with pytest.raises(UserError, match="appears twice"):
        load_traces(_write(tmp_path / "t.jsonl", rows))


def test_budgets():
    assert parse_budgets(None) == (None,)
    assert parse_budgets("48, 64,96") == (48, 64, 96)
    for bad in ("4x", "64,64", "1"):
        with pytest.raises(UserError):
            parse_budgets(bad)


def test_forced_rows_follow_removes_adds_and_moves():
    import torch
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

    from memshare.engine.forcing import FORCED_KEY, ForcedTokens

    proc = ForcedTokens(None, torch.device("cpu"), False)
    out_a, out_b = [], [5]
    forced = SimpleNamespace(extra_args={FORCED_KEY: [3, 4, 1]})
    free = SimpleNamespace(extra_args=None)
    proc.update_state(BatchUpdate(3, [], [(0, forced, None, out_a), (1, free, None, []),
                                          (2, SimpleNamespace(extra_args={FORCED_KEY: [0, 2]}), None, out_b)], []))
    logits = proc.apply(torch.zeros(3, 6))
    assert logits[0].argmax() == 3 and torch.isinf(logits[0]).sum() == 5
    assert torch.all(logits[1] == 0)  # not forced
    assert logits[2].argmax() == 2  # one token already out: the second
    out_a.append(3)
    proc.update_state(BatchUpdate(3, [], [], [(0, 1, MoveDirectionality.SWAP)]))
    logits = proc.apply(torch.zeros(3, 6))
    assert logits[1].argmax() == 4 and torch.all(logits[0] == 0)
    proc.update_state(BatchUpdate(2, [1], [], [(2, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    logits = proc.apply(torch.zeros(3, 6))
    assert logits[0].argmax() == 2 and torch.all(logits[1] == 0) and torch.all(logits[2] == 0)


def _lp(ids, probs):
    return np.array([ids], np.int32), np.log(np.array([probs], np.float32))


def test_topk_kl_is_zero_for_equal_lists_and_a_lower_bound_otherwise():
    p_ids, p_lp = _lp([1, 2, 3], [0.5, 0.3, 0.1])
    assert topk_kl(p_ids, p_lp, p_ids, p_lp)[0] == pytest.approx(0.0, abs=1e-6)
    q_ids, q_lp = _lp([2, 1, 4], [0.6, 0.2, 0.1])
    full_p = {1: 0.5, 2: 0.3, 3: 0.1, 4: 0.05, 5: 0.05}
    full_q = {1: 0.2, 2: 0.6, 3: 0.05, 4: 0.1, 5: 0.05}
    exact = sum(v * np.log(v / full_q[k]) for k, v in full_p.items())
    bound = topk_kl(p_ids, p_lp, q_ids, q_lp)[0]
    assert 0 < bound <= exact + 1e-9


def test_positions_after_the_first_share_are_counted_apart():
    ref = {"token_logprob": np.zeros(4), "top_ids": np.array([[1], [2], [3], [4]]),
           "top_logprobs": np.zeros((4, 1))}
    run = {**ref, "top_ids": np.array([[1], [2], [9], [4]])}
    n, agree, _kl, after, agree_after, _ = compare_positions(ref, run, start=2)
    assert (n, agree, after, agree_after) == (4, 3, 2, 1)


def test_suite_reasoning_finds_the_traces_in_the_data_dir_and_an_explicit_replay_wins(tmp_path, monkeypatch):
    import memshare.replay as replay
    from memshare.bench import OPTION_DEFAULTS, resolve_options

    given = {k: None for k in OPTION_DEFAULTS}
    (tmp_path / "r1_traces").mkdir()
    traces = _write(tmp_path / "r1_traces" / "deepseek-r1.jsonl", [{"problem": "P", "reasoning": "r"}])
    monkeypatch.setenv("MEMSHARE_DATA_DIR", str(tmp_path))
    opt = resolve_options("reasoning", given)
    assert opt["replay"] == str(traces) and "," in str(opt["kv_blocks"])
    assert set(opt["policy"].split(",")) == {"vanilla", "dense", "random", "memshare"}
    mine = _write(tmp_path / "mine.jsonl", [{"problem": "P", "content": "c"}])
    assert resolve_options("reasoning", {**given, "replay": str(mine)})["replay"] == str(mine)
    # Nowhere to be found: one clear error that names --replay.
    monkeypatch.setenv("MEMSHARE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(replay, "__file__", str(tmp_path / "a" / "b" / "replay.py"))
    with pytest.raises(UserError, match="--replay FILE"):
        resolve_options("reasoning", given)


def _run_dir(tmp_path, config, samples):
    run = tmp_path / "mine__m__dense__abc"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    return _write(run / "samples.jsonl", samples)


def test_a_runs_samples_replay_with_problems_from_its_config_and_thinking_split(tmp_path):
    data = _write(tmp_path / "mine.jsonl", [{"id": "a", "problem": "What is 2+2?", "answer": "4"},
                                            {"id": "b", "problem": "What is 3+3?", "answer": "6"}])
    samples = _run_dir(tmp_path, {"dataset": "mine", "data_file": str(data), "kind": "math"}, [
        {"problem_id": "a", "sample_index": 0, "response": "<think>2 and 2</think> It is \\boxed{4}."},
        {"problem_id": "a", "sample_index": 1, "response": "another sample"},
        {"problem_id": "b", "sample_index": 0, "response": "Just \\boxed{6}."}])
    traces = load_traces(samples)
    assert [t.problem.id for t in traces] == ["a", "b"]  # one trace a problem: sample 0
    assert traces[0].reasoning == "2 and 2" and traces[0].content == "It is \\boxed{4}."
    assert traces[1].reasoning == "" and traces[1].content == "Just \\boxed{6}."
    assert "What is 2+2?" in traces[0].problem.prompt and traces[0].problem.gold == "4"


def test_a_replay_runs_samples_replay_its_trace_file_and_bad_samples_are_one_clear_error(tmp_path):
    source = _write(tmp_path / "t.jsonl", [{"id": "1", "problem": "P", "reasoning": "r1"},
                                           {"id": "2", "problem": "Q", "reasoning": "r2"}])
    samples = _run_dir(tmp_path, {"dataset": "replay-t", "replay": str(source)},
                       [{"problem_id": "2", "sample_index": 0, "response": "r2"}])
    assert [(t.problem.id, t.reasoning) for t in load_traces(samples)] == [("2", "r2")]
    source.unlink()
    with pytest.raises(UserError, match="not there any more"):
        load_traces(samples)
    (samples.parent / "config.json").unlink()
    with pytest.raises(UserError, match="config.json beside it"):
        load_traces(samples)


def test_a_split_takes_the_choice_or_report_rows_before_the_limit(tmp_path):
    from memshare.replay import CHOICE_TRACES

    f = _write(tmp_path / "t.jsonl", [{"id": str(i), "problem": f"P{i}", "content": "c"} for i in range(20)])
    assert [t.problem.id for t in load_traces(f, split="choice")] == [str(i) for i in range(CHOICE_TRACES)]
    assert [t.problem.id for t in load_traces(f, split="report", limit=2)] == [str(CHOICE_TRACES), str(CHOICE_TRACES + 1)]
    assert len(load_traces(f)) == 20
    with pytest.raises(UserError, match="--split 'nope'"):
        load_traces(f, split="nope")
    with pytest.raises(UserError, match="no traces"):
        load_traces(_write(tmp_path / "short.jsonl", [{"problem": "P", "content": "c"}]), split="report")


def test_suite_reasoning_long_presets_the_studys_rule_and_explicit_options_win(tmp_path, monkeypatch):
    from memshare.bench import BenchConfig

    (tmp_path / "r1_traces").mkdir()
    _write(tmp_path / "r1_traces" / "deepseek-r1.jsonl", [{"problem": "P", "reasoning": "r"}])
    monkeypatch.setenv("MEMSHARE_DATA_DIR", str(tmp_path))
    cfg, budgets = BenchConfig.from_options(suite="reasoning-long")
    assert (cfg.split, cfg.match_random, cfg.max_tokens, len(budgets)) == ("report", "freed", 2048, 2)
    assert (cfg.sharing.share_delay_blocks, cfg.sharing.block_threshold, cfg.sharing.step_threshold) == (4, 0.6, 0.8)
    mine, _ = BenchConfig.from_options(suite="reasoning-long", split="all", match_random="affected",
                                       sharing={"share_delay_blocks": 0, "block_threshold": None})
    assert (mine.split, mine.match_random, mine.sharing.share_delay_blocks, mine.sharing.block_threshold) == (
        "all", "affected", 0, 0.6)
    plain, _ = BenchConfig.from_options(sharing={"share_delay_blocks": None, "block_threshold": None})
    assert (plain.split, plain.match_random, plain.sharing.share_delay_blocks, plain.sharing.block_threshold) == (
        "all", "affected", 0, 0.55)
    with pytest.raises(UserError, match="--split report chooses replay traces"):
        BenchConfig.from_options(split="report")
    with pytest.raises(UserError, match="--match-random 'steps'"):
        BenchConfig.from_options(match_random="steps")


def test_random_is_matched_on_affected_ratio_or_on_freed_memory_time():
    from memshare.bench import BenchConfig
    from memshare.bench.config import matched_rate

    measured = {"affected_ratio": 0.3, "block_steps_freed": 50, "eligible_block_steps": 400}
    assert matched_rate(measured, "affected") == 0.3 and matched_rate(measured, "freed") == 0.125
    assert matched_rate({"block_steps_freed": 0, "eligible_block_steps": 0}, "freed") == 0.0
    assert matched_rate({"affected_ratio": 0.3, "block_steps_freed": 9, "eligible_block_steps": 4}, "freed") == 1.0
    cfg = BenchConfig(match_random="freed")
    assert cfg.sharing_for("random", {"memshare": measured}).random_rate == 0.125
    assert BenchConfig().sharing_for("random", {"memshare": measured}).random_rate == 0.3
