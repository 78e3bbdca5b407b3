"""Reusing one engine across runs, without an engine: run order, engine keys, the pool's hold-out,
and the failure path of the engine process (``memshare.bench.engines``)."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from memshare.bench import BenchConfig, Engines, pool_capacity
from memshare.bench.run import run_order
from memshare.core.config import MemShareConfig
from memshare.engine.adapter import scheduler as vllm_scheduler
from memshare.engine.protocol import BatchSpec, EngineSettings, SamplingSpec
from memshare.engine.session import engine_key
from memshare.errors import UserError

BlockPool = pytest.importorskip("vllm.v1.core.block_pool").BlockPool


def test_reused_engines_run_each_engines_policies_together():
    cfg = BenchConfig(policies=("random", "memshare", "dense", "vanilla"), repeats=2)
    order = run_order(cfg, (48, 96))
    assert [p for _, _, p in order[:4]] == ["vanilla"] * 4  # plain vLLM's engine first, at both budgets
    assert [(b, r) for b, r, _ in order[:4]] == [(48, 0), (48, 1), (96, 0), (96, 1)]
    backend = order[4:]
    assert [p for _, _, p in backend[:3]] == ["dense", "memshare", "random"]  # memshare before its matched random
    assert [b for b, _, _ in backend] == [48] * 6 + [96] * 6
    assert [r for _, r, _ in backend[:6]] == [0, 0, 0, 1, 1, 1]  # repeats alternate within the engine


def test_engine_per_run_keeps_the_budget_major_order():
    cfg = BenchConfig(policies=("dense", "vanilla"), engine_per_run=True)
    assert run_order(cfg, (48, 96)) == [(48, 0, "vanilla"), (48, 0, "dense"), (96, 0, "vanilla"), (96, 0, "dense")]


def test_pool_capacity_is_the_largest_budget():
    assert pool_capacity((48, 96, 64)) == 96
    assert pool_capacity((None,)) is None and pool_capacity((48, None)) is None


def _spec(kv_blocks=48, sharing=MemShareConfig(), **engine) -> BatchSpec:
    settings = EngineSettings(model="m", kv_blocks=kv_blocks, max_model_len=256, **engine)
    return BatchSpec(settings, sharing, SamplingSpec(max_tokens=8), [], "samples.jsonl")


def test_engine_key_ignores_budget_and_policy_but_not_the_engine():
    base = engine_key(_spec())
    assert engine_key(_spec(kv_blocks=96)) == base
    assert engine_key(_spec(sharing=MemShareConfig(policy="random", step_threshold=0.5))) == base
    assert engine_key(_spec(sharing=None)) != base  # plain vLLM: no connector
    assert engine_key(_spec(engine_mode="sync")) != base
    assert engine_key(_spec(max_num_seqs=8)) != base
    assert engine_key(dataclasses.replace(_spec(), debug={"debug_poison_freed": True})) != base


def test_hold_out_shrinks_the_pool_the_scheduler_sees_and_gives_it_back():
    pool = BlockPool(17, False, 32)  # 16 blocks requests can hold, plus the null block
    assert vllm_scheduler.hold_out(pool, 6) == 10
    assert pool.get_num_free_blocks() == 10 and vllm_scheduler.num_kv_blocks(pool) == 10
    blocks = pool.get_new_blocks(4)
    assert vllm_scheduler.used_blocks(pool) == 4 and vllm_scheduler.leaked_blocks(pool) == 4
    with pytest.raises(ValueError, match="Cannot get"):
        pool.get_new_blocks(7)  # admission sees the smaller pool
    pool.free_blocks(blocks)
    assert vllm_scheduler.leaked_blocks(pool) == 0  # held blocks are no leak
    with pytest.raises(RuntimeError, match="already held"):
        vllm_scheduler.hold_out(pool, 1)
    assert vllm_scheduler.release_held(pool) == 6
    assert pool.get_num_free_blocks() == 16 and vllm_scheduler.num_kv_blocks(pool) == 16
    assert vllm_scheduler.leaked_blocks(pool) == 0 and vllm_scheduler.used_blocks(pool) == 0
    with pytest.raises(ValueError, match="cannot hold 17"):
        vllm_scheduler.hold_out(pool, 17)


def test_a_failed_run_names_itself_and_the_next_run_gets_a_new_engine(monkeypatch, tmp_path):
    # An engine process that dies at once stands in for a crash inside vLLM.
    import subprocess

    real = subprocess.Popen

    def dying(argv, **kw):
        return real([sys.executable, "-c", "import sys; sys.stderr.write('boom: engine died\\n'); sys.exit(3)"], **kw)

    monkeypatch.setattr(subprocess, "Popen", dying)
    engines = Engines(48)
    for _ in range(2):
        with pytest.raises(UserError, match=r"memshare \(--kv-blocks 48\): the engine process failed: boom"):
            engines.run(_spec(), lambda *a: None, "memshare (--kv-blocks 48)")
    assert engines.started == 2 and engines.runs == 0
    engines.close()
