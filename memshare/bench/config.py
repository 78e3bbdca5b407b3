"""``memshare bench`` settings: the policy list, preset suites and the validated ``BenchConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memshare.core.config import ALL_POLICIES, BASELINES, MemShareConfig
from memshare.data import FieldMap
from memshare.errors import UserError

# Raw top-k logprobs recorded per position in replay runs (engine-side fidelity against dense).
FIDELITY_TOP_K = 8
# Run order: memshare before random, which is matched to memshare's run (``match_random``).
RUN_ORDER = ("vanilla", "vanilla-sync", "dense", "memshare", "random")
# A suite's ``replay`` that means "the DeepSeek-R1 traces" (``memshare.replay.default_traces``).
DEFAULT_REPLAY = "<deepseek-r1 traces>"
# --suite reasoning-long's size: measured to fit 45 minutes on 2 CPU cores (docs/RESULTS.md).
LONG_TRACES, LONG_BUDGETS = 4, "96,160"
# Preset workloads for `memshare bench --suite NAME`.
SUITES = {
    "throughput": {"limit": 32, "kv_blocks": 96, "policy": "vanilla,dense,random,memshare", "repeats": 3,
                   "max_tokens": 512},
    # avg@k-style sampling: siblings of one prompt share its prefix (vanilla: prefix caching) and,
    # with MemShare, same-position blocks; the pool makes vanilla preempt.
    "samples": {"limit": 8, "samples": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 512, "kv_blocks": 96,
                "policy": "vanilla,dense,random,memshare", "repeats": 1},
    # The paper's regime: real DeepSeek-R1 reasoning replayed token for token (forced decoding), so
    # every policy emits the same tokens; a prefix of each trace long enough to exceed the pool at
    # the two tighter budgets, sized to run in about 20 minutes on 2 CPU cores.
    "reasoning": {"replay": DEFAULT_REPLAY, "limit": 8, "max_tokens": 512, "kv_blocks": "48,64,96",
                  "policy": "vanilla,dense,random,memshare", "repeats": 1},
    # Issue 29's engine confirmation: the study's best sharing rule (share delay 4, block 0.6) on
    # report-split traces (never used to choose it) at 2,048 tokens, random matched on freed
    # memory-time, a tight and a loose budget.
    "reasoning-long": {"replay": DEFAULT_REPLAY, "split": "report", "limit": LONG_TRACES, "max_tokens": 2048,
                       "kv_blocks": LONG_BUDGETS, "policy": "vanilla,dense,random,memshare", "repeats": 1,
                       "match_random": "freed", "sharing": {"share_delay_blocks": 4, "block_threshold": 0.6}},
}
# How ``random`` is matched to ``memshare`` when both run: on the share of eligible blocks it
# shares (``affected``), or on the memory-time it frees (``freed``, the study's axis).
MATCH_RANDOM = ("affected", "freed")


# What an option left out (None) becomes when no suite sets it.
OPTION_DEFAULTS = {"limit": 16, "kv_blocks": None, "policy": "dense,memshare", "repeats": 1, "max_tokens": 512,
                   "samples": 1, "temperature": 0.0, "top_p": 1.0, "replay": None, "split": "all",
                   "match_random": "affected"}


def parse_budgets(value: str | int | None) -> tuple[int | None, ...]:
    """``--kv-blocks``: None (vLLM sizes the pool), ``N`` or a comma list ``N,M,...`` (a sweep)."""
    if value is None or isinstance(value, int):
        return (value,)
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    try:
        budgets = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"--kv-blocks {value!r}: give a number of blocks or a comma list such as 48,64,96") from None
    if not budgets or any(b < 2 for b in budgets) or len(set(budgets)) != len(budgets):
        raise UserError(f"--kv-blocks {value!r}: budgets must be distinct numbers of blocks, at least 2")
    return budgets


def resolve_options(suite: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """Options for ``BenchConfig``: what the user gave wins, then the suite's preset, then defaults.

    ``given`` maps option names to the user's value, None where the option was left out.
    """
    if suite is not None and suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}: use one of {', '.join(SUITES)}")
    preset = SUITES.get(suite, {}) if suite else {}
    out = dict(given)
    for key, default in OPTION_DEFAULTS.items():
        if out.get(key) is None:
            out[key] = preset.get(key, default)
    if out.get("replay") == DEFAULT_REPLAY:
        from memshare.replay import default_traces

        out["replay"] = str(default_traces())
    return out


@dataclass(frozen=True)
class BenchConfig:
    model: str = "smollm2-135m"
    dataset: str = "math500"
    data_file: str | None = None
    fields: FieldMap = FieldMap()
    limit: int | None = 16
    samples: int = 1
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    block_size: int = 32
    kv_blocks: int | None = None
    max_num_seqs: int = 256
    tensor_parallel_size: int = 1
    policies: tuple[str, ...] = ("dense", "memshare")
    sharing: MemShareConfig = field(default_factory=MemShareConfig)
    out: str = "results"
    force: bool = False
    dtype: str = "auto"
    repeats: int = 1
    prefix_caching: bool = True
    kind: str | None = None  # with data_file: a benchmark of its own, named after the file
    replay: str | None = None  # a trace file: every policy emits its traces (memshare.replay)
    split: str = "all"  # which of the replay file's traces (memshare.replay.SPLITS)
    match_random: str = "affected"  # random's rate from memshare's run (MATCH_RANDOM)
    engine_mode: str = "backend"  # the backend policies' engine (``ENGINE_MODES``; "async" for tests)
    engine_per_run: bool = False  # a fresh engine for every run (default: one per kind, reused)

    @property
    def dataset_name(self) -> str:
        """What runs are filed under: the registered dataset, or the file's name with ``kind``."""
        from pathlib import Path

        if self.replay:
            from memshare.replay import replay_name

            return replay_name(self.replay)
        return Path(self.data_file).stem if self.kind and self.data_file else self.dataset

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UserError(f"--samples must be at least 1, got {self.samples}")
        if self.max_tokens < 1:
            raise UserError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        if not 0.0 <= self.top_p <= 1.0 or self.top_p == 0.0:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0, got {self.temperature}")
        if self.block_size <= 0 or self.block_size % 16:
            raise UserError(f"--block-size must be a positive multiple of 16 (32 on CPU), got {self.block_size}")
        if self.repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {self.repeats}")
        if self.max_num_seqs < 1:
            raise UserError(f"--max-num-seqs must be at least 1, got {self.max_num_seqs}")
        if self.replay and self.samples > 1:
            raise UserError("--samples > 1 with --replay: every sample would emit the same trace")
        if self.split != "all" and not self.replay:
            raise UserError(f"--split {self.split} chooses replay traces: give --replay (or a replay suite)")
        if self.match_random not in MATCH_RANDOM:
            raise UserError(f"--match-random {self.match_random!r}: use one of {', '.join(MATCH_RANDOM)}")
        if self.replay and self.data_file:
            raise UserError("--replay and --data-file both name the prompts: give one")
        bad = [p for p in self.policies if p not in ALL_POLICIES]
        if bad or not self.policies:
            raise UserError(f"unknown policy {', '.join(bad) or '(none)'}: use a comma list of {', '.join(ALL_POLICIES)}")
        # NOTE: the one place a bench run's sharing config gets its block size and seed: the engine's.
        if (self.sharing.block_size, self.sharing.seed) != (self.block_size, self.seed):
            object.__setattr__(self, "sharing", self.sharing.replace(block_size=self.block_size, seed=self.seed))

    @classmethod
    def from_options(cls, *, suite: str | None = None, policy: str | None = None, kv_blocks: str | int | None = None,
                     problem_field: str | None = None, answer_field: str | None = None, id_field: str | None = None,
                     sharing: dict[str, Any] | None = None, **options: Any) -> tuple[BenchConfig, tuple[int | None, ...]]:
        """A config from command-line options, and the KV budgets to run it at (``--kv-blocks N,M``).

        Args:
            suite: a preset of ``SUITES``; options the user gave (not None) win over it.
            policy: comma list of policy names (``--policy``); kv_blocks: ``parse_budgets``' input.
            problem_field, answer_field, id_field: the ``FieldMap`` of ``--data-file``.
            sharing: ``MemShareConfig`` fields (block size and seed come from the options); None
                where left out: the suite's ``sharing`` preset, else the config's default.
            options: the other fields of ``BenchConfig``; None where an ``OPTION_DEFAULTS`` one was left out.
        """
        given = {key: options.pop(key, None) for key in OPTION_DEFAULTS if key not in ("policy", "kv_blocks")}
        resolved = resolve_options(suite, {**given, "policy": policy, "kv_blocks": kv_blocks})
        budgets = parse_budgets(resolved.pop("kv_blocks"))
        names = tuple(p.strip() for p in resolved.pop("policy").split(",") if p.strip())
        sharing = {**SUITES.get(suite or "", {}).get("sharing", {}),
                   **{k: v for k, v in (sharing or {}).items() if v is not None}}
        cfg = cls(**options, **resolved, kv_blocks=budgets[0], policies=names,
                  fields=FieldMap(problem_field, answer_field, id_field), sharing=MemShareConfig(**sharing))
        return cfg, budgets

    def engine_mode_for(self, policy_name: str) -> str:
        """The engine one policy runs on: a baseline's own, else ``engine_mode``."""
        from memshare.engine.protocol import engine_mode_for

        return engine_mode_for(policy_name, self.engine_mode)

    def sharing_for(self, policy_name: str, measured: dict[str, dict[str, Any]]) -> MemShareConfig | None:
        """The sharing config of one policy's run (None: plain vLLM). ``measured``: results of this
        call's earlier policies; random is matched to memshare's run (``matched_rate``)."""
        if policy_name in BASELINES:
            return None
        sharing = self.sharing.replace(policy=policy_name)
        if policy_name == "random" and "memshare" in measured:
            sharing = sharing.replace(random_rate=matched_rate(measured["memshare"], self.match_random))
        return sharing


def matched_rate(memshare: dict[str, Any], match: str) -> float:
    """The random policy's rate that matches a measured memshare run.

    ``affected``: the share of eligible blocks memshare shared. ``freed``: memshare's freed
    block-steps over the run's eligible block-steps (every eligible block shared the moment it
    became eligible); random, which shares at that moment, then frees about as much memory-time
    (its own ``freed_block_steps_share`` is measured and reported beside memshare's).
    """
    if match == "freed":
        eligible = memshare.get("eligible_block_steps") or 0
        rate = (memshare.get("block_steps_freed") or 0) / eligible if eligible else 0.0
    else:
        rate = float(memshare.get("affected_ratio") or 0.0)
    return min(1.0, max(0.0, rate))
