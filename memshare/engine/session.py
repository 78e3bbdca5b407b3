"""One engine serving run after run (``memshare bench`` / ``ablate``), in the engine process.

An engine is built once for a ``key`` (everything of ``EngineSettings`` but the KV budget, plus
plain vLLM or the backend and its test switches) with the largest KV budget of the invocation.
Each run then starts from the state a fresh engine would have:

* the prefix cache is reset (vLLM's own call) and every request of the last run is finished;
* the backend gets the run's ``MemShareConfig``: a fresh policy, Stage-1 index, pins and
  statistics in the scheduler (``MemShareConnector.reconfigure``), and the same config on every
  worker rank through vLLM's RPC to workers (``MemShareWorker.memshare_reconfigure``);
* a smaller budget holds the difference out of the pool's free queue (``adapter``), so admission
  and preemption see the smaller pool; the run reports it as ``kv_blocks_total``;
* after the run the held blocks go back and ``leaked_blocks`` is checked as for a fresh engine.

``tests/engine/test_engine_reuse.py`` checks that a reused engine and fresh ones give identical
engine steps, tokens, shared blocks and top-1 agreement.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from memshare.engine.protocol import BatchSpec


def engine_key(spec: BatchSpec) -> str:
    """What decides which engine can serve ``spec``: its settings without the KV budget, whether
    the backend is loaded, and the backend's test switches."""
    settings = dataclasses.replace(spec.engine, kv_blocks=None).to_dict()
    return json.dumps({"engine": settings, "backend": spec.sharing is not None, "debug": spec.debug},
                      sort_keys=True, default=str)


class EngineSession:
    """An engine built for the first run's key with ``capacity`` KV blocks, serving runs of that key."""

    def __init__(self, spec: BatchSpec, capacity: int | None) -> None:
        from memshare.engine.llm import engine_facts, make_engine

        self.key = engine_key(spec)
        self.capacity = capacity
        t0 = time.perf_counter()
        self.engine, self._steps = make_engine(dataclasses.replace(spec.engine, kv_blocks=capacity), spec.sharing,
                                               debug=spec.debug)
        self.facts = engine_facts(self.engine)
        self.start_s = time.perf_counter() - t0
        self.runs = 0
        self._held = 0

    def begin(self, spec: BatchSpec) -> Any:
        """Make the engine fresh for ``spec``; return the run's step statistics."""
        from memshare.engine.adapter import engine as vllm_engine
        from memshare.engine.llm import scheduler_connector

        if engine_key(spec) != self.key:
            raise ValueError("this engine was built for other settings (engine_key)")
        budget = spec.engine.kv_blocks
        size = vllm_engine.pool_size(self.engine)
        if budget is not None and budget - 1 > size:
            raise ValueError(f"--kv-blocks {budget}: the engine was built with {size + 1} blocks")
        if self.runs:
            vllm_engine.reset_prefix_cache(self.engine)
            if spec.sharing is not None:
                scheduler_connector(self.engine).reconfigure(spec.sharing)
                self.engine.collective_rpc("memshare_reconfigure", args=(spec.sharing.to_dict(),))
        self._held = size - (budget - 1) if budget is not None else 0
        if self._held:
            vllm_engine.hold_out(self.engine, self._held)
        if spec.sharing is not None:
            return scheduler_connector(self.engine).scheduler_side.steps
        self._steps.reset(held_out=self._held)
        return self._steps

    def end(self) -> dict[str, Any]:
        """After a run: give the held blocks back; what the run's report says about the engine."""
        from memshare.engine.adapter import engine as vllm_engine

        if self._held:
            vllm_engine.release_held(self.engine)
        self._held = 0
        self.runs += 1
        return {"reused": self.runs > 1, "start_s": self.start_s if self.runs == 1 else 0.0,
                "pool_blocks": vllm_engine.pool_size(self.engine) + 1}
