"""Worker half of MemShare: patch the block table, then measure Stage-2 distances.

Runs in ``handle_preemptions``, which the V1 model runner calls before it updates its
batch and runs the forward, so a remap is in place before any read of this step. Stage 2 is
launched there too (``memshare.engine.stage2_step``) and its sums are collected in
``take_results``, which vLLM calls after the forward was launched.

Only ``memshare`` measures distances: ``dense`` and ``random`` never build a KV reader, so they
start wherever vLLM does, whatever the cache layout or dtype.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from memshare.core.config import MemShareConfig
from memshare.engine.adapter import worker as vllm_worker
from memshare.engine.messages import MemShareMeta, MemShareWorkerMeta
from memshare.errors import UserError


class WorkerSide:
    def __init__(self, config: MemShareConfig, *, skip_remap: bool = False, poison_freed: bool = False) -> None:
        self.config = config
        self.skip_remap = skip_remap  # negative control for tests only
        self.poison_freed = poison_freed  # tests: freed blocks get garbage
        self.reader: Any = None  # memshare.engine.kv_reader.KVReader
        self.stage2: Any = None  # memshare.engine.stage2_step.Stage2Step
        self.runner: Any = None
        self._pending: Any = None  # Stage2Pending of this step
        self._partials: dict[int, list[list[float]]] = {}
        self._stage2_s = 0.0
        self.patched = 0
        self._kv_caches: Any = None
        self._vllm_config: Any = None

    def register_kv_caches(self, kv_caches: dict[str, torch.Tensor], vllm_config: Any) -> None:
        self._kv_caches, self._vllm_config = kv_caches, vllm_config
        self._model_config = vllm_config.model_config
        self._build()

    def bind_runner(self, runner: Any) -> None:
        vllm_worker.check_model_runner(runner)
        self.runner = runner
        self._build()

    def reconfigure(self, config: MemShareConfig) -> None:
        """The next run's settings, on an idle engine (``memshare.engine.session``): a fresh KV
        reader and Stage 2 for ``config``; the debug switches stay the engine's."""
        if self._pending is not None or self._partials:
            raise RuntimeError("memshare: the worker side was reconfigured with Stage-2 results outstanding")
        self.config = config
        self.reader = self.stage2 = None
        self.patched, self._stage2_s = 0, 0.0
        self._build()

    def _build(self) -> None:
        """The KV reader once the KV caches are registered; Stage 2 once the runner is bound too
        (``k_unrope`` needs the model's RoPE from it)."""
        if self._vllm_config is None:
            return
        vllm_worker.check_parallel(self._vllm_config, self.config.policy)
        measures = self.config.policy == "memshare"
        if self.reader is None and (measures or self.poison_freed):
            # ``kv`` needs no per-token K, so a poisoning-only reader is never refused for it.
            self.reader = vllm_worker.make_kv_reader(self._kv_caches, self._vllm_config,
                                                     self.config.distance if measures else "kv")
        if not measures or self.stage2 is not None:
            return
        if not self.config.distance.startswith("k_unrope"):
            self.stage2 = self._stage2(rope=None)
        elif self.runner is not None:
            self.stage2 = self._stage2(rope=vllm_worker.model_rope(self.runner, self._model_config))

    def _stage2(self, rope: Any) -> Any:
        from memshare.engine.stage2_step import Stage2Step

        return Stage2Step(self.reader, distance=self.config.distance, metric=self.config.metric, rope=rope,
                          max_gather_mb=self.config.stage2_max_gather_mb)

    def handle(self, meta: MemShareMeta) -> None:
        if meta.remaps and not self.skip_remap:
            if self.runner is None:
                raise UserError("memshare worker is not bound to a model runner: run vLLM with "
                                        "worker_cls=memshare.engine.worker.MemShareWorker")
            vllm_worker.wait_for_input_copies(self.runner)
            for remap in meta.remaps:
                if vllm_worker.patch_worker_block(self.runner, remap.req_id, remap.block_index, remap.block_id):
                    self.patched += 1
        if self.poison_freed and meta.remaps:
            for remap in meta.remaps:
                if remap.freed_block_id >= 0:
                    self.reader.fill(remap.freed_block_id, 3.0e3)
        if meta.jobs:
            if self.stage2 is None:
                raise UserError("memshare got Stage-2 jobs but has no KV reader: run vLLM with "
                                        "worker_cls=memshare.engine.worker.MemShareWorker")
            self._collect()
            t0 = time.perf_counter()
            with torch.inference_mode():
                self._pending = self.stage2.launch(meta.jobs)
            self._stage2_s += time.perf_counter() - t0

    def take_results(self) -> MemShareWorkerMeta | None:
        self._collect()
        if not self._partials and not self._stage2_s:
            return None
        out = MemShareWorkerMeta(partials=self._partials, stage2_s=self._stage2_s)
        self._partials, self._stage2_s = {}, 0.0
        return out

    def _collect(self) -> None:
        """Wait for the launched step's sums (the forward is already queued behind them)."""
        if self._pending is None:
            return
        t0 = time.perf_counter()
        self._partials.update(self._pending.result())
        self._pending = None
        self._stage2_s += time.perf_counter() - t0
