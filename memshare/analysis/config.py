"""Settings of ``memshare analyze``: one frozen, validated dataclass and the output folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from memshare.core.config import DISTANCES
from memshare.errors import UserError

# Premise study: a grid wide enough to show where each distance starts to match.
PREMISE_STEP_THRESHOLDS = (0.7, 0.8, 0.9)
PREMISE_BLOCK_THRESHOLDS = (0.3, 0.45, 0.6, 0.75, 0.9)
# Fidelity: one step threshold and two block thresholds per distance, bracketing the
# "identical text" and "unrelated" medians measured in shared/docs/REDUNDANCY_STUDY.md.
FIDELITY_STEP_THRESHOLDS = (0.8,)
FIDELITY_BLOCK_THRESHOLDS = {"kv": (0.9, 0.95), "k": (0.8, 0.9), "v": (0.5, 0.7), "k_unrope": (0.5, 0.6),
                             "k_unrope_v": (0.55, 0.65)}
FIDELITY_POLICIES = ("memshare", "random")


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    """The workload options every analysis command takes, validated here once.

    Args:
        model, dataset, data_file, limit: which model and prompts (``memshare.workload.load_workload``).
        max_tokens: tokens generated (or, for a replay, kept) per prompt, at most.
        block_size: tokens per KV block.

    A command may give ``limit`` and ``max_tokens`` defaults of its own (``CompareConfig`` does) and
    ask for more tokens (``MIN_TOKENS``); its ``__post_init__`` calls this one first.
    """

    model: str = "smollm2-135m"
    dataset: str = "math500"
    data_file: str | None = None
    limit: int = 4
    max_tokens: int = 512
    block_size: int = 32

    MIN_TOKENS: ClassVar[int] = 1  # the fewest --max-tokens the command can use

    def __post_init__(self) -> None:
        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        if self.max_tokens < self.MIN_TOKENS:
            raise UserError(f"--max-tokens must be at least {self.MIN_TOKENS}, got {self.max_tokens}")
        if self.block_size < 1:
            raise UserError(f"--block-size must be a positive integer, got {self.block_size}")


@dataclass(frozen=True, slots=True)
class AnalyzeConfig(WorkloadOptions):
    """What ``memshare analyze`` runs: a workload (``WorkloadOptions``; ``max_tokens``: greedy
    tokens generated per prompt, at most) and the study.

    Args:
        step_thresholds / block_thresholds: the grid of Stage-1 step cosines (0..1) and
            Stage-2 distances (0..2). ``None``: the defaults of the mode (see above).
        out: results folder; ``None``: ``results/analyze__<dataset>__<model>``.
        fidelity: run the fidelity study (teacher forcing + free running) instead of the
            premise study.
        policies: fidelity policies; ``random`` is matched to ``memshare``'s affected ratio.
        distance: Stage-2 distance of the fidelity policies.
        share_delay_blocks / min_gap_blocks / same_step: passed to ``MemShareConfig``.
        free_running: prompts to run free (greedy, sharing applied) per policy setting.
        threads: torch CPU threads (``None``: torch's default).
        force: regenerate the dense traces even when ``traces.json`` matches.
    """

    step_thresholds: tuple[float, ...] | None = None
    block_thresholds: tuple[float, ...] | None = None
    out: str | None = None
    fidelity: bool = False
    policies: tuple[str, ...] = FIDELITY_POLICIES
    distance: str = "k_unrope"
    share_delay_blocks: int = 0
    min_gap_blocks: int = 1
    same_step: bool = False
    free_running: int = 2
    threads: int | None = None
    force: bool = False
    seed: int = 0
    replay: str | None = None  # a trace file: study its traces (memshare.replay) instead of greedy ones

    def __post_init__(self) -> None:
        WorkloadOptions.__post_init__(self)  # explicit: super() does not work in a slots dataclass
        for name, hi in (("step_thresholds", 1.0), ("block_thresholds", 2.0)):
            values = getattr(self, name)
            if values is None:
                continue
            values = tuple(float(v) for v in values)
            if not values:
                raise UserError(f"--{name.replace('_', '-')} needs at least one value")
            bad = [v for v in values if not 0.0 <= v <= hi]
            if bad:
                raise UserError(f"--{name.replace('_', '-')} values must be in [0, {hi:g}], got {bad[0]:g}")
            object.__setattr__(self, name, values)
        if self.distance not in DISTANCES:
            raise UserError(f"--distance must be one of {', '.join(DISTANCES)}; got {self.distance!r}")
        bad = [p for p in self.policies if p not in FIDELITY_POLICIES]
        if bad or not self.policies:
            raise UserError(f"unknown policy {', '.join(bad) or '(none)'}: use a comma list of memshare, random")
        if "random" in self.policies and "memshare" not in self.policies:
            raise UserError("the random policy is matched to memshare's affected ratio: add memshare to --policies")
        if self.share_delay_blocks < 0:
            raise UserError(f"--share-delay must be >= 0, got {self.share_delay_blocks}")
        if self.min_gap_blocks < 1:
            raise UserError(f"--min-gap must be >= 1, got {self.min_gap_blocks}")
        if self.free_running < 0:
            raise UserError(f"--free-running must be >= 0, got {self.free_running}")
        if self.replay and self.free_running:
            raise UserError("--free-running compares against the model's own dense outputs: not with --replay")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")

    @property
    def steps(self) -> tuple[float, ...]:
        if self.step_thresholds is not None:
            return self.step_thresholds
        return FIDELITY_STEP_THRESHOLDS if self.fidelity else PREMISE_STEP_THRESHOLDS

    @property
    def blocks(self) -> tuple[float, ...]:
        if self.block_thresholds is not None:
            return self.block_thresholds
        return FIDELITY_BLOCK_THRESHOLDS[self.distance] if self.fidelity else PREMISE_BLOCK_THRESHOLDS

    @property
    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        from memshare.replay import replay_name
        from memshare.results import default_out_dir

        return default_out_dir("analyze", replay_name(self.replay) if self.replay else self.dataset, self.model)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(step_thresholds=list(self.steps), block_thresholds=list(self.blocks), policies=list(self.policies),
                 out=str(self.out_dir))
        if self.replay:
            d["dataset"] = None  # the traces come from the replay file, not from --dataset
        return d
