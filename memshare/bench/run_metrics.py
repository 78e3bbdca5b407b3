"""``RunMetrics``: every metric a benchmark run reports, written once.

A field is a metric's name (the key in ``metrics.json``, ``--json`` output, ablation points and
regression baselines); its metadata holds the table label and format that ``bench``, ``report``
and ``ablate`` tables use, and whether it is copied from the engine's report. Formulas live in
``memshare.bench.metrics``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _m(label: str, fmt: str | None = "{:.2f}", *, engine: bool = False) -> Any:
    return field(default=None, metadata={"label": label, "fmt": fmt, "engine": engine})


@dataclass(slots=True)
class RunMetrics:
    # what ran
    policy: str | None = _m("policy", None)
    model: str | None = _m("model", None)
    dataset: str | None = _m("dataset", None)
    num_prompts: int | None = _m("prompts", "{}")
    samples: int | None = _m("samples", "{}")
    run_dir: str | None = _m("run", None)
    # answers
    num_graded: int | None = _m("graded", "{}")
    num_correct: int | None = _m("correct", "{}")
    accuracy: float | None = _m("acc", "{:.1%}")
    # throughput on this machine
    output_tokens: int | None = _m("output tokens", "{}")
    wall_s: float | None = _m("wall s", "{:.1f}")
    output_tokens_per_s: float | None = _m("tok/s", "{:.1f}")
    requests_per_s: float | None = _m("req/s", "{:.3f}")
    mean_output_tokens: float | None = _m("mean len", "{:.0f}")
    hit_token_cap: int | None = _m("at cap", "{}")
    mean_ttft_s: float | None = _m("TTFT s", "{:.1f}")
    mean_tpot_s: float | None = _m("TPOT ms", "ms:{:.0f}")
    bookkeeping_share_of_step: float | None = _m("bookkeeping", "{:.1%}")
    # from the engine (memshare.engine.stats.StepStats and the scheduler side)
    engine_steps: int | None = _m("steps", "{:.0f}", engine=True)
    step_ms: float | None = _m("step ms", "{:.1f}", engine=True)
    peak_kv_blocks: int | None = _m("peak KV", "{}", engine=True)
    num_preemptions: int | None = _m("preempt", "{}", engine=True)
    mean_running_requests: float | None = _m("running", "{:.2f}", engine=True)
    kv_blocks_per_running: float | None = _m("KV/req", "{:.1f}", engine=True)
    kv_blocks_total: int | None = _m("KV blocks", "{}", engine=True)
    kv_budget: int | None = _m("KV budget", "{}")  # --kv-blocks (None: the pool vLLM sized)
    tokens_per_step: float | None = _m("tok/step", "{:.2f}")
    block_steps_held: int | None = _m("block-steps held", "{}", engine=True)
    block_steps_freed: int | None = _m("block-steps freed", "{}", engine=True)
    eligible_block_steps: int | None = _m("eligible block-steps", "{}", engine=True)
    freed_block_steps_share: float | None = _m("freed mem-time", "{:.1%}")
    affected_ratio: float | None = _m("affected", "{:.1%}", engine=True)
    shared_blocks: int | None = _m("shared", "{}", engine=True)
    freed_blocks: int | None = _m("freed", "{}", engine=True)
    leaked_blocks: int | None = _m("leaked", "{}", engine=True)
    stage1_ms_per_step: float | None = _m("stage 1 ms", "{:.2f}", engine=True)
    stage2_ms_per_step: float | None = _m("stage 2 ms", "{:.2f}", engine=True)
    remap_ms_per_step: float | None = _m("remap ms", "{:.2f}", engine=True)
    prefix_caching: bool | None = _m("prefix caching", None, engine=True)
    resumed_from: int | None = _m("resumed from", "{}", engine=True)
    prefix_cached_tokens: int | None = _m("cached tokens", "{}")
    # against the baselines of the same workload (memshare.bench.metrics.ratios)
    speedup_vs_dense: float | None = _m("tok x dense")
    requests_speedup_vs_dense: float | None = _m("req x dense")
    steps_speedup_vs_vanilla: float | None = _m("steps x vanilla")
    steps_speedup_vs_dense: float | None = _m("steps x dense")
    concurrency_gain: float | None = _m("x running")
    ideal_gain: float | None = _m("bound")
    bound_achieved: float | None = _m("of bound", "{:.0%}")
    ideal_gain_achieved: float | None = _m("of ideal", "{:.0%}")
    concurrency_gain_achieved: float | None = _m("achieved", "{:.0%}")
    # free-running quality against dense (memshare.analysis.quality.quality_vs)
    loop_or_cap_share: float | None = _m("loop/cap", "{:.0%}")
    same_answer_as_dense: float | None = _m("=dense ans", "{:.0%}")
    mean_common_prefix: float | None = _m("prefix", "{:.0f}")
    identical_to_dense: float | None = _m("identical", "{:.0%}")
    # teacher-forced fidelity against dense in trace replay (memshare.bench.fidelity)
    top1_agreement: float | None = _m("top-1 =dense", "{:.4f}")
    top1_agreement_after: float | None = _m("top-1 after share", "{:.4f}")
    topk_kl: float | None = _m("KL top-k", "{:.4f}")
    topk_kl_after: float | None = _m("KL after share", "{:.4f}")
    positions_after_share: float | None = _m("after share", "{:.1%}")
    trace_nll: float | None = _m("trace NLL", "{:.3f}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def engine_names(cls) -> tuple[str, ...]:
        """The metrics copied as they are from the engine's report."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["engine"])

    @classmethod
    def numeric_names(cls) -> tuple[str, ...]:
        """Metrics a regression baseline can hold (numbers)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["fmt"] is not None)

    @classmethod
    def columns(cls, *names: str) -> list[tuple[str, str, str | None]]:
        """``(label, name, fmt)`` table columns for ``names``."""
        meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
        unknown = [n for n in names if n not in meta]
        if unknown:
            raise KeyError(f"not a RunMetrics field: {', '.join(unknown)}")
        return [(meta[n]["label"], n, meta[n]["fmt"]) for n in names]

    @classmethod
    def pick(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The metrics of ``data`` (None where missing), in field order."""
        return {n: data.get(n) for n in cls.names()}
