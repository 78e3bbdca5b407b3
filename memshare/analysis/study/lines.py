"""The study's lines: one per selection rule, baseline or bound, each a few points on the front.

A line turns one trace's ``TraceContext`` into ``(point, actions)`` pairs; the point is the
line's own knob (a block threshold, a sharing rate, a fraction, a window). What a line costs to
score (the nearest targets, the probes, a policy's Stage 2 on the dense KV) is computed once per
trace and shared by its points and by other lines.

Points were fixed on the choice split (the first 16 traces) and are applied unchanged to the
report split; ``STUDY_LINES`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from memshare.analysis.study import schedule as S
from memshare.analysis.study.dense import DensePass
from memshare.analysis.study.probe import probe_scores
from memshare.analysis.traces import LoadedModel, Trace
from memshare.core.config import MemShareConfig

PROBE_WINDOW = 64  # tokens each single-block probe measures


@dataclass
class TraceContext:
    lm: LoadedModel
    trace: Trace
    dense: DensePass
    vocab: Any
    rope: Any
    base: MemShareConfig  # block size and seed of every sharing line
    _memo: dict = field(default_factory=dict)

    @property
    def eligible(self) -> int:
        return len(self.dense.output_blocks())

    @cached_property
    def targets(self) -> dict[int, tuple[int, float]]:
        return S.nearest_targets(self.dense, "k_unrope", self.rope)

    def policy(self, **changes) -> list[S.Scored]:
        key = ("policy", tuple(sorted(changes.items())))
        if key not in self._memo:
            self._memo[key] = S.policy_scores(self.dense, self.trace, self.base.replace(**changes), self.vocab, self.rope)
        return self._memo[key]

    def probes(self, delay: int) -> list[S.Scored]:
        key = ("probe", delay)
        if key not in self._memo:
            self._memo[key] = probe_scores(self.lm, self.trace, self.dense, self.targets, delay=delay, window=PROBE_WINDOW)
        return self._memo[key]


Points = list[tuple[float, list[S.Action]]]


@dataclass(frozen=True)
class Line:
    name: str
    kind: str  # "rule" (could run in an engine), "baseline", "bound" (needs the future), "eviction"
    about: str
    points: tuple[float, ...]
    build: Callable[[TraceContext, tuple[float, ...]], Points]


def _memshare(**changes) -> Callable[[TraceContext, tuple[float, ...]], Points]:
    return lambda ctx, pts: [(t, S.select(ctx.policy(policy="memshare", **changes), t)) for t in pts]


def _random(delay: int = 0, **changes) -> Callable[[TraceContext, tuple[float, ...]], Points]:
    return lambda ctx, pts: [(r, [s.action for s in ctx.policy(policy="random", random_rate=r, share_delay_blocks=delay,
                                                                **changes)]) for r in pts]


def _probe(delay: int, drop: bool = False) -> Callable[[TraceContext, tuple[float, ...]], Points]:
    def build(ctx: TraceContext, pts: tuple[float, ...]) -> Points:
        out = []
        for f in pts:
            acts = S.cheapest(ctx.probes(delay), f, ctx.eligible)
            out.append((f, S.as_drops(acts) if drop else acts))
        return out
    return build


def _attention(window: int | None, delay: int = 0, fraction: bool = False):
    def build(ctx: TraceContext, pts: tuple[float, ...]) -> Points:
        scored = S.attention_scores(ctx.dense, ctx.targets, window=window, delay=delay)
        if fraction:
            return [(f, S.cheapest(scored, f, ctx.eligible)) for f in pts]
        return [(t, S.select(scored, t)) for t in pts]
    return build


LINES: dict[str, Line] = {line.name: line for line in [
    Line("random", "baseline", "random sharing (the engine's random policy) at each rate", (0.25, 0.5), _random()),
    Line("random-delay4", "baseline", "the same, the 4 newest blocks kept exact", (0.25, 0.5), _random(4)),
    Line("memshare", "rule", "Stage 1 at 0.8 + k_unrope Stage 2, shared as soon as eligible (today's default)",
         (0.6, 0.7), _memshare()),
    Line("memshare-delay4", "rule", "the same, the 4 newest blocks kept exact (--share-delay 4)", (0.6, 0.7, 0.8),
         _memshare(share_delay_blocks=4)),
    Line("memshare-delay8", "rule", "the same, the 8 newest blocks kept exact", (0.7, 0.8),
         _memshare(share_delay_blocks=8)),
    Line("memshare-delay4-gap8", "rule", "delay 4, and a candidate at least 8 blocks back (--min-gap 8)",
         (0.7, 0.8), _memshare(share_delay_blocks=4, min_gap_blocks=8)),
    Line("random-delay4-gap8", "baseline", "random sharing, delay 4, targets at least 8 blocks back", (0.5,),
         _random(4, min_gap_blocks=8)),
    Line("memshare-same-step-delay4", "rule", "delay 4, and candidates from the query's own unfinished step "
         "(--same-step: shares sooner)", (0.7,), _memshare(share_delay_blocks=4, same_step=True)),
    Line("memshare-step0-delay4", "rule", "delay 4, block-level Stage 1 only (step threshold 0)", (0.7,),
         _memshare(share_delay_blocks=4, step_threshold=0.0)),
    Line("memshare-v-delay4", "rule", "delay 4, Stage 2 on V only", (1.0,), _memshare(share_delay_blocks=4, distance="v")),
    Line("memshare-kuv-delay4", "rule", "delay 4, Stage 2 on k_unrope + V", (0.65,),
         _memshare(share_delay_blocks=4, distance="k_unrope_v")),
    Line("proxy-attn4", "rule", "causal attention proxy: share (nearest target) when the 4 blocks of queries "
         "after it gave it less than this share of uniform attention", (0.5, 1.0), _attention(4)),
    Line("oracle-attn", "bound", "future attention: the blocks every later query reads least, 4 blocks after "
         "they fill (fraction of eligible blocks)", (0.2, 0.4), _attention(None, delay=4, fraction=True)),
    Line("oracle-probe-delay4", "bound", "measured cost: substituting the block alone, 4 blocks after it fills, "
         f"costs the least KL over the next {PROBE_WINDOW} tokens (fraction)", (0.2, 0.4), _probe(4)),
    Line("drop-probe-delay4", "eviction", "oracle-probe-delay4's blocks dropped instead of shared", (0.4,),
         _probe(4, drop=True)),
    Line("streaming", "eviction", "block StreamingLLM: the prompt + the newest output blocks holding this many tokens",
         (1024.0, 512.0, 256.0), lambda ctx, pts: [(w, S.streaming_drops(ctx.dense, int(w) // ctx.dense.block_size))
                                           for w in pts]),
    Line("h2o", "eviction", "block H2O: output blocks holding at most this many tokens, the least attended so far "
         "dropped", (512.0, 256.0),
         lambda ctx, pts: [(c, S.heavy_hitter_drops(ctx.dense, int(c) // ctx.dense.block_size)) for c in pts]),
]}
