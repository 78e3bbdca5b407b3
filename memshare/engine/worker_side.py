"""Worker half of MemShare: patch the block table, then measure Stage-2 distances.

Runs in ``handle_preemptions``, which the V1 model runner calls before it updates its
batch and runs the forward, so a remap is in place before any read of this step.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from memshare.core.config import MemShareConfig
from memshare.engine import adapter
from memshare.engine.messages import MemShareMeta, MemShareWorkerMeta


class WorkerSide:
    def __init__(self, config: MemShareConfig, *, skip_remap: bool = False, poison_freed: bool = False) -> None:
        self.config = config
        self.skip_remap = skip_remap  # negative control for tests only
        self.poison_freed = poison_freed  # tests: freed blocks get garbage
        self.layout: adapter.KVLayout | None = None
        self.runner: Any = None
        self.rope: Any = None
        self._partials: dict[int, list[list[float]]] = {}
        self._stage2_s = 0.0
        self.patched = 0

    def register_kv_caches(self, kv_caches: dict[str, torch.Tensor], vllm_config: Any) -> None:
        model_config = vllm_config.model_config
        parallel = vllm_config.parallel_config
        num_kv_heads = model_config.get_num_kv_heads(parallel)
        head_size = model_config.get_head_size()
        self.layout = adapter.KVLayout(kv_caches, num_kv_heads, head_size, vllm_config.cache_config.block_size)
        if self.config.distance.startswith("k_unrope"):
            if not self.layout.per_token_k_verified:
                raise adapter.UserError("the RoPE-undone distance is verified only for the CPU 'vec' and GPU "
                                        "layouts; use --distance kv, k or v on this machine")
            from memshare.core.rope import rope_spec_from_hf_config

            # NOTE: vLLM's Llama/Qwen-family models use NeoX-style (rotate-half) RoPE.
            self.rope = rope_spec_from_hf_config(model_config.hf_config.to_dict(), is_neox=True)
            self.rope = type(self.rope)(self.rope.inv_freq.to(self.layout.device), self.rope.is_neox, self.rope.scaling)

    def bind_runner(self, runner: Any) -> None:
        adapter.check_model_runner(runner)
        self.runner = runner

    def handle(self, meta: MemShareMeta) -> None:
        if meta.remaps and not self.skip_remap:
            if self.runner is None:
                raise adapter.UserError("memshare worker is not bound to a model runner: run vLLM with "
                                        "worker_cls=memshare.engine.worker.MemShareWorker")
            for remap in meta.remaps:
                if adapter.patch_worker_block(self.runner, remap.req_id, remap.block_index, remap.block_id):
                    self.patched += 1
        if self.poison_freed and meta.remaps:
            for remap in meta.remaps:
                self.layout.fill(remap.freed_block_id, 3.0e3)
        if meta.jobs:
            t0 = time.perf_counter()
            self._partials.update(self._measure(meta))
            self._stage2_s += time.perf_counter() - t0

    def take_results(self) -> MemShareWorkerMeta | None:
        if not self._partials and not self._stage2_s:
            return None
        out = MemShareWorkerMeta(partials=self._partials, stage2_s=self._stage2_s)
        self._partials, self._stage2_s = {}, 0.0
        return out

    @torch.inference_mode()
    def _measure(self, meta: MemShareMeta) -> dict[int, list[list[float]]]:
        """Every job of the step: one gather, one vectorized pass per job, one device-to-host copy."""
        from memshare.core.stage2 import stage2_partials

        layout = self.layout
        bs, dev, distance = layout.block_size, layout.device, self.config.distance
        ids = sorted({b for j in meta.jobs for b in (j.query_block_id, *j.candidate_block_ids)})
        row = {b: i for i, b in enumerate(ids)}
        k_all, v_all = layout.gather(torch.tensor(ids, device=dev),  # (N, L, H, T, D); only what is used
                                     want_k=distance != "v", want_v=distance in ("kv", "v", "k_unrope_v"))
        arange = torch.arange(bs, device=dev)
        sums = []
        for job in meta.jobs:
            qi = row[job.query_block_id]
            ci = torch.tensor([row[b] for b in job.candidate_block_ids], device=dev)
            c_pos = torch.tensor(job.candidate_block_indices, device=dev)[:, None] * bs + arange
            sums.append(stage2_partials(
                None if k_all is None else k_all[qi], None if v_all is None else v_all[qi],
                None if k_all is None else k_all[ci], None if v_all is None else v_all[ci],
                q_pos=job.query_block_index * bs + arange, c_pos=c_pos,
                distance=distance, metric=self.config.metric, rope=self.rope,
            ).sums)
        rows = torch.cat(sums).tolist() if sums else []  # NOTE: one host sync per step, not per job
        out: dict[int, list[list[float]]] = {}
        at = 0
        for job in meta.jobs:
            n = len(job.candidate_block_ids)
            out[job.job_id] = rows[at:at + n]
            at += n
        return out
