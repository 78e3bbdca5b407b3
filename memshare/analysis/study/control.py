"""The positive control: a trace where MemShare's premise holds by construction.

``with_repeats`` rebuilds a real trace so that, every few blocks, a verbatim copy of an earlier
block-aligned span of its own text follows: the copied blocks hold exactly the tokens of earlier
blocks, at block-aligned offsets, as a model that re-checks a step word for word would write
them. Sharing a copy with its original is then the good share the paper describes, and sharing
anything else is not; a pipeline that cannot tell them apart here cannot anywhere.

``measure_control`` runs MemShare (the policy as configured, Stage 2 on the dense KV) and random
sharing matched to it (as many shares at the same moments, so the same memory-time freed) in one
replay, and counts how many of MemShare's shares are copy -> original.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from memshare.analysis.study import schedule as S
from memshare.analysis.study.dense import dense_pass
from memshare.analysis.study.replay import RowTotals, replay_schedules
from memshare.analysis.traces import LoadedModel, Trace
from memshare.core.config import MemShareConfig


@dataclass(frozen=True, slots=True)
class ControlTrace:
    trace: Trace
    copies: dict[int, int]  # copied block -> the block it copies (absolute block indices)


def with_repeats(trace: Trace, block_size: int, *, max_tokens: int, gap_blocks: int = 4, span_blocks: int = 3,
                 seed: int = 0) -> ControlTrace:
    """``trace``'s own text with a verbatim copy of ``span_blocks`` earlier blocks after every
    ``gap_blocks`` blocks of new text, cut at ``max_tokens`` output tokens (whole blocks)."""
    if gap_blocks < 1 or span_blocks < 1:
        raise ValueError("gap_blocks and span_blocks must be at least 1")
    rng = random.Random(seed)
    p, bs, src = len(trace.prompt_ids), block_size, list(trace.output_ids)
    first = -(-p // bs)
    head = first * bs - p  # output tokens that complete the prompt's last block
    out, copies, pos = src[:head], {}, head
    while len(out) + gap_blocks * bs <= max_tokens and pos + gap_blocks * bs <= len(src):
        out += src[pos:pos + gap_blocks * bs]
        pos += gap_blocks * bs
        written = (p + len(out)) // bs  # full blocks so far
        if len(out) + span_blocks * bs > max_tokens or written - first < span_blocks + 1:
            continue
        # NOTE: the span ends at least one block before the copy starts (min_gap 1), and never
        # holds an earlier copy, so every copied block has one original.
        starts = [a for a in range(first, written - span_blocks)
                  if not any(a + j in copies for j in range(span_blocks))]
        if not starts:
            continue
        a = rng.choice(starts)
        for j in range(span_blocks):
            copies[written + j] = a + j
        out += out[(a * bs - p):((a + span_blocks) * bs - p)]
    return ControlTrace(Trace(trace.problem_id, trace.prompt_ids, tuple(out), False), copies)


def measure_control(lm: LoadedModel, control: ControlTrace, configs: Sequence[MemShareConfig], vocab,
                    rope) -> list[dict]:
    """Per MemShare setting, on one control trace: its figures, matched random sharing's, and how
    many of its shares read the same text (the copy's original, or another copy of it)."""
    bs = configs[0].block_size
    dense = dense_pass(lm, control.trace, bs)
    eligible = len(dense.output_blocks())
    ids = control.trace.token_ids
    schedules = []
    for config in configs:
        shares = S.select(S.policy_scores(dense, control.trace, config, vocab, rope), config.block_threshold)
        schedules += [shares, S.matched_random(shares, dense, config.seed)]
    rows = replay_schedules(lm, control.trace, bs, [s for s in schedules if s], eligible)
    it = iter(rows)
    measured = [next(it) if s else RowTotals(eligible=eligible) for s in schedules]
    out = []
    for k, config in enumerate(configs):
        shares = schedules[2 * k]
        same_text = sum(ids[a.block * bs:(a.block + 1) * bs] == ids[a.target * bs:(a.target + 1) * bs] for a in shares)
        out.append({"problem_id": control.trace.problem_id, "share_delay_blocks": config.share_delay_blocks,
                    "copies": len(control.copies), "eligible": eligible, "shares": len(shares),
                    "same_text_shares": same_text,
                    "copies_shared": len({a.block for a in shares if a.block in control.copies}),
                    "memshare": measured[2 * k].to_dict(), "random": measured[2 * k + 1].to_dict()})
    return out
