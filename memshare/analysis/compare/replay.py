"""One decoding loop for every method: teacher-forced replay of a dense trace, or free running.

Tokens go one per forward pass after the prompt, so eviction acts token by token and sharing
acts as blocks fill, exactly as at decode time. Several runs of the same prompt go through
the model together as the rows of one batch (each row its own cache and method), which is
what makes the comparison affordable on a CPU; ``Dense()`` in the batch is the reference.
A *run* adapts a method to the loop:

* ``Dense()``: nothing changes;
* ``Evicting(evictor)``: attention masked by an ``Evictor``;
* ``Sharing(sharer)``: a ``CacheSharer`` after every forward pass (MemShare, random sharing).

``kept`` records the tokens of KV a head holds at each forward pass: for sharing, the cache
length minus ``block_size`` per shared block (MemShare's unique blocks); for eviction, what
stays visible.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from memshare.analysis.eviction.attention import Evictor, evicting
from memshare.analysis.fidelity import Agreement
from memshare.analysis.sharer import CacheSharer
from memshare.analysis.traces import LoadedModel


class Dense:
    """No method: the reference."""

    overhead_s = 0.0
    affected = False

    def kept_now(self, n: int) -> int:
        return n

    def after_forward(self, cache, token_ids: Sequence[int]) -> None:
        pass


class Evicting(Dense):
    def __init__(self, evictor: Evictor) -> None:
        self.evictor = evictor

    @property
    def overhead_s(self) -> float:
        return self.evictor.overhead_s

    @property
    def affected(self) -> bool:
        return self.evictor.first_eviction_at is not None

    def kept_now(self, n: int) -> int:
        return self.evictor.kept_history[-1]


class Sharing(Dense):
    def __init__(self, sharer: CacheSharer) -> None:
        self.sharer = sharer
        self.overhead_s = 0.0

    @property
    def affected(self) -> bool:
        return bool(self.sharer.events)

    def kept_now(self, n: int) -> int:
        return n - self.sharer.block_size * len(self.sharer.events)

    def after_forward(self, cache, token_ids: Sequence[int]) -> None:
        t0 = time.perf_counter()
        self.sharer.step(cache, token_ids)
        self.overhead_s += time.perf_counter() - t0


@dataclass(slots=True)
class Replay:
    """What one run of one prompt did. ``kept`` / ``lengths``: per forward pass."""

    output_ids: list[int]
    finished: bool
    kept: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    overhead_s: float = 0.0
    logprobs: torch.Tensor | None = None  # (n_out, V), only when asked for

    @property
    def peak_kept(self) -> int:
        return max(self.kept, default=0)

    @property
    def mean_fraction(self) -> float:
        """Mean over forward passes of held KV / the dense KV at that length."""
        return sum(k / n for k, n in zip(self.kept, self.lengths)) / len(self.kept) if self.kept else 1.0


class RowView:
    """Batch row ``b`` of a ``DynamicCache`` as a batch-1 cache: views, so edits (sharing) land in it.

    NOTE: build a fresh view after every forward pass; the cache concatenates new tensors.
    """

    def __init__(self, cache, b: int) -> None:
        self.layers = [_Layer(layer.keys[b:b + 1], layer.values[b:b + 1]) for layer in cache.layers]


@dataclass(slots=True)
class _Layer:
    keys: torch.Tensor
    values: torch.Tensor


def decode(lm: LoadedModel, prompt: Sequence[int], max_new_tokens: int, run: Dense | None = None, *,
           forced: Sequence[int] | None = None, reference: torch.Tensor | None = None,
           agreement: Agreement | None = None, keep_logprobs: bool = False) -> Replay:
    """One run alone (``decode_batch`` with one row)."""
    return decode_batch(lm, prompt, max_new_tokens, [run or Dense()], forced=forced, reference=reference,
                        agreements=None if agreement is None else [agreement], keep_logprobs=keep_logprobs)[0]


@torch.inference_mode()
def decode_batch(lm: LoadedModel, prompt: Sequence[int], max_new_tokens: int, runs: Sequence[Dense], *,
                 forced: Sequence[int] | None = None, reference: torch.Tensor | int | None = None,
                 agreements: Sequence[Agreement | None] | None = None, keep_logprobs: bool = False) -> list[Replay]:
    """Greedy decoding (or teacher forcing ``forced``) of ``prompt`` under each of ``runs``, batched.

    Args:
        forced: output tokens to feed instead of the argmax (teacher forcing; ``max_new_tokens``
            is then ``len(forced)``).
        reference: (len(forced), V) dense log-probabilities, or the index of the row that is the
            reference; with ``agreements`` (one per row, None to skip), each step's distribution
            is compared with it (``after``: the row's method had acted before that step).
        keep_logprobs: return each row's (n_out, V) log-probabilities.
    Returns:
        One ``Replay`` per run. In free running a row stops at EOS or ``max_new_tokens``; a
        stopped row is fed EOS until all stop, and nothing after its stop is recorded.
    """
    from transformers import DynamicCache

    limit = len(forced) if forced is not None else max_new_tokens
    cache = DynamicCache(config=lm.model.config)
    rows = len(runs)
    ids = [list(prompt) for _ in runs]
    reps = [Replay([], False) for _ in runs]
    kept_lp: list[list[torch.Tensor]] = [[] for _ in runs]
    active = [True] * rows
    evictors = [r.evictor if isinstance(r, Evicting) else None for r in runs]
    ctx = evicting(lm.model, evictors) if any(evictors) else contextlib.nullcontext()
    with ctx:
        affected = [r.affected for r in runs]
        # NOTE: every row has the same prompt: prefill it once, then give each row its own copy.
        logits = lm.model(torch.tensor(ids[:1]), past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        logits = logits.expand(rows, -1, -1)
        for layer in cache.layers:
            layer.keys = layer.keys.expand(rows, -1, -1, -1).contiguous()
            layer.values = layer.values.expand(rows, -1, -1, -1).contiguous()
        while True:
            lps = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (B, V)
            k = len(reps[0].output_ids) if forced is not None else None
            ref = None
            if forced is not None and reference is not None:
                ref = lps[reference][None] if isinstance(reference, int) else reference[k:k + 1]
            step = []
            for b, (run, rep) in enumerate(zip(runs, reps)):
                if not active[b]:
                    step.append(next(iter(lm.eos_ids), 0))
                    continue
                rep.kept.append(run.kept_now(len(ids[b])))
                rep.lengths.append(len(ids[b]))
                if keep_logprobs:
                    kept_lp[b].append(lps[b])
                if forced is not None:
                    tok = int(forced[len(rep.output_ids)])
                    if ref is not None and agreements is not None and agreements[b] is not None:
                        agreements[b].add(ref, lps[b][None], affected[b])
                else:
                    tok = int(lps[b].argmax())
                rep.output_ids.append(tok)
                ids[b].append(tok)
                step.append(tok)
            for b, run in enumerate(runs):
                if not active[b]:
                    continue
                run.after_forward(RowView(cache, b), ids[b])
                tok = ids[b][-1]
                if forced is None and tok in lm.eos_ids:
                    reps[b].finished, active[b] = True, False
                elif len(reps[b].output_ids) >= limit:
                    active[b] = False
                if not active[b]:
                    reps[b].overhead_s = run.overhead_s
            if not any(active):
                break
            affected = [r.affected for r in runs]
            logits = lm.model(torch.tensor([[t] for t in step]), past_key_values=cache, use_cache=True,
                              logits_to_keep=1).logits
    if keep_logprobs:
        for rep, lp in zip(reps, kept_lp):
            rep.logprobs = torch.stack(lp)
    return reps
