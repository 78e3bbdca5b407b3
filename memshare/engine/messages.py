"""What the scheduler-side and worker-side halves of the connector send each other.

Plain picklable dataclasses: in multi-process vLLM they cross process boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorMetadata,
    KVConnectorWorkerMetadata,
)


@dataclass(slots=True)
class Stage2Job:
    """Measure the distance between one query block and its pinned candidates."""

    job_id: int
    query_block_id: int
    query_block_index: int
    candidate_block_ids: list[int]
    candidate_block_indices: list[int]


@dataclass(slots=True)
class Remap:
    """Block ``block_index`` of ``req_id`` now reads physical block ``block_id``.

    ``freed_block_id``: the block it read before, when that block is now free and no cache
    entry; -1 when something may still read it (taken by another share, or a prefix-cache hit).
    """

    req_id: str
    block_index: int
    block_id: int
    freed_block_id: int


@dataclass
class MemShareMeta(KVConnectorMetadata):
    remaps: list[Remap] = field(default_factory=list)
    jobs: list[Stage2Job] = field(default_factory=list)


@dataclass
class MemShareWorkerMeta(KVConnectorWorkerMetadata):
    """Stage-2 partial sums per job; tensor-parallel ranks combine by addition."""

    # job_id -> per-candidate rows of partial sums, shape (C, K); see memshare.core.stage2
    partials: dict[int, list[list[float]]] = field(default_factory=dict)
    stage2_s: float = 0.0

    def aggregate(self, other: MemShareWorkerMeta) -> MemShareWorkerMeta:
        """Add another tensor-parallel rank's partial sums (``KVOutputAggregator`` calls this).

        Every rank measures the same jobs on its own heads, so job sets and row shapes must
        match; anything else is a bug that would give wrong distances, so it raises.
        """
        if self.partials.keys() != other.partials.keys():
            only = sorted(self.partials.keys() ^ other.partials.keys())
            raise ValueError(f"memshare: tensor-parallel ranks returned different Stage-2 jobs (e.g. job {only[0]})")
        merged = {}
        for job_id, rows in self.partials.items():
            theirs = other.partials[job_id]
            if [len(r) for r in rows] != [len(r) for r in theirs]:
                raise ValueError(f"memshare: tensor-parallel ranks disagree on the shape of Stage-2 job {job_id}: "
                                 f"row lengths {[len(r) for r in rows]} vs {[len(r) for r in theirs]}")
            merged[job_id] = [[x + y for x, y in zip(a, b)] for a, b in zip(rows, theirs)]
        return MemShareWorkerMeta(partials=merged, stage2_s=max(self.stage2_s, other.stage2_s))
