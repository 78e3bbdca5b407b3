"""One engine step of Stage 2 on a worker: every job of the step, in bounded chunks, with no host
sync before the forward.

Host: the step's jobs become one int64 index array (the distinct blocks and the block index their
KV was written at, then the query and candidate rows of every pair), cut into chunks whose float32
working set stays under ``stage2_max_gather_mb``. Device: one copy of that array (pinned,
non-blocking), then per chunk one gather of its distinct blocks, RoPE undone once on them, and the
pair sums (``memshare.core.stage2.pair_partials``). The sums come back with one non-blocking copy
into pinned memory and an event; ``Stage2Pending.result`` waits on that event only, which the
connector calls after the forward was launched.

NOTE: after a preemption every recomputed block becomes eligible in the same step; the chunking
bounds the memory that burst needs (all jobs are still answered: an unanswered job would keep its
blocks pinned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memshare.core.rope import RopeSpec, unrotate
from memshare.core.stage2 import pair_partials
from memshare.engine.kv_reader import KVReader


@dataclass(frozen=True, slots=True)
class Chunk:
    """Jobs ``[first_job, end_job)`` measured together: E distinct blocks, P pairs.

    Their indices sit at ``offset`` of the step's index array as ids (E), block indices (E),
    query rows (P), candidate rows (P).
    """

    first_job: int
    end_job: int
    num_blocks: int
    num_pairs: int
    offset: int

    @property
    def size(self) -> int:
        return 2 * (self.num_blocks + self.num_pairs)


def plan_step(jobs: list[Any], *, block_bytes: int, max_bytes: int) -> tuple[np.ndarray, list[Chunk]]:
    """Index array and chunks for a step's jobs (``Stage2Job``-like objects), in job order.

    A chunk's cost is ``(E + 2 P) * block_bytes``: its gathered blocks plus the query and candidate
    copies ``pair_partials`` makes per pair. A job whose own cost exceeds ``max_bytes`` forms a
    chunk alone (it must be answered).
    """
    parts: list[np.ndarray] = []
    chunks: list[Chunk] = []
    offset = 0
    rows: dict[tuple[int, int], int] = {}
    q_rows: list[int] = []
    c_rows: list[int] = []
    first = 0

    def flush(end: int) -> None:
        nonlocal offset, first, rows, q_rows, c_rows
        if not q_rows:
            return
        keys = list(rows)  # insertion order = row order
        arr = np.array([k[0] for k in keys] + [k[1] for k in keys] + q_rows + c_rows, dtype=np.int64)
        chunk = Chunk(first, end, len(keys), len(q_rows), offset)
        parts.append(arr)
        chunks.append(chunk)
        offset += chunk.size
        rows, q_rows, c_rows, first = {}, [], [], end

    for i, job in enumerate(jobs):
        query = (job.query_block_id, job.query_block_index)
        cands = list(zip(job.candidate_block_ids, job.candidate_block_indices))
        new = len({query, *cands} - rows.keys())
        if q_rows and (len(rows) + new + 2 * (len(q_rows) + len(cands))) * block_bytes > max_bytes:
            flush(i)
        q = rows.setdefault(query, len(rows))
        for cand in cands:
            q_rows.append(q)
            c_rows.append(rows.setdefault(cand, len(rows)))
    flush(len(jobs))
    index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return index, chunks


@dataclass(slots=True)
class Stage2Pending:
    """A launched step: its sums are on their way to the host."""

    job_ids: list[int]
    counts: list[int]  # candidates per job
    sums: torch.Tensor  # (sum(counts), K) float32 on the host (pinned on CUDA)
    event: Any = None  # torch.cuda.Event recorded after the copy; None on CPU

    def result(self) -> dict[int, list[list[float]]]:
        """job_id -> per-candidate partial-sum rows; waits for this step's Stage 2 only."""
        if self.event is not None:
            self.event.synchronize()
        rows = self.sums.tolist()
        out, at = {}, 0
        for job_id, n in zip(self.job_ids, self.counts):
            out[job_id] = rows[at:at + n]
            at += n
        return out


class Stage2Step:
    """Runs a step's Stage-2 jobs on one worker's KV (see the module docstring)."""

    def __init__(self, reader: KVReader, *, distance: str, metric: str, rope: RopeSpec | None,
                 max_gather_mb: float) -> None:
        self.reader = reader
        self.distance = distance
        self.metric = metric
        self.want_k = distance != "v"
        self.want_v = distance in ("kv", "v", "k_unrope_v")
        self.unrope = distance.startswith("k_unrope")
        if self.unrope and rope is None:
            raise ValueError(f"distance {distance!r} needs the model's RoPE")
        dev = reader.device
        self.rope = None if rope is None else RopeSpec(rope.inv_freq.to(dev), rope.is_neox, rope.scaling)
        self.block_bytes = 4 * reader.block_elems(want_k=self.want_k, want_v=self.want_v)
        self.max_bytes = int(max_gather_mb * (1 << 20))
        self._cuda = dev.type == "cuda"
        self._arange = torch.arange(reader.block_size, device=dev)
        self._host_index = torch.zeros(0, dtype=torch.int64)
        self._host_sums = torch.zeros(0, dtype=torch.float32)

    def launch(self, jobs: list[Any]) -> Stage2Pending:
        """Enqueue every job of the step; no host sync (on CUDA)."""
        index, chunks = plan_step(jobs, block_bytes=self.block_bytes, max_bytes=self.max_bytes)
        dev_index = self._to_device(index)  # NOTE: the step's only host-to-device copy
        sums = [self._chunk(dev_index, c) for c in chunks]
        width = 2 if self.metric == "euclidean" else 3
        total = torch.cat(sums) if sums else torch.zeros(0, width, device=self.reader.device)
        counts = [len(j.candidate_block_ids) for j in jobs]
        job_ids = [j.job_id for j in jobs]
        if not self._cuda:
            return Stage2Pending(job_ids, counts, total)
        host = self._host_buffer("_host_sums", total.numel(), torch.float32).view(total.shape)
        host.copy_(total, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return Stage2Pending(job_ids, counts, host, event)

    def _chunk(self, index: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        e, p = chunk.num_blocks, chunk.num_pairs
        ids, block_index, q_rows, c_rows = index[chunk.offset:chunk.offset + chunk.size].split((e, e, p, p))
        k, v = self.reader.gather(ids, want_k=self.want_k, want_v=self.want_v)  # (E, L, H, T, D) each
        tensors = []
        if self.distance in ("kv", "k"):
            tensors.append(k)
        if self.unrope:
            pos = (block_index[:, None] * self.reader.block_size + self._arange).view(e, 1, 1, -1)  # (E, 1, 1, T)
            tensors.append(unrotate(k, pos, self.rope.inv_freq, self.rope.is_neox, self.rope.scaling))
        if self.want_v:
            tensors.append(v)
        return pair_partials(tensors, q_rows, c_rows, metric=self.metric).sums

    def _to_device(self, index: np.ndarray) -> torch.Tensor:
        if not self._cuda:
            return torch.from_numpy(index)
        host = self._host_buffer("_host_index", index.size, torch.int64)
        host.numpy()[:] = index
        return host.to(self.reader.device, non_blocking=True)

    def _host_buffer(self, name: str, n: int, dtype: torch.dtype) -> torch.Tensor:
        """A pinned host buffer reused across steps.

        NOTE: reuse is safe because a step's results are waited for (``Stage2Pending.result``)
        before the next step launches, and that wait follows both copies on the stream.
        """
        buf = getattr(self, name)
        if buf.numel() < n:
            buf = torch.empty(max(n, 2 * buf.numel()), dtype=dtype).pin_memory()
            setattr(self, name, buf)
        return buf[:n]
