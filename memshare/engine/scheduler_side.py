"""Scheduler half of MemShare: Stage 1, pins, the remap and free, and run statistics.

Timeline of one block (synchronous scheduling):

* step N ``schedule()`` -> ``build_meta``: a block of request r became full (all its
  tokens' KV was written by earlier steps). The policy proposes candidates (Stage 1).
  Query and candidates are pinned (ref +1) so none can be reallocated before the
  decision, and a Stage-2 job goes to the workers in this step's metadata.
* step N on the worker, before the forward: distances are measured (Stage 2).
* step N ``update_from_output`` -> ``apply_results``: the policy decides; if the request
  still holds the query block at the same index and was not preempted meanwhile, the
  table entry is swapped to the matched block and the query block freed. Every pin is
  released on every path.
* step N+1 ``build_meta``: the remap travels to the workers, which patch their block
  table before the forward, so no read of the freed block can happen.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.core.policy import BlockRef, Proposal, SharingPolicy
from memshare.engine import adapter
from memshare.engine.messages import MemShareMeta, MemShareWorkerMeta, Remap, Stage2Job

logger = logging.getLogger("memshare")


@dataclass(slots=True)
class _Pending:
    proposal: Proposal
    query_block: Any
    candidate_blocks: list[Any]
    generation: int


@dataclass(slots=True)
class EngineStats:
    steps: int = 0
    running_sum: int = 0
    kv_used_sum: int = 0
    peak_kv_blocks: int = 0
    num_preemptions: int = 0
    freed_blocks: int = 0
    dropped_stale: int = 0
    remap_s: float = 0.0
    stage1_s: float = 0.0
    stage2_s: float = 0.0
    step_wall_s: float = 0.0

    @property
    def mean_running_requests(self) -> float:
        return self.running_sum / self.steps if self.steps else 0.0

    @property
    def kv_blocks_per_running(self) -> float | None:
        """Physical KV blocks in use per running request, averaged over steps (weighted by requests)."""
        return self.kv_used_sum / self.running_sum if self.running_sum else None


class SchedulerSide:
    """Drives a ``SharingPolicy`` from the scheduler process."""

    def __init__(self, config: MemShareConfig, policy: SharingPolicy) -> None:
        self.config = config
        self.policy = policy
        self.stats = EngineStats()
        self.requests: dict[str, Any] = {}
        self._generation: dict[str, int] = {}
        self._seen_full: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._pins: dict[int, int] = {}  # block_id -> pins held by pending jobs
        self._released: set[int] = set()  # shared-away blocks kept alive only by pins
        # req_id -> {block_index: block index its (shared) KV was written at}: a remapped entry
        # reads another block, whose keys were rotated for that block's position.
        self._written_at: dict[str, dict[int, int]] = {}
        self._remaps: list[Remap] = []
        self._job_ids = itertools.count()
        self._manager: Any = None
        self._pool: Any = None
        self._last_step_t: float | None = None

    # ------------------------------------------------------------------ wiring
    def bind(self, kv_cache_manager: Any) -> None:
        self._manager = adapter.single_type_manager(kv_cache_manager)
        self._pool = kv_cache_manager.block_pool
        if self.config.policy != "dense" and self._pool.enable_caching:
            # NOTE: a request that attends to shared (approximate) KV must never have its
            # later blocks served as exact prefix-cache hits; until that is handled we
            # refuse the combination instead of serving wrong cache hits.
            raise adapter.UserError("memshare sharing policies need prefix caching off "
                                    "(enable_prefix_caching=False / --no-enable-prefix-caching)")

    def on_new_request(self, request: Any) -> None:
        self.requests[request.request_id] = request

    def request_finished(self, request: Any) -> None:
        req_id = request.request_id
        self.requests.pop(req_id, None)
        if req_id in self._generation:
            self.policy.remove_request(req_id)
        self._generation.pop(req_id, None)
        self._seen_full.pop(req_id, None)
        self._written_at.pop(req_id, None)

    # ------------------------------------------------------------------ per step
    def build_meta(self, scheduler_output: Any) -> MemShareMeta:
        now = time.perf_counter()
        if self._last_step_t is not None:
            self.stats.step_wall_s += now - self._last_step_t
        self._last_step_t = now
        num_running = len(scheduler_output.num_scheduled_tokens)
        used = (self._pool.num_gpu_blocks - 1) - self._pool.get_num_free_blocks()
        if num_running:
            self.stats.steps += 1
            self.stats.running_sum += num_running
            self.stats.kv_used_sum += used
        self.stats.peak_kv_blocks = max(self.stats.peak_kv_blocks, used)
        self.stats.num_preemptions += len(scheduler_output.preempted_req_ids)
        for req_id in scheduler_output.preempted_req_ids:
            self._forget(req_id)

        meta = MemShareMeta(remaps=self._remaps)
        self._remaps = []
        if self.config.policy == "dense":
            return meta
        t0 = time.perf_counter()
        for req_id, request in self.requests.items():
            if req_id not in scheduler_output.num_scheduled_tokens:
                continue
            if req_id not in self._generation:
                self._generation[req_id] = request.num_preemptions
                self._seen_full[req_id] = 0
                self.policy.add_request(req_id, request.prompt_token_ids)
            num_full = request.num_computed_tokens // self.config.block_size
            if num_full <= self._seen_full[req_id]:
                continue
            self._seen_full[req_id] = num_full
            for proposal in self.policy.on_tokens(req_id, request.all_token_ids, num_full):
                self._start(proposal, meta)
        self.stats.stage1_s += time.perf_counter() - t0
        return meta

    def apply_results(self, worker_meta: MemShareWorkerMeta | None) -> None:
        if worker_meta is None:
            return
        t0 = time.perf_counter()
        self.stats.stage2_s += worker_meta.stage2_s
        import torch

        from memshare.core.stage2 import Stage2Partials, finish

        for job_id, rows in worker_meta.partials.items():
            pending = self._pending.pop(job_id, None)
            if pending is None:
                continue
            distances = finish(Stage2Partials(self.config.metric, torch.tensor(rows, dtype=torch.float32))).tolist()
            self.policy.stats.stage2_queries += 1
            self.policy.stats.stage2_candidates += len(rows)
            choice = self.policy.decide(pending.proposal, distances)
            shared = False
            if choice is not None:
                target = pending.candidate_blocks[pending.proposal.candidates.index(choice)]
                if self._still_valid(pending):
                    self._share(pending.proposal.query, choice, target)
                    shared = True
                else:
                    self.stats.dropped_stale += 1
            self._unpin([pending.query_block, *pending.candidate_blocks])
        self.stats.remap_s += time.perf_counter() - t0

    # ------------------------------------------------------------------ helpers
    def _start(self, proposal: Proposal, meta: MemShareMeta) -> None:
        query = self._resolve(proposal.query)
        if query is None or not self._sole_owner(query):
            self._drop(proposal)
            return
        cands, blocks = [], []
        for ref in proposal.candidates:
            block = self._resolve(ref)
            if block is not None and block is not query:
                cands.append(ref)
                blocks.append(block)
        if not cands:
            self._drop(proposal)
            return
        proposal = Proposal(proposal.query, tuple(cands), proposal.needs_distance)
        if not proposal.needs_distance:
            self._share(proposal.query, cands[0], blocks[0])
            return
        self._pin([query, *blocks])
        job_id = next(self._job_ids)
        self._pending[job_id] = _Pending(proposal, query, blocks, self._generation[proposal.query.req_id])
        meta.jobs.append(Stage2Job(job_id, query.block_id, proposal.query.block_index,
                                   [b.block_id for b in blocks], [self._position(r) for r in cands]))

    def _position(self, ref: BlockRef) -> int:
        """The block index the KV under ``ref`` was written at (differs once it is shared)."""
        return self._written_at.get(ref.req_id, {}).get(ref.block_index, ref.block_index)

    def _sole_owner(self, block: Any) -> bool:
        """Only its request holds ``block``; every other reference is one of our pins.

        NOTE: a block pinned as another job's candidate may still be shared away: the pin
        keeps it allocated with its exact KV, and if that job picks it, it takes a real
        reference to that exact content.
        """
        return block.ref_cnt == 1 + self._pins.get(block.block_id, 0)

    def _pin(self, blocks: list[Any]) -> None:
        """Hold blocks until a decision so they cannot be reallocated and overwritten."""
        self._pool.touch(blocks)
        for b in blocks:
            self._pins[b.block_id] = self._pins.get(b.block_id, 0) + 1

    def _unpin(self, blocks: list[Any]) -> None:
        for b in blocks:
            left = self._pins[b.block_id] - 1
            if left:
                self._pins[b.block_id] = left
            else:
                del self._pins[b.block_id]
        self._pool.free_blocks(blocks)
        for b in blocks:
            if b.block_id in self._released and b.ref_cnt == 0:
                self._released.discard(b.block_id)
                self.stats.freed_blocks += 1

    def _drop(self, proposal: Proposal) -> None:
        """Tell the policy a proposal will not be measured (releases its bookkeeping)."""
        self.policy.decide(proposal, [float("inf")] * len(proposal.candidates))

    def _resolve(self, ref: BlockRef) -> Any:
        request = self.requests.get(ref.req_id)
        if request is None or ref.req_id not in self._generation:
            return None
        blocks = adapter.request_blocks(self._manager, ref.req_id)
        if ref.block_index >= len(blocks):
            return None
        block = blocks[ref.block_index]
        return None if block.is_null else block

    def _still_valid(self, pending: _Pending) -> bool:
        ref = pending.proposal.query
        request = self.requests.get(ref.req_id)
        if request is None or self._generation.get(ref.req_id) != pending.generation:
            return False
        if request.num_preemptions != pending.generation:
            return False
        blocks = adapter.request_blocks(self._manager, ref.req_id)
        return (ref.block_index < len(blocks) and blocks[ref.block_index] is pending.query_block
                and self._sole_owner(pending.query_block))

    def _share(self, query: BlockRef, target_ref: BlockRef, target_block: Any) -> None:
        self._released.discard(target_block.block_id)  # a released block that is re-used is not freed
        old = adapter.replace_block(self._manager, self._pool, query.req_id, query.block_index, target_block)
        if old.ref_cnt == 0:
            self.stats.freed_blocks += 1
        else:
            self._released.add(old.block_id)
        self._remaps.append(Remap(query.req_id, query.block_index, target_block.block_id, old.block_id))
        self._written_at.setdefault(query.req_id, {})[query.block_index] = self._position(target_ref)
        self.policy.on_shared(query, target_ref)

    def _forget(self, req_id: str) -> None:
        """A preempted request restarts from scratch: drop its policy state."""
        if req_id in self._generation:
            self.policy.remove_request(req_id)
            self._generation.pop(req_id, None)
            self._seen_full.pop(req_id, None)
        self._written_at.pop(req_id, None)

    def outstanding_pins(self) -> int:
        return len(self._pending)

    def report(self) -> dict[str, Any]:
        s, p = self.stats, self.policy.stats
        steps = max(s.steps, 1)
        return {
            "affected_ratio": p.affected_ratio,
            "full_blocks": p.full_blocks,
            "shared_blocks": p.shared_blocks,
            "freed_blocks": s.freed_blocks,
            "peak_kv_blocks": s.peak_kv_blocks,
            "num_preemptions": s.num_preemptions,
            "mean_running_requests": s.mean_running_requests,
            "kv_blocks_per_running": s.kv_blocks_per_running,
            "engine_steps": s.steps,
            "stage1_candidates": p.stage1_candidates,
            "stage2_candidates": p.stage2_candidates,
            "matches": p.matches,
            "dropped_stale": s.dropped_stale,
            "stage1_ms_per_step": 1e3 * s.stage1_s / steps,
            "stage2_ms_per_step": 1e3 * s.stage2_s / steps,
            "remap_ms_per_step": 1e3 * s.remap_s / steps,
            "step_ms": 1e3 * s.step_wall_s / steps,
        }
