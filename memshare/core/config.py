"""MemShare configuration: one frozen, validated dataclass.

Every knob of the algorithm lives here so that a run can write its resolved
configuration next to its results and an ablation is a set of overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

POLICIES = ("dense", "random", "memshare")
# Plain vLLM, no backend loaded: ``vanilla`` as users run it (vLLM's defaults), ``vanilla-sync`` on
# the engine MemShare needs with synchronous scheduling (the former baseline).
BASELINES = ("vanilla", "vanilla-sync")
# Every policy a benchmark or server can run.
ALL_POLICIES = (*BASELINES, *POLICIES)
# How a block's K/V are turned into the vectors Stage 2 compares.
#   kv        : stored K (after RoPE) and V
#   k         : stored K only
#   v         : V only
#   k_unrope  : K with the rotation undone by position
#   k_unrope_v: K with the rotation undone, plus V
DISTANCES = ("kv", "k", "v", "k_unrope", "k_unrope_v")
METRICS = ("euclidean", "cosine")
ENCODERS = ("tokenizer", "embedding")
DEFAULT_CUE_WORDS = (
    "Wait",
    "Alternatively",
    "Hmm",
    "Let me check",
    "Let me verify",
    "Let me re",
    "But",
    "So",
    "Actually",
    "Therefore",
    "Now",
    "Next",
    "First",
    "Finally",
)


@dataclass(frozen=True, slots=True)
class MemShareConfig:
    """Settings of one sharing policy.

    Args:
        policy: ``dense`` (never share), ``random`` (share random eligible blocks
            at ``random_rate``) or ``memshare`` (Stage 1 + Stage 2).
        block_size: tokens per KV block; must equal the engine's block size.
        step_threshold: Stage 1 keeps candidate blocks whose step bag-of-words
            cosine with the new block's step is >= this value (0..1).
        block_threshold: Stage 2 accepts a candidate whose normalized distance is
            <= this value. With ``metric="cosine"`` the distance is
            ``1 - cosine similarity``; see ``memshare.core.stage2``.
        distance: which K/V tensors enter the Stage 2 distance (see DISTANCES).
        metric: ``euclidean`` (normalized L2) or ``cosine``.
        encoder: Stage 1 vectors: ``tokenizer`` (bag of token ids) or
            ``embedding`` (mean of the model's input embeddings).
        max_candidates: at most this many candidates go to Stage 2 per block.
        cross_request: also look for candidates in other running requests.
        random_rate: target fraction of eligible full blocks the random policy shares.
        min_gap_blocks: a candidate must lie at least this many blocks before
            the new block (1 = the immediately preceding block may be used).
        share_delay_blocks: a full block becomes eligible only after this many
            newer blocks of the same request have filled, so the most recent
            context always stays exact (0 = share as soon as the block fills).
        same_step: earlier blocks of the query's own reasoning step are Stage-1
            candidates too, so a long step (a loop, a long derivation) can share as its
            blocks fill instead of only after the step is complete.
        share_siblings: the same-position block of every earlier request with the
            same prompt (``--samples n``) is a candidate as soon as it is written: its
            keys carry exactly the query's rotation. Stage 2 still decides.
        split_on_blank_lines / cue_words: how output is cut into reasoning steps.
        seed: RNG seed (random policy, tie breaks).
        stage2_max_gather_mb: about the most MiB of float32 block copies Stage 2 holds at once
            on a worker (gathered blocks plus per-candidate copies); a step's jobs are measured
            in chunks under it (a single job over it is measured alone). It bounds the burst
            after a preemption, when every recomputed block becomes eligible at once; it never
            changes a distance.

    Defaults (``k_unrope``, step 0.8, block 0.55) were chosen from measurements on the packaged
    model: 0.55 is the largest block threshold whose teacher-forced top-1 agreement stays >= 97%
    (README, "Chosen defaults and why").
    """

    policy: str = "memshare"
    block_size: int = 32
    step_threshold: float = 0.8
    block_threshold: float = 0.55
    distance: str = "k_unrope"
    metric: str = "euclidean"
    encoder: str = "tokenizer"
    max_candidates: int = 8
    cross_request: bool = False
    random_rate: float = 0.1
    min_gap_blocks: int = 1
    share_delay_blocks: int = 0
    same_step: bool = False
    share_siblings: bool = True
    split_on_blank_lines: bool = True
    cue_words: tuple[str, ...] = field(default=DEFAULT_CUE_WORDS)
    seed: int = 0
    stage2_max_gather_mb: float = 256.0

    def __post_init__(self) -> None:
        _one_of("policy", self.policy, POLICIES)
        _one_of("distance", self.distance, DISTANCES)
        _one_of("metric", self.metric, METRICS)
        _one_of("encoder", self.encoder, ENCODERS)
        if not isinstance(self.block_size, int) or self.block_size <= 0:
            raise ValueError(f"block_size must be a positive integer, got {self.block_size!r}")
        for name in ("step_threshold", "random_rate"):
            _unit_interval(name, getattr(self, name))
        if not isinstance(self.block_threshold, (int, float)) or not 0.0 <= self.block_threshold <= 2.0:
            raise ValueError(f"block_threshold must be in [0, 2], got {self.block_threshold!r}")
        for name in ("max_candidates", "min_gap_blocks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.share_delay_blocks, int) or self.share_delay_blocks < 0:
            raise ValueError(f"share_delay_blocks must be an integer >= 0, got {self.share_delay_blocks!r}")
        for name in ("same_step", "share_siblings", "cross_request", "split_on_blank_lines"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if (isinstance(self.stage2_max_gather_mb, bool) or not isinstance(self.stage2_max_gather_mb, (int, float))
                or not 0 < self.stage2_max_gather_mb < float("inf")):
            raise ValueError(f"stage2_max_gather_mb must be a positive number, got {self.stage2_max_gather_mb!r}")
        if not isinstance(self.cue_words, tuple):
            object.__setattr__(self, "cue_words", tuple(self.cue_words))

    def replace(self, **changes: Any) -> MemShareConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cue_words"] = list(self.cue_words)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemShareConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MemShare setting(s): {', '.join(unknown)}")
        data = dict(data)
        if "cue_words" in data:
            data["cue_words"] = tuple(data["cue_words"])
        return cls(**data)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _unit_interval(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
