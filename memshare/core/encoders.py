"""Step vectors for Stage 1: finished reasoning steps, searchable by cosine similarity.

Two encoders (``config.encoder``):

* ``tokenizer`` (``SparseStepIndex``): a step is its bag of token ids (sparse counts). The
  index is token-major (an inverted index: token id -> the steps holding it, with counts),
  so a query touches only the postings of its own tokens; norms are stored when a step is
  added. Cost per query: O(distinct query tokens + their posting lengths), vectorized.
* ``embedding`` (``DenseStepIndex``): a step is the mean of the model's input-embedding rows
  of its tokens (with multiplicity); cosine between means, one matrix-vector product.

Similarities are clamped to [0, 1] (a negative embedding cosine counts as 0). Steps are
added once, when complete, and never change; removing an owner (a request) marks its steps
dead and ``compact`` (called by the owner of the index) frees them and renumbers slots.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from memshare.core.kernels import SIM_TOLERANCE, add_pair_counts, prefix_similarities

_PAIR = struct.Struct("=ii").pack  # a posting entry: (slot, count) as int32


class Grow:
    """An append-only numpy array with amortized O(1) appends; ``view`` is the filled part."""

    __slots__ = ("data", "n")

    def __init__(self, dtype, width: int | None = None, capacity: int = 16) -> None:
        shape = (capacity,) if width is None else (capacity, width)
        self.data = np.zeros(shape, dtype=dtype)
        self.n = 0

    def append(self, value) -> None:
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros_like(self.data)])
        self.data[self.n] = value
        self.n += 1

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def keep(self, mask: np.ndarray) -> None:
        kept = self.view[mask]
        self.data = np.concatenate([kept, np.zeros_like(self.data[: max(16, len(kept))])])
        self.n = len(kept)


@dataclass(frozen=True, slots=True, eq=False)
class StepHits:
    """Steps similar to a query, best first (similarity desc, then most recently added)."""

    owners: np.ndarray  # (n,) int64
    steps: np.ndarray  # (n,) int64
    sims: np.ndarray  # (n,) float64 in [0, 1]

    def __len__(self) -> int:
        return len(self.steps)


class Memo(NamedTuple):
    """What a query is, so that an index can reuse the owner's previous one: step ``step``'s bag
    after block ``block`` of ``owner``, which is the bag after block ``block - 1`` plus ``added``
    (None: not known, start over). The caller guarantees it (``BlockDone.added``)."""

    owner: int
    step: int
    block: int
    added: Mapping[int, int] | None


class StepIndex(ABC):
    """Complete steps of one or more owners (requests, by integer id)."""

    def __init__(self) -> None:
        self._owner = Grow(np.int64)  # -1: removed
        self._step = Grow(np.int64)
        self._num_dead = 0
        # The one owner whose steps, in order, are all the slots (a per-request index); else None.
        self._sole: int | None = None
        self._mixed = False

    def __len__(self) -> int:
        return self._owner.n - self._num_dead

    @property
    def num_slots(self) -> int:
        """Slots in storage, removed ones included until ``compact``."""
        return self._owner.n

    @property
    def num_dead(self) -> int:
        return self._num_dead

    def add_step(self, owner: int, step: int, counts: Mapping[int, int]) -> int:
        """Add a complete step given as token id -> count; returns its slot."""
        if owner < 0:
            raise ValueError("owner ids must be >= 0")
        slot = self._owner.n
        if slot == 0 and not self._mixed:
            self._sole = owner
        elif owner != self._sole or step < self._step.data[slot - 1]:
            self._sole, self._mixed = None, True
        self._add_vector(slot, counts)
        self._owner.append(owner)
        self._step.append(step)
        return slot

    def similarities(self, counts: Mapping[int, int], memo: Memo | None = None) -> np.ndarray:
        """Cosine of a bag of tokens with every slot: (num_slots,) in [0, 1], 0 for removed ones.

        ``memo``: the query is a step's bag after one of its blocks (see ``Memo``); an index may
        then update the owner's previous answer instead of starting over (``SparseStepIndex``).
        """
        if self._owner.n == 0 or not counts:
            return np.zeros(self._owner.n)
        sims = self._similarities(counts, memo)
        if self._num_dead:
            sims[self._owner.view < 0] = 0.0
        return np.minimum(sims, 1.0, out=sims)  # rounding; ``_similarities`` is never negative

    def eligible_similarities(self, counts: Mapping[int, int], *, owner: int, before_step: int, others: bool,
                              threshold: float, grown: tuple[int, Mapping[int, int] | None] | None = None,
                              ) -> np.ndarray:
        """(num_slots,) similarities of the eligible slots, -1 elsewhere.

        Eligible: similarity >= threshold, and either the owner's steps before
        ``before_step`` or, with ``others``, any live step of another owner.
        ``grown=(block, added)``: ``counts`` is step ``before_step``'s bag after block ``block``
        of ``owner`` (``Memo``).
        """
        memo = Memo(owner, before_step, *grown) if grown is not None else None
        if owner == self._sole and not self._num_dead:
            # One owner's steps in order: the eligible ones are a prefix of the slots.
            return self._prefix_similarities(counts, memo, before_step, threshold)
        sims = self.similarities(counts, memo)
        owners, steps = self._owner.view, self._step.view
        if others:
            mask = (owners >= 0) & ((owners != owner) | (steps < before_step))
        else:
            mask = (owners == owner) & (steps < before_step)
        mask &= sims >= threshold - SIM_TOLERANCE
        sims[~mask] = -1.0
        return sims

    def search(self, counts: Mapping[int, int], *, owner: int, before_step: int, others: bool,
               threshold: float) -> StepHits:
        """The eligible steps (see ``eligible_similarities``), best first."""
        sims = self.eligible_similarities(counts, owner=owner, before_step=before_step, others=others,
                                          threshold=threshold)
        slots = np.flatnonzero(sims >= 0)
        slots = slots[np.lexsort((-slots, -sims[slots]))]
        return StepHits(self._owner.view[slots], self._step.view[slots], sims[slots])

    def remove_owner(self, owner: int) -> None:
        """Mark an owner's steps removed (storage is freed by ``compact``)."""
        dead = self._owner.view == owner
        self._owner.view[dead] = -1
        self._num_dead += int(dead.sum())

    def compact(self) -> np.ndarray:
        """Drop removed steps from storage. Returns old slot -> new slot (-1: removed)."""
        alive = self._owner.view >= 0
        remap = np.where(alive, np.cumsum(alive) - 1, -1)
        self._compact(alive, remap)
        self._owner.keep(alive)
        self._step.keep(alive)
        self._num_dead = 0
        return remap

    def _prefix_similarities(self, counts: Mapping[int, int], memo: Memo | None, before_step: int,
                             threshold: float) -> np.ndarray:
        """``eligible_similarities`` of a one-owner index without removed slots: the slots of
        steps before ``before_step`` come first."""
        sims = self.similarities(counts, memo)
        end = int(self._step.view.searchsorted(before_step))
        if end < len(sims):
            sims[end:] = -1.0
        head = sims[:end]
        head[head < threshold - SIM_TOLERANCE] = -1.0
        return sims

    @abstractmethod
    def _add_vector(self, slot: int, counts: Mapping[int, int]) -> None: ...

    @abstractmethod
    def _similarities(self, counts: Mapping[int, int], memo: Memo | None) -> np.ndarray: ...

    @abstractmethod
    def _compact(self, alive: np.ndarray, remap: np.ndarray) -> None: ...


class SparseStepIndex(StepIndex):
    """Bag-of-token-ids cosine through an inverted index (encoder ``tokenizer``).

    A posting is a ``bytearray`` per token id of packed int32 pairs (slot, count): appending
    is one C call, and a query joins its tokens' postings into one numpy array. Dicts of
    bytearrays are invisible to Python's garbage collector: with one small container per
    distinct token and request (lists, ``array.array``), full collections paused the scheduler
    for up to 0.7 s at 256 running requests.

    Consecutive queries of one step (one per block the step spans) differ by the block's new
    tokens: with a ``Memo`` the owner's last dot products are kept and only the postings of
    the tokens the block added are read. Counts are integers, so the dot products are exact
    either way (float64 sums of integers), and the result does not depend on query history.
    """

    def __init__(self) -> None:
        super().__init__()
        self._post: dict[int, bytearray] = {}  # token id -> packed (slot, count) int32 pairs
        self._norm = Grow(np.float64)
        self._zero_norms = 0  # empty bags added (their cosine is 0)
        self._version = 0  # changes whenever slots or postings do
        # owner -> (step, block, version, dot products, squared norm of the bag) of its last query
        self._memo: dict[int, tuple[int, int, int, np.ndarray, int]] = {}

    def remove_owner(self, owner: int) -> None:
        super().remove_owner(owner)
        self._memo.pop(owner, None)

    def _add_vector(self, slot: int, counts: Mapping[int, int]) -> None:
        self._version += 1
        post = self._post
        for tok, c in counts.items():
            p = post.get(tok)
            if p is None:
                post[tok] = bytearray(_PAIR(slot, c))
            else:
                p += _PAIR(slot, c)
        norm = math.sqrt(sum(c * c for c in counts.values()))
        self._zero_norms += norm == 0
        self._norm.append(norm)

    def _similarities(self, counts: Mapping[int, int], memo: Memo | None) -> np.ndarray:
        dot, sq = self._dot_products(counts, memo)
        denom = math.sqrt(sq) * self._norm.view
        if self._zero_norms or sq == 0:
            return np.divide(dot, denom, out=np.zeros(len(dot)), where=denom > 0)
        return dot / denom

    def _prefix_similarities(self, counts: Mapping[int, int], memo: Memo | None, before_step: int,
                             threshold: float) -> np.ndarray:
        if self._owner.n == 0 or not counts:
            return super()._prefix_similarities(counts, memo, before_step, threshold)
        dot, sq = self._dot_products(counts, memo)
        return prefix_similarities(dot, self._norm.view, math.sqrt(sq), self._step.view, before_step, threshold)

    def _dot_products(self, counts: Mapping[int, int], memo: Memo | None) -> tuple[np.ndarray, int]:
        """(num_slots,) dot products of ``counts`` with every slot, and ``counts``' squared norm."""
        n = self._owner.n
        dot = None
        if memo is not None and memo.added is not None:
            last = self._memo.get(memo.owner)
            if last is not None and last[:3] == (memo.step, memo.block - 1, self._version):
                dot, sq = last[3].copy(), last[4]
                for tok, a in memo.added.items():  # counts[tok] - a was the old count
                    c = counts[tok]
                    sq += a * (2 * c - a)
                self._add_dots(dot, memo.added)
        if dot is None:
            dot = np.zeros(n)
            self._add_dots(dot, counts)
            sq = sum(c * c for c in counts.values())
        if memo is not None:
            self._memo[memo.owner] = (memo.step, memo.block, self._version, dot, sq)
        return dot, sq

    def _add_dots(self, dot: np.ndarray, counts: Mapping[int, int]) -> None:
        """``dot += `` the bag-of-words dot products of ``counts`` with every slot: the postings
        of tokens counted once are joined and read in one call, the others scaled one by one."""
        post = self._post
        if max(counts.values(), default=1) == 1:  # the usual block: no token twice (all in C)
            once, more = list(filter(None, map(post.get, counts))), []  # a posting is never empty
        else:
            once = [post[t] for t, c in counts.items() if c == 1 and t in post]
            more = [(post[t], c) for t, c in counts.items() if c > 1 and t in post]
        if once:
            add_pair_counts(dot, np.frombuffer(b"".join(once), dtype=np.int32), 1)
        for p, c in more:
            add_pair_counts(dot, np.frombuffer(p, dtype=np.int32), c)

    def _compact(self, alive: np.ndarray, remap: np.ndarray) -> None:
        self._version += 1
        self._memo.clear()
        self._zero_norms = int((self._norm.view[alive] == 0).sum())
        for tok, p in list(self._post.items()):
            pairs = np.frombuffer(p, dtype=np.int32).reshape(-1, 2)
            kept = pairs[alive[pairs[:, 0]]]  # a copy: ``p`` may be replaced
            del pairs
            if not len(kept):
                del self._post[tok]
                continue
            kept[:, 0] = remap[kept[:, 0]]
            self._post[tok] = bytearray(kept.tobytes())
        self._norm.keep(alive)


class DenseStepIndex(StepIndex):
    """Cosine between mean input embeddings of steps (encoder ``embedding``).

    Args:
        embedding: (vocab, dim) input-embedding matrix (numpy or torch; any float dtype).
            Token ids outside it contribute nothing.
    """

    def __init__(self, embedding) -> None:
        super().__init__()
        self.embedding = as_embedding_matrix(embedding)
        self._vecs = Grow(np.float32, width=embedding.shape[1])

    def encode(self, counts: Mapping[int, int]) -> np.ndarray:
        """Unit-norm mean embedding of a bag of tokens: (dim,), zeros if empty."""
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        w = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        ok = (ids >= 0) & (ids < len(self.embedding))
        rows = self.embedding[ids[ok]].astype(np.float32)  # (k, dim)
        vec = w[ok] @ rows  # mean up to scale: cosine ignores it
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else np.zeros(self.embedding.shape[1], dtype=np.float32)

    def _add_vector(self, slot: int, counts: Mapping[int, int]) -> None:
        self._vecs.append(self.encode(counts))

    def _similarities(self, counts: Mapping[int, int], memo: Memo | None) -> np.ndarray:
        return np.maximum(self._vecs.view @ self.encode(counts), 0.0, dtype=np.float64)  # (n,)

    def _compact(self, alive: np.ndarray, remap: np.ndarray) -> None:
        self._vecs.keep(alive)


def as_embedding_matrix(embedding) -> np.ndarray:
    """(vocab, dim) numpy view of an embedding matrix (a torch tensor is copied to CPU once)."""
    if hasattr(embedding, "detach"):
        embedding = embedding.detach().float().cpu().numpy()
    embedding = np.asarray(embedding)
    if embedding.ndim != 2 or embedding.shape[0] == 0 or not np.issubdtype(embedding.dtype, np.floating):
        raise ValueError(f"embedding must be a float (vocab, dim) matrix, got {embedding.dtype} {embedding.shape}")
    return embedding


def make_step_index(encoder: str, embedding=None) -> StepIndex:
    """A new, empty index for ``config.encoder``."""
    if encoder == "tokenizer":
        return SparseStepIndex()
    if encoder == "embedding":
        if embedding is None:
            raise ValueError("encoder='embedding' needs the model's input embedding matrix (embedding=...)")
        return DenseStepIndex(embedding)
    raise ValueError(f"unknown encoder {encoder!r}")
