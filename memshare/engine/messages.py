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
    """Block ``block_index`` of ``req_id`` now reads physical block ``block_id``."""

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

    def aggregate(self, other: "MemShareWorkerMeta") -> "MemShareWorkerMeta":
        merged = dict(self.partials)
        for job_id, rows in other.partials.items():
            if job_id in merged:
                merged[job_id] = [[x + y for x, y in zip(a, b)] for a, b in zip(merged[job_id], rows)]
            else:
                merged[job_id] = rows
        return MemShareWorkerMeta(partials=merged, stage2_s=max(self.stage2_s, other.stage2_s))
