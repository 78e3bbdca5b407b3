"""SchedulerSide bookkeeping with a fake block pool and a scripted policy (no engine, fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from memshare.core.config import MemShareConfig
from memshare.core.policy import BlockRef, Proposal
from memshare.core.stats import SharingStats
from memshare.engine.messages import MemShareWorkerMeta
from memshare.engine.scheduler_side import SchedulerSide

BS = 32


@dataclass(eq=False)
class Block:
    block_id: int
    ref_cnt: int = 1
    is_null: bool = False
    block_hash: object = None


class Pool:
    def __init__(self, n: int) -> None:
        self.num_gpu_blocks = n + 1
        self.blocks = [Block(i, ref_cnt=0) for i in range(n)]
        self.enable_caching = False

    def touch(self, blocks):
        for b in blocks:
            b.ref_cnt += 1

    def free_blocks(self, blocks):
        for b in blocks:
            b.ref_cnt -= 1

    def get_num_free_blocks(self):
        return sum(1 for b in self.blocks if b.ref_cnt == 0)


@dataclass
class ScriptedPolicy:
    """Proposes what the test queues; accepts the first candidate at distance 0."""

    queue: list[Proposal] = field(default_factory=list)
    stats: SharingStats = field(default_factory=SharingStats)
    shared: list[tuple[BlockRef, BlockRef]] = field(default_factory=list)

    def add_request(self, req_id, prompt):
        pass

    def remove_request(self, req_id):
        pass

    def on_tokens(self, req_id, tokens, num_full):
        out, self.queue = self.queue, []
        return out

    def decide(self, proposal, distances):
        return proposal.candidates[0] if distances and distances[0] == 0.0 else None

    def on_shared(self, query, target):
        self.shared.append((query, target))


def setup(num_blocks: int = 4):
    pool = Pool(16)
    blocks = pool.blocks[10:10 + num_blocks]
    for b in blocks:
        b.ref_cnt = 1
    manager = SimpleNamespace(req_to_blocks={"r": list(blocks)})
    kv_manager = SimpleNamespace(coordinator=SimpleNamespace(single_type_managers=[manager]), block_pool=pool)
    policy = ScriptedPolicy()
    side = SchedulerSide(MemShareConfig(policy="memshare", block_size=BS), policy)
    side.bind(kv_manager)
    request = SimpleNamespace(request_id="r", num_computed_tokens=num_blocks * BS, prompt_token_ids=[1],
                              num_output_placeholders=0,
                              all_token_ids=[1] * num_blocks * BS, num_preemptions=0)
    side.on_new_request(request)
    return side, policy, pool, manager


def step(side, policy, proposal, accept: bool):
    policy.queue = [proposal]
    side.requests["r"].seen_full = 0  # let the request be looked at again
    meta = side.build_meta(SimpleNamespace(num_scheduled_tokens={"r": 1}, preempted_req_ids=[]))
    (job,) = meta.jobs
    rows = [[0.0 if accept else 4.0, 1.0] for _ in job.candidate_block_ids]
    side.apply_results(MemShareWorkerMeta(partials={job.job_id: rows}, stage2_s=0.0))
    return job


def test_a_shared_entry_is_measured_at_the_position_its_kv_was_written():
    side, policy, pool, manager = setup()
    job = step(side, policy, Proposal(BlockRef("r", 2), (BlockRef("r", 1),), True), accept=True)
    assert (job.query_block_index, job.candidate_block_indices) == (2, [1])
    assert manager.req_to_blocks["r"][2] is pool.blocks[11]  # entry 2 now reads block 1's KV
    # Entry 2 as a candidate: its KV was rotated for position 1, not 2.
    job = step(side, policy, Proposal(BlockRef("r", 3), (BlockRef("r", 2),), True), accept=True)
    assert job.candidate_block_ids == [11] and job.candidate_block_indices == [1]
    assert pool.blocks[11].ref_cnt == 3 and pool.blocks[12].ref_cnt == 0 and pool.blocks[13].ref_cnt == 0
    assert side.report()["freed_blocks"] == 2


def test_positions_are_forgotten_with_the_request():
    side, policy, _, _ = setup()
    step(side, policy, Proposal(BlockRef("r", 2), (BlockRef("r", 1),), True), accept=True)
    assert side.requests["r"].written_at == {2: 1}
    side.request_finished(SimpleNamespace(request_id="r"))
    assert "r" not in side.requests


def test_a_rejected_candidate_keeps_its_own_position_and_every_pin_is_released():
    side, policy, pool, _ = setup()
    job = step(side, policy, Proposal(BlockRef("r", 3), (BlockRef("r", 0), BlockRef("r", 2)), True), accept=False)
    assert job.candidate_block_indices == [0, 2]
    assert [b.ref_cnt for b in pool.blocks[10:14]] == [1, 1, 1, 1] and side.outstanding_pins() == 0


def test_eligible_block_steps_count_every_output_block_from_the_step_the_share_delay_allows():
    side, policy, _, _ = setup()
    side.config = MemShareConfig(policy="memshare", block_size=BS, share_delay_blocks=1)
    request = side.requests["r"].request
    request.prompt_token_ids = [1] * (BS + 1)  # blocks 0 and 1 hold prompt tokens: output starts at 2
    steps = {}
    for step_no, full in enumerate((2, 3, 4, 5, 5, 5), start=1):
        request.num_computed_tokens = full * BS
        side.build_meta(SimpleNamespace(num_scheduled_tokens={"r": 1}, preempted_req_ids=[]))
        steps[step_no] = side.requests["r"].num_eligible
    # Output block 2 is eligible once block 3 is full too (step 3), block 3 at step 4, block 4
    # never before the finish: delay 1 keeps the newest full block exact.
    assert steps == {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2}
    side.request_finished(SimpleNamespace(request_id="r"))
    # Finished after step 6: block 2 was eligible from step 3 (3 steps), block 3 from step 4 (2 steps).
    assert side.report()["eligible_block_steps"] == (6 - 3) + (6 - 4)
    assert side.report()["block_steps_freed"] == 0
