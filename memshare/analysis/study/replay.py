"""Measure many schedules of one trace in one batched teacher-forced replay beside the dense row.

Row 0 of the batch is dense (the reference); row ``i`` follows ``schedules[i - 1]``. Every row is
fed the trace in the dense pass's block-aligned chunks; when a chunk fills a block, each row's
actions for that moment are applied to its own cache (``share_block`` on the row's view, or its
keep mask for a drop) before the next chunk. Each output-predicting position's distribution is
compared with row 0's.

Memory: a position attending over ``n`` cached tokens holds ``n - block_size x (actions so
far)`` of them; ``freed`` is the share of the dense memory-time (tokens x positions) that the
row did not hold, the HF replay's counterpart of the engine's ``block_steps_freed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from memshare.analysis.compare.replay import RowView
from memshare.analysis.fidelity import Agreement
from memshare.analysis.kvcache import share_block
from memshare.analysis.study.attention import StudyAttention, studying
from memshare.analysis.study.cache import buffered_cache
from memshare.analysis.study.dense import chunks, prefill_end
from memshare.analysis.study.schedule import Action
from memshare.analysis.traces import LoadedModel, Trace


@dataclass(slots=True)
class RowTotals(Agreement):
    """One row's agreement with the dense row (``Agreement``) and its memory, summed over its
    output-predicting positions; rows of several traces add up as they are."""

    held: int = 0  # tokens of KV held, summed over positions
    dense: int = 0  # tokens of KV dense holds, summed over positions
    actions: int = 0
    eligible: int = 0  # output blocks that filled

    def merge(self, other: RowTotals) -> RowTotals:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self

    def __add__(self, other: RowTotals) -> RowTotals:
        return RowTotals().merge(self).merge(other)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RowTotals:
        return cls(**{k: d[k] for k in asdict(cls())})

    def figures(self) -> dict:
        """The plane's coordinates: memory saved and quality kept."""
        lost = self.tokens - self.agree
        return {"freed_memory_time": 1 - self.held / self.dense if self.dense else 0.0,
                "top1": self.agree / self.tokens if self.tokens else None,
                "kl": self.kl_sum / self.tokens if self.tokens else None,
                "top1_after": self.agree_after / self.tokens_after if self.tokens_after else None,
                "kl_after": self.kl_sum_after / self.tokens_after if self.tokens_after else None,
                "affected": self.actions / self.eligible if self.eligible else 0.0,
                "misses_per_action": lost / self.actions if self.actions else None,
                "kl_per_action": self.kl_sum / self.actions if self.actions else None}


@torch.inference_mode()
def replay_schedules(lm: LoadedModel, trace: Trace, block_size: int, schedules: Sequence[Sequence[Action]],
                     eligible: int) -> list[RowTotals]:
    """One ``RowTotals`` per schedule (the dense row itself is not returned)."""
    ids = trace.token_ids
    n = len(ids) - 1
    p = len(trace.prompt_ids)
    rows = 1 + len(schedules)
    cache = buffered_cache(lm.model.config, n)
    p0 = prefill_end(trace, block_size)
    if p0:
        lm.model(torch.tensor([ids[:p0]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
        for layer in cache.layers:
            layer.widen(rows)
    due: dict[int, list[tuple[int, Action]]] = {}
    for r, sched in enumerate(schedules, start=1):
        for a in sched:
            due.setdefault(a.at_full, []).append((r, a))
    state = StudyAttention(block_size)
    totals = [RowTotals(eligible=eligible) for _ in schedules]
    done = [0] * rows
    first_at: list[int | None] = [None] * rows
    with studying(lm.model, state):
        for start, stop in chunks(trace, block_size):
            x = torch.tensor([ids[start:stop]])
            logits = lm.model(x.expand(rows, -1), past_key_values=cache, use_cache=True).logits
            lo = max(start, p - 1)
            if lo < stop:
                lp = torch.log_softmax(logits[:, lo - start:].float(), dim=-1)  # (B, q, V)
                ref = lp[0]
                lengths = torch.arange(lo, stop) + 1  # tokens each position attends over
                for r in range(1, rows):
                    t = totals[r - 1]
                    t.add(ref, lp[r], first_at[r] is not None)
                    t.dense += int(lengths.sum())
                    t.held += int(lengths.sum()) - (stop - lo) * block_size * done[r]
            if stop % block_size == 0 and stop // block_size in due:
                for r, a in due.pop(stop // block_size):
                    _apply(cache, state, r, a, block_size, rows, n)
                    done[r] += 1
                    totals[r - 1].actions += 1
                    if first_at[r] is None:
                        first_at[r] = stop
    return totals


def _apply(cache, state: StudyAttention, row: int, action: Action, block_size: int, rows: int, n: int) -> None:
    if action.target is None:
        if state.keep is None:
            state.keep = torch.ones(rows, n, dtype=torch.bool)
        state.keep[row, action.block * block_size:(action.block + 1) * block_size] = False
    else:
        share_block(RowView(cache, row), action.block, action.target, block_size)
