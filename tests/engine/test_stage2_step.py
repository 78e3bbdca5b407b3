"""Stage 2 as the worker runs a step: batched, chunked, and equal to the per-job reference."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memshare.core.rope import RopeSpec, rotate
from memshare.core.stage2 import Stage2Partials, block_positions, finish, stage2_partials
from memshare.engine.kv_reader import KVCacheFacts, LayerFacts, make_kv_reader
from memshare.engine.messages import MemShareWorkerMeta, Stage2Job
from memshare.engine.stage2_step import Stage2Step, plan_step
from tests.engine.kv_views import GPU_LAYOUTS, build_views

BS, H, D, L, NUM_BLOCKS = 16, 4, 16, 3, 24
ROPE = RopeSpec(1.0 / 10000 ** (torch.arange(0, D, 2).float() / D))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rotated_cache(device="cpu", heads=range(H)):
    """A GPU-layout cache whose K carries RoPE for each block's own position (block id = index here)."""
    heads = list(heads)
    views = build_views(GPU_LAYOUTS[0], dtype=torch.float32, block_size=BS, num_kv_heads=len(heads), head_size=D,
                        num_layers=L, num_blocks=NUM_BLOCKS, device=device)
    g = torch.Generator().manual_seed(3)
    k = torch.randn(NUM_BLOCKS, L, H, BS, D, generator=g)
    v = torch.randn(NUM_BLOCKS, L, H, BS, D, generator=g)
    k[7], v[7] = k[2], v[2]  # a true duplicate, written at another position
    k = rotate(k, block_positions(list(range(NUM_BLOCKS)), BS).view(NUM_BLOCKS, 1, 1, BS), ROPE.inv_freq)
    k, v = k[:, :, heads], v[:, :, heads]
    for i, view in enumerate(views.values()):
        key_cache, value_cache = view.transpose(1, 2).split(D, dim=-1)  # (B, T, H, D)
        key_cache.copy_(k[:, i].transpose(1, 2))
        value_cache.copy_(v[:, i].transpose(1, 2))
    layers = tuple(LayerFacts(n, "FLASH_ATTN", len(heads), D, D) for n in views)
    return views, KVCacheFacts("cuda", BS, layers), k, v


def jobs(n, seed=0, max_c=8):
    rng = random.Random(seed)
    out = []
    for j in range(n):
        q = rng.randrange(NUM_BLOCKS)
        cands = rng.sample([b for b in range(NUM_BLOCKS) if b != q], rng.randint(1, max_c))
        out.append(Stage2Job(j, q, q, cands, cands))
    return out


def reference(k, v, job, distance, metric):
    c = job.candidate_block_ids
    return stage2_partials(k[job.query_block_id], v[job.query_block_id], k[c], v[c], distance=distance, metric=metric,
                           q_pos=block_positions(job.query_block_index, BS), c_pos=block_positions(c, BS),
                           rope=ROPE).sums


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("distance", ["kv", "k", "v", "k_unrope", "k_unrope_v"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_step_equals_the_per_job_reference(distance, metric, device):
    views, facts, k, v = rotated_cache(device)
    step = Stage2Step(make_kv_reader(views, facts, distance), distance=distance, metric=metric, rope=ROPE,
                      max_gather_mb=256)
    batch = jobs(12)
    got = step.launch(batch).result()
    assert list(got) == [j.job_id for j in batch]
    for job in batch:
        torch.testing.assert_close(torch.tensor(got[job.job_id]), reference(k, v, job, distance, metric),
                                   rtol=1e-5, atol=1e-3)


def test_a_duplicate_written_elsewhere_is_at_distance_zero_only_with_rope_undone():
    views, facts, k, v = rotated_cache()
    job = Stage2Job(0, 7, 7, [2, 3], [2, 3])
    for distance, zero in (("k_unrope", True), ("k", False)):
        step = Stage2Step(make_kv_reader(views, facts, distance), distance=distance, metric="euclidean", rope=ROPE,
                          max_gather_mb=256)
        d = finish(Stage2Partials("euclidean", torch.tensor(step.launch([job]).result()[0])))
        assert (d[0] < 1e-3) == zero and d[1] > 0.5


def test_a_small_cap_splits_the_step_into_chunks_with_the_same_sums():
    views, facts, k, v = rotated_cache()
    reader = make_kv_reader(views, facts, "k_unrope")
    batch = jobs(20, seed=1)
    whole = Stage2Step(reader, distance="k_unrope", metric="euclidean", rope=ROPE, max_gather_mb=1024)
    block_mb = whole.block_bytes / 2**20
    small = Stage2Step(reader, distance="k_unrope", metric="euclidean", rope=ROPE, max_gather_mb=12 * block_mb)
    _, chunks = plan_step(batch, block_bytes=small.block_bytes, max_bytes=small.max_bytes)
    assert len(chunks) > 3
    a, b = whole.launch(batch).result(), small.launch(batch).result()
    assert a.keys() == b.keys()
    for job_id in a:
        torch.testing.assert_close(torch.tensor(a[job_id]), torch.tensor(b[job_id]), rtol=1e-6, atol=1e-4)


def test_plan_keeps_chunks_under_the_cap_and_gathers_each_block_once():
    batch = jobs(40, seed=2)
    index, chunks = plan_step(batch, block_bytes=1, max_bytes=30)
    assert [c.first_job for c in chunks][0] == 0 and chunks[-1].end_job == len(batch)
    assert all(a.end_job == b.first_job for a, b in zip(chunks, chunks[1:]))
    assert sum(c.num_pairs for c in chunks) == sum(len(j.candidate_block_ids) for j in batch)
    for c in chunks:
        one_job = c.end_job - c.first_job == 1
        assert one_job or c.num_blocks + 2 * c.num_pairs <= 30
        ids, pos = index[c.offset:c.offset + c.num_blocks], index[c.offset + c.num_blocks:c.offset + 2 * c.num_blocks]
        assert len(set(zip(ids.tolist(), pos.tolist()))) == c.num_blocks  # distinct (block, position)
    assert index.size == sum(c.size for c in chunks)


def test_a_job_larger_than_the_cap_is_measured_alone():
    batch = [Stage2Job(0, 1, 1, [2], [2]), Stage2Job(1, 3, 3, list(range(4, 12)), list(range(4, 12))),
             Stage2Job(2, 1, 1, [2], [2])]
    _, chunks = plan_step(batch, block_bytes=1, max_bytes=5)
    assert [(c.first_job, c.end_job) for c in chunks] == [(0, 1), (1, 2), (2, 3)]


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def test_tensor_ops_per_step_do_not_grow_with_the_number_of_jobs():
    views, facts, _, _ = rotated_cache()
    step = Stage2Step(make_kv_reader(views, facts, "k_unrope"), distance="k_unrope", metric="euclidean", rope=ROPE,
                      max_gather_mb=1024)
    counts = []
    for n in (1, 32):
        with _CountOps() as ops:
            step.launch(jobs(n, seed=n)).result()
        counts.append(ops.n)
    assert counts[0] == counts[1] < 60, counts


# --------------------------------------------------------------------------- tensor parallel


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_two_ranks_partial_sums_aggregate_to_the_all_heads_distance(metric):
    """Each rank holds half the KV heads; vLLM's KVOutputAggregator adds their metadata."""
    from vllm.distributed.kv_transfer.kv_connector.utils import KVOutputAggregator
    from vllm.v1.outputs import KVConnectorOutput, ModelRunnerOutput

    batch = jobs(6, seed=4)
    metas = []
    for heads in (range(0, H // 2), range(H // 2, H)):
        views, facts, _, _ = rotated_cache(heads=heads)
        step = Stage2Step(make_kv_reader(views, facts, "k_unrope_v"), distance="k_unrope_v", metric=metric,
                          rope=ROPE, max_gather_mb=256)
        metas.append(MemShareWorkerMeta(partials=step.launch(batch).result(), stage2_s=0.1))
    outputs = [ModelRunnerOutput(req_ids=[], req_id_to_index={},
                                 kv_connector_output=KVConnectorOutput(kv_connector_worker_meta=m)) for m in metas]
    merged = KVOutputAggregator(expected_finished_count=2).aggregate(outputs).kv_connector_output.kv_connector_worker_meta
    _, _, k, v = rotated_cache()
    for job in batch:
        full = finish(Stage2Partials(metric, reference(k, v, job, "k_unrope_v", metric)))
        got = finish(Stage2Partials(metric, torch.tensor(merged.partials[job.job_id])))
        torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-5)


def test_aggregate_refuses_ranks_that_disagree():
    a = MemShareWorkerMeta(partials={1: [[1.0, 2.0]], 2: [[1.0, 1.0], [2.0, 2.0]]})
    with pytest.raises(ValueError, match="different Stage-2 jobs"):
        a.aggregate(MemShareWorkerMeta(partials={1: [[1.0, 2.0]]}))
    with pytest.raises(ValueError, match=r"job 2: row lengths \[2, 2\] vs \[2\]"):
        a.aggregate(MemShareWorkerMeta(partials={1: [[1.0, 2.0]], 2: [[1.0, 1.0]]}))
    with pytest.raises(ValueError, match="shape of Stage-2 job 1"):
        a.aggregate(MemShareWorkerMeta(partials={1: [[1.0, 2.0, 3.0]], 2: [[1.0, 1.0], [2.0, 2.0]]}))
    assert a.aggregate(a).partials == {1: [[2.0, 4.0]], 2: [[2.0, 2.0], [4.0, 4.0]]}
