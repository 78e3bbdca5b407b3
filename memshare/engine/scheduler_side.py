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

With async scheduling (``AsyncScheduler``), ``schedule(N+1)`` runs before step N's
``update_from_output``, so the remap rides in step N+2's metadata and step N+1, planned with the
old table, still reads the freed block. That is safe without deferring the free: a worker runs its
steps in order, so step N+1 has read the block before any step that could rewrite it runs
(docs/GPU.md, "Async scheduling").

Prefix caching stays on. vLLM hashes a request's blocks when it schedules their tokens, so
every block hashed up to step N was computed from exact KV. At a request's first share
(step N) its hashing stops for good (``vllm_scheduler.stop_prefix_caching``): from step N+1 its
forward reads approximate KV, and nothing it writes from then on may be served as an exact
cache hit. The block freed by a share keeps its hash: its KV is exact, so a later request with
the same prefix may still hit it.

Layers, as vLLM keeps BlockPool under KVCacheManager under Scheduler: the pool's own verbs
(``adapter.scheduler``), pins on blocks (``BlockPins``), freed block-steps per request
(``BlockStepsSince``) and step statistics (``StepStats``) under this class, which keeps one record per
request and drops it one way (finish, or preemption: the request starts over).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.core.policies.common import first_output_block
from memshare.core.policy import BlockRef, Proposal, SharingPolicy
from memshare.engine.adapter import scheduler as vllm_scheduler
from memshare.engine.freed import BlockStepsSince
from memshare.engine.messages import MemShareMeta, MemShareWorkerMeta, Remap, Stage2Job
from memshare.engine.pins import BlockPins
from memshare.engine.stats import StepStats

logger = logging.getLogger("memshare")
_MAX_REMEMBERED = 4096  # finished requests' first-share records kept (tests read them)


@dataclass(slots=True, eq=False)
class _Request:
    """What the scheduler side keeps of one request, from ``on_new_request`` to its finish."""

    request: Any  # vLLM's Request
    # Its ``num_preemptions`` when the policy was told of it; None: not yet, or preempted since.
    generation: int | None = None
    seen_full: int = -1  # full blocks the policy has been given
    # block index -> block index its (shared) KV was written at: a remapped entry reads another
    # block, whose keys were rotated for that block's position (the index itself where absent).
    written_at: dict[int, int] = field(default_factory=dict)
    freed: BlockStepsSince = field(default_factory=BlockStepsSince)
    # Its eligible output blocks (share delay applied) and since when: ``eligible_block_steps``.
    eligible: BlockStepsSince = field(default_factory=BlockStepsSince)
    num_eligible: int = 0
    first_output_block: int = 0


@dataclass(slots=True)
class _Pending:
    proposal: Proposal
    query_block: Any
    candidate_blocks: list[Any]
    candidate_positions: list[int]  # block index each candidate's KV was written at, at pin time
    generation: int


class SchedulerSide:
    """Drives a ``SharingPolicy`` from the scheduler process."""

    def __init__(self, config: MemShareConfig, policy: SharingPolicy, *, keep_prefix_hashing: bool = False) -> None:
        self.config = config
        self.policy = policy
        self.steps = StepStats()
        self.stats = policy.stats  # the run's one SharingStats: the policy and this side write it
        self.keep_prefix_hashing = keep_prefix_hashing  # negative control for tests only
        # req_id -> blocks it had hashed when its first share stopped its prefix caching (tests)
        self.hashed_at_first_share: dict[str, int] = {}
        # client's request id -> the first output position whose logits read shared KV (batch runner)
        self.first_shared_position: dict[str, int] = {}
        self.requests: dict[str, _Request] = {}  # arrival order: decides ties between queries
        self._pending: dict[int, _Pending] = {}  # Stage-2 job id -> what it waits on
        self._pins: BlockPins | None = None
        self._remaps: list[tuple[Remap, Any]] = []  # (remap, the block it released)
        self._job_ids = itertools.count()
        self._manager: Any = None
        self._pool: Any = None

    # ------------------------------------------------------------------ wiring
    def bind(self, kv_cache_manager: Any) -> None:
        self._manager = vllm_scheduler.single_type_manager(kv_cache_manager)
        self._pool = vllm_scheduler.block_pool(kv_cache_manager)
        self._caching = vllm_scheduler.prefix_caching_enabled(self._pool)
        self._pins = BlockPins(self._pool, self.stats)

    def on_new_request(self, request: Any) -> None:
        self.requests[request.request_id] = _Request(request)

    def request_finished(self, request: Any) -> None:
        self._drop(request.request_id, finished=True)

    # ------------------------------------------------------------------ per step
    def build_meta(self, scheduler_output: Any) -> MemShareMeta:
        scheduled = vllm_scheduler.scheduled_req_ids(scheduler_output)
        preempted = vllm_scheduler.preempted_req_ids(scheduler_output)
        self.steps.record(len(scheduled), vllm_scheduler.used_blocks(self._pool), len(preempted))
        for req_id in preempted:
            self._drop(req_id, finished=False)

        # NOTE: a released block may still be read: a share in the same step took it, or it is a
        # prefix-cache entry (exact KV) that a later request may hit. Only a block that is free
        # and unhashed now is named as freed (the test switch that poisons freed blocks relies on it).
        meta = MemShareMeta(remaps=[r if vllm_scheduler.is_free_and_unhashed(old) else replace(r, freed_block_id=-1)
                                    for r, old in self._remaps])
        self._remaps = []
        if self.config.policy == "dense":
            return meta
        # Arrival order: decides ties between queries. Most steps fill no block of a request.
        for req_id, rec, num_full in vllm_scheduler.requests_with_new_full_blocks(self.requests, scheduled,
                                                                                  self.config.block_size):
            if rec.generation is None:
                view = vllm_scheduler.request_view(rec.request)
                rec.generation = view.num_preemptions
                rec.first_output_block = first_output_block(len(view.prompt_token_ids), self.config.block_size)
                self.policy.add_request(req_id, view.prompt_token_ids)
                if num_full == 0:
                    rec.seen_full = 0
                    continue
            rec.seen_full = num_full
            self._count_eligible(rec, num_full)
            for proposal in self.policy.on_tokens(req_id, vllm_scheduler.all_token_ids(rec.request), num_full):
                self._start(proposal, meta)
        return meta

    def apply_results(self, worker_meta: MemShareWorkerMeta | None) -> None:
        if worker_meta is None:
            return
        t0 = time.perf_counter()
        from memshare.core.stage2 import finish_rows

        jobs = [(job_id, rows) for job_id, rows in worker_meta.partials.items() if job_id in self._pending]
        flat = [row for _, rows in jobs for row in rows]  # one ``finish`` per step
        self.stats.add_stage2(len(jobs), len(flat), worker_meta.stage2_s)
        all_distances = finish_rows(self.config.metric, flat) if flat else []
        offset = 0
        for job_id, rows in jobs:
            pending = self._pending.pop(job_id)
            distances = all_distances[offset:offset + len(rows)]
            offset += len(rows)
            choice = self.policy.decide(pending.proposal, distances)
            if choice is not None:
                i = pending.proposal.candidates.index(choice)
                if self._still_valid(pending):
                    # NOTE: the position recorded at pin time: the candidate's own table entry may
                    # have been remapped since (earlier in this loop), its pinned block was not.
                    self._share(pending.proposal.query, choice, pending.candidate_blocks[i],
                                pending.candidate_positions[i])
                else:
                    self.stats.dropped_stale += 1
            self._pins.unpin([pending.query_block, *pending.candidate_blocks])
        self.stats.remap_s += time.perf_counter() - t0

    # ------------------------------------------------------------------ helpers
    def _start(self, proposal: Proposal, meta: MemShareMeta) -> None:
        query, *found = self._resolve_all([proposal.query, *proposal.candidates])
        if query is None or not self._pins.sole_owner(query):
            self.policy.cancel(proposal)
            return
        keep = [i for i, block in enumerate(found) if block is not None and block is not query]
        if not keep:
            self.policy.cancel(proposal)
            return
        if len(keep) < len(found):
            proposal = Proposal(proposal.query, tuple(proposal.candidates[i] for i in keep), proposal.needs_distance)
            found = [found[i] for i in keep]
        cands = proposal.candidates
        # The block index each candidate's KV was written at (another one once it is shared).
        records = self.requests
        positions = [rec.written_at.get(r.block_index, r.block_index) if (rec := records.get(r.req_id)) else
                     r.block_index for r in cands]
        if not proposal.needs_distance:
            self._share(proposal.query, cands[0], found[0], positions[0])
            return
        self._pins.pin([query, *found])
        job_id = next(self._job_ids)
        self._pending[job_id] = _Pending(proposal, query, found, positions,
                                         records[proposal.query.req_id].generation)
        meta.jobs.append(Stage2Job(job_id, vllm_scheduler.block_id(query), proposal.query.block_index,
                                   vllm_scheduler.block_ids(found), positions))

    def _resolve_all(self, refs: list[BlockRef]) -> list[Any]:
        """The block behind each reference, None where there is none (unknown request, past
        the table's end, a null block); each request's table is looked up once."""
        out, tables = [], {}
        for ref in refs:
            table = tables.get(ref.req_id)
            if table is None:
                rec = self.requests.get(ref.req_id)
                known = rec is not None and rec.generation is not None
                table = tables[ref.req_id] = vllm_scheduler.request_blocks(self._manager, ref.req_id) if known else []
            block = table[ref.block_index] if ref.block_index < len(table) else None
            out.append(None if block is None or vllm_scheduler.is_null(block) else block)
        return out

    def _still_valid(self, pending: _Pending) -> bool:
        ref = pending.proposal.query
        rec = self.requests.get(ref.req_id)
        if rec is None or rec.generation != pending.generation:
            return False
        if vllm_scheduler.num_preemptions(rec.request) != pending.generation:
            return False
        blocks = vllm_scheduler.request_blocks(self._manager, ref.req_id)
        return (ref.block_index < len(blocks) and blocks[ref.block_index] is pending.query_block
                and self._pins.sole_owner(pending.query_block))

    def _share(self, query: BlockRef, target_ref: BlockRef, target_block: Any, target_position: int) -> None:
        rec = self.requests[query.req_id]
        self._pins.taken(target_block)
        old = vllm_scheduler.replace_block(self._manager, self._pool, query.req_id, query.block_index, target_block)
        self._pins.dropped(old)
        self._remaps.append((Remap(query.req_id, query.block_index, vllm_scheduler.block_id(target_block),
                                   vllm_scheduler.block_id(old)), old))
        rec.written_at[query.block_index] = target_position
        # NOTE: the share takes effect from the next forward, which samples output position
        # ``num_output_tokens`` (this step's token is already appended). Kept over preemptions:
        # tokens sampled from approximate KV stay in the output.
        client_id = vllm_scheduler.external_request_id(query.req_id)
        if client_id not in self.first_shared_position:
            _remember(self.first_shared_position, client_id, vllm_scheduler.num_output_tokens(rec.request))
        rec.freed.add(self.steps.steps)
        if self._caching and query.req_id not in self.hashed_at_first_share:
            if self.keep_prefix_hashing:
                hashed = vllm_scheduler.num_hashed_blocks(self._manager, query.req_id)
            else:
                hashed = vllm_scheduler.stop_prefix_caching(self._manager, query.req_id)
                self.stats.prefix_caching_stopped += 1
            _remember(self.hashed_at_first_share, query.req_id, hashed)
        self.policy.on_shared(query, target_ref)

    def _count_eligible(self, rec: _Request, num_full: int) -> None:
        """Output blocks that any policy could share now (the share delay's rule, not the
        policy's own readiness) start counting toward ``eligible_block_steps``."""
        eligible = max(0, num_full - self.config.share_delay_blocks - rec.first_output_block)
        if eligible > rec.num_eligible:
            rec.eligible.add(self.steps.steps, eligible - rec.num_eligible)
            rec.num_eligible = eligible

    def _drop(self, req_id: str, *, finished: bool) -> None:
        """The one drop path. vLLM has freed the request's whole table: its shares save nothing more,
        and the policy forgets it. A preempted request keeps its record and starts over."""
        rec = self.requests.pop(req_id, None) if finished else self.requests.get(req_id)
        if rec is not None:
            self.stats.block_steps_freed += rec.freed.close(self.steps.steps)
            self.stats.eligible_block_steps += rec.eligible.close(self.steps.steps)
            rec.num_eligible = 0
            if rec.generation is not None:
                self.policy.remove_request(req_id)
        if finished:
            return
        if rec is not None:
            rec.generation, rec.seen_full = None, -1
            rec.written_at.clear()
        # NOTE: vLLM re-admits it with hashing on again (exact blocks, recomputed): a new share
        # must stop it again.
        self.hashed_at_first_share.pop(req_id, None)

    def outstanding_pins(self) -> int:
        return len(self._pins) if self._pins is not None else 0

    def report(self) -> dict[str, Any]:
        return {**self.steps.report(), **self.stats.report(self.steps.steps)}


def _remember(records: dict[str, int], key: str, value: int) -> None:
    """Keep ``records`` bounded: the oldest entry goes first."""
    if len(records) >= _MAX_REMEMBERED:
        del records[next(iter(records))]
    records[key] = value
