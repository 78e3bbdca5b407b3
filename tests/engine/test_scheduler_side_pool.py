"""SchedulerSide on vLLM's real ``BlockPool``: share, preempt, abort and finish in every order.

No engine: requests are block lists allocated from the pool the way vLLM's KV manager does
(``get_new_blocks``) and freed the way it does (``free_blocks`` of the reversed list). After
every sequence all blocks must be back in the free queue with ref count 0 and no pin left.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from memshare.core.config import MemShareConfig
from memshare.core.policy import BlockRef, Proposal
from memshare.engine.messages import MemShareWorkerMeta
from memshare.engine.scheduler_side import SchedulerSide
from tests.engine.test_scheduler_side_unit import ScriptedPolicy

BlockPool = pytest.importorskip("vllm.v1.core.block_pool").BlockPool

BS = 32
NUM_BLOCKS = 24


class Engine:
    """Just enough of vLLM's scheduler around a real BlockPool to drive SchedulerSide."""

    def __init__(self, caching: bool = False) -> None:
        self.pool = BlockPool(NUM_BLOCKS + 1, caching, BS)  # the pool keeps one as its null block
        self.manager = SimpleNamespace(req_to_blocks={}, num_cached_block={})
        kv = SimpleNamespace(coordinator=SimpleNamespace(single_type_managers=[self.manager]), block_pool=self.pool)
        self.policy = ScriptedPolicy()
        self.side = SchedulerSide(MemShareConfig(policy="memshare", block_size=BS), self.policy)
        self.side.bind(kv)
        self.requests: dict[str, SimpleNamespace] = {}
        self.preempted: list[str] = []

    def add(self, req_id: str, num_blocks: int) -> None:
        self.manager.req_to_blocks[req_id] = self.pool.get_new_blocks(num_blocks)
        req = SimpleNamespace(request_id=req_id, num_computed_tokens=num_blocks * BS, prompt_token_ids=[1],
                              all_token_ids=[1] * num_blocks * BS, num_preemptions=0,
                              num_output_placeholders=0)
        self.requests[req_id] = req
        self.side.on_new_request(req)

    def free(self, req_id: str) -> None:
        self.pool.free_blocks(reversed(self.manager.req_to_blocks.pop(req_id, [])))  # no-op once preempted

    def finish(self, req_id: str) -> None:
        """Finish or abort: vLLM frees the blocks, then tells the connector."""
        self.free(req_id)
        self.side.request_finished(self.requests.pop(req_id))

    def preempt(self, req_id: str) -> None:
        self.free(req_id)
        self.requests[req_id].num_preemptions += 1
        self.preempted.append(req_id)

    def schedule(self, proposals: list[Proposal]):
        if any(self.side.requests[r].generation is None for r in self.requests):
            self._step([])  # a step in which the scheduler side first sees every request
        return self._step(proposals)

    def _step(self, proposals: list[Proposal]):
        self.policy.queue = list(proposals)
        for r in self.requests:
            self.side.requests[r].seen_full = 0  # let every request be looked at again
        scheduled = {r: 1 for r in self.requests if r in self.manager.req_to_blocks}
        out = SimpleNamespace(num_scheduled_tokens=scheduled, preempted_req_ids=list(self.preempted))
        self.preempted = []
        return self.side.build_meta(out)

    def decide(self, meta, accept: bool) -> None:
        partials = {j.job_id: [[0.0 if accept else 4.0, 1.0] for _ in j.candidate_block_ids] for j in meta.jobs}
        self.side.apply_results(MemShareWorkerMeta(partials=partials, stage2_s=0.0))

    def assert_clean(self) -> None:
        for r in list(self.requests):
            if r in self.manager.req_to_blocks:
                self.finish(r)
        assert self.side.outstanding_pins() == 0
        assert self.pool.get_num_free_blocks() == NUM_BLOCKS
        assert all(b.ref_cnt == 0 for b in self.pool.blocks if not b.is_null)


def test_accepted_share_frees_the_query_block_and_both_finish_cleanly():
    eng = Engine()
    eng.add("r", 4)
    eng.add("s", 4)
    meta = eng.schedule([Proposal(BlockRef("r", 3), (BlockRef("s", 2),), True)])
    eng.decide(meta, accept=True)
    target = eng.manager.req_to_blocks["s"][2]
    assert eng.manager.req_to_blocks["r"][3] is target and target.ref_cnt == 2
    assert eng.pool.get_num_free_blocks() == NUM_BLOCKS - 7  # 8 allocated, one freed by the share
    (remap,) = eng.schedule([]).remaps
    assert (remap.req_id, remap.block_index, remap.block_id) == ("r", 3, target.block_id)
    assert eng.side.report()["freed_blocks"] == 1
    eng.assert_clean()


EVENTS = ("decide", "finish_r", "finish_s", "preempt_r")


def decided_in_order(order) -> bool:
    return "decide" in order


@pytest.mark.parametrize("order", list(itertools.permutations(EVENTS, 3)))
@pytest.mark.parametrize("accept", [True, False])
def test_every_order_of_decision_finish_abort_and_preemption_leaks_nothing(order, accept):
    eng = Engine()
    eng.add("r", 4)
    eng.add("s", 4)
    meta = eng.schedule([Proposal(BlockRef("r", 3), (BlockRef("s", 2), BlockRef("r", 1)), True)])
    assert len(meta.jobs) == 1
    decided = False
    for event in order:
        if event == "decide":
            eng.decide(meta, accept)
            decided = True
        elif event == "finish_r" and "r" in eng.requests:
            eng.finish("r")
        elif event == "finish_s" and "s" in eng.requests:
            eng.finish("s")
        elif event == "preempt_r" and "r" in eng.manager.req_to_blocks:
            eng.preempt("r")
            eng.schedule([])  # the next step tells the scheduler side
    if not decided:
        eng.decide(meta, accept)
    # A share happens only when r still held its query block, un-preempted, at the decision; s
    # finishing first does not matter: its block is pinned and r takes a reference to it.
    seq = order if decided_in_order(order) else (*order, "decide")
    r_gone = [seq.index(e) for e in ("finish_r", "preempt_r") if e in seq]
    expect_share = accept and seq.index("decide") < min(r_gone, default=len(seq))
    assert eng.side.report()["freed_blocks"] == int(expect_share)
    eng.assert_clean()


def test_a_candidate_remapped_earlier_in_the_same_step_is_measured_where_its_kv_was_written():
    """Two jobs decided in one step: s:2 is first shared away to s:0 (job 1), then chosen as
    r:3's target (job 2). r must read the pinned block (written at index 2), and record 2."""
    eng = Engine()
    eng.add("s", 4)
    eng.add("r", 4)
    pinned = eng.manager.req_to_blocks["s"][2]
    meta = eng.schedule([Proposal(BlockRef("s", 2), (BlockRef("s", 0),), True),
                         Proposal(BlockRef("r", 3), (BlockRef("s", 2),), True)])
    assert [j.candidate_block_indices for j in meta.jobs] == [[0], [2]]
    eng.decide(meta, accept=True)
    assert eng.manager.req_to_blocks["r"][3] is pinned
    assert eng.side.requests["r"].written_at[3] == 2  # not s's remapped position 0
    eng.assert_clean()


def test_with_prefix_caching_the_first_share_stops_hashing_of_that_request_only():
    eng = Engine(caching=True)
    eng.add("r", 4)
    eng.add("s", 4)
    eng.manager.num_cached_block.update(r=4, s=4)
    eng.decide(eng.schedule([Proposal(BlockRef("r", 3), (BlockRef("r", 1),), True)]), accept=True)
    assert eng.side.hashed_at_first_share == {"r": 4}
    assert eng.manager.num_cached_block["r"] > 10**9 and eng.manager.num_cached_block["s"] == 4
    eng.assert_clean()
