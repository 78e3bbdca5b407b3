"""Settings of ``memshare compare``: one frozen, validated dataclass and the output folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from memshare.analysis.config import WorkloadOptions
from memshare.analysis.eviction import EVICTION_METHODS, EvictionSettings
from memshare.errors import UserError
from memshare.results import default_out_dir

SHARING_METHODS = ("memshare", "random-share")
METHODS = SHARING_METHODS + tuple(EVICTION_METHODS)
DEFAULT_BUDGETS = (0.5, 0.75)
# MemShare is not given a budget: its KV follows its thresholds. Per prompt and budget the
# first pair (step cosine, block distance) of this ladder, tightest first, whose replay holds
# at most the budget is used; the first pair is the default (MemShareConfig).
MEMSHARE_LADDER = ((0.8, 0.55), (0.8, 0.65), (0.8, 0.8), (0.5, 0.8), (0.5, 1.2), (0.0, 2.0))


@dataclass(frozen=True, slots=True)
class CompareConfig(WorkloadOptions):
    """What ``memshare compare`` runs: a workload (``WorkloadOptions``; ``max_tokens``: greedy
    tokens per prompt, at most, dense traces and free running; ``block_size``: for sharing) and
    the methods.

    Args:
        methods: any of ``METHODS``; ``random-share`` needs ``memshare``.
        kv_budgets: fractions of each dense trace's KV (prompt + output tokens) in (0, 1).
        eviction: the eviction methods' knobs.
        out: results folder; ``None``: ``results/compare__<dataset>__<model>``.
        threads: torch CPU threads (``None``: torch's default).
        force: start over instead of resuming finished prompts.
    """

    limit: int = 8  # compare's own defaults (WorkloadOptions keeps the field's place and its checks)
    max_tokens: int = 256
    methods: tuple[str, ...] = METHODS
    kv_budgets: tuple[float, ...] = DEFAULT_BUDGETS
    eviction: EvictionSettings = field(default_factory=EvictionSettings)
    out: str | None = None
    threads: int | None = None
    force: bool = False
    seed: int = 0

    MIN_TOKENS: ClassVar[int] = 2

    def __post_init__(self) -> None:
        WorkloadOptions.__post_init__(self)  # explicit: super() does not work in a slots dataclass
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise UserError(f"unknown method {', '.join(bad) or '(none)'}: use a comma list of {', '.join(METHODS)}")
        if "random-share" in self.methods and "memshare" not in self.methods:
            raise UserError("random-share is matched to memshare's shared blocks: add memshare to --methods")
        budgets = tuple(float(b) for b in self.kv_budgets)
        if not budgets or any(not 0.0 < b < 1.0 for b in budgets):
            raise UserError(f"--kv-budget values must be fractions in (0, 1), got {list(self.kv_budgets)}")
        object.__setattr__(self, "kv_budgets", tuple(sorted(set(budgets))))
        # memshare first: random-share reads its shares.
        object.__setattr__(self, "methods", tuple(m for m in METHODS if m in self.methods))
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else default_out_dir("compare", self.dataset, self.model)

    def run_params(self, method: str, budget: float | None) -> dict[str, Any]:
        """What a run folder's results depend on (its name is their hash; ``limit`` is not in it)."""
        params: dict[str, Any] = {"model": self.model, "dataset": self.dataset, "data_file": self.data_file,
                                  "max_tokens": self.max_tokens, "method": method, "kv_budget": budget}
        if method in SHARING_METHODS:
            params.update(block_size=self.block_size, ladder=[list(p) for p in MEMSHARE_LADDER], seed=self.seed)
        elif method != "dense":
            params["eviction"] = dataclasses.asdict(self.eviction)
        return params

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(methods=list(self.methods), kv_budgets=list(self.kv_budgets), out=str(self.out_dir))
        return d
