"""One formula per metric of a benchmark run: ratios to the baselines, quality against dense, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshare.analysis.quality import quality_vs
from memshare.bench.run_metrics import RunMetrics
from memshare.data import Problem
from memshare.results import RunDir


def summarize_repeats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric metric over repeats; the first repeat's other fields."""
    import statistics

    out = dict(runs[0])
    out["repeats"] = len(runs)
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            out[key] = statistics.median(vals) if vals else None
    out["run_dirs"] = [r["run_dir"] for r in runs]
    return out


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Ratios against dense measured in the same invocation, and two ideal gains.

    ``ideal_gain`` = 1 / (1 - affected_ratio) (the "bound"): the concurrency gain if every
    output block were shared from the start and all KV were output blocks;
    ``concurrency_gain`` = mean running requests / dense's: what the freed blocks really
    allowed, i.e. the gain if decoding scaled perfectly with the number of running requests;
    ``bound_achieved`` = (concurrency_gain - 1) / (ideal_gain - 1). ``ideal_gain_achieved`` =
    (requests/s ratio - 1) / (ideal_gain - 1); ``concurrency_gain_achieved`` likewise for
    ``concurrency_gain``; None when the gain is under 1% (not a memory-bound run).
    ``steps_speedup_vs_vanilla`` = vanilla's engine steps / the run's: the speed-up of a
    decoder whose step time does not grow with the batch (a memory-bound GPU).
    """
    dense = results.get("dense") or results.get("vanilla")
    for r in results.values():
        r.update(ratios(r, dense, results.get("vanilla")))


def ratios(r: dict[str, Any], dense: dict[str, Any] | None, vanilla: dict[str, Any] | None) -> dict[str, Any]:
    """The derived metrics of one run against its baselines (see ``add_ratios``); None where a
    baseline or a value is missing."""
    out: dict[str, Any] = {}
    for key, name in (("output_tokens_per_s", "speedup_vs_dense"), ("requests_per_s", "requests_speedup_vs_dense"),
                      ("mean_running_requests", "concurrency_gain")):
        base, value = (dense or {}).get(key), r.get(key)
        out[name] = value / base if base and isinstance(value, (int, float)) else None
    steps = r.get("engine_steps")
    for base_run, name in ((vanilla, "steps_speedup_vs_vanilla"), (dense, "steps_speedup_vs_dense")):
        base_steps = (base_run or {}).get("engine_steps")
        out[name] = base_steps / steps if steps and base_steps else None
    ratio = r.get("affected_ratio")
    out["ideal_gain"] = 1.0 / (1.0 - ratio) if ratio is not None and ratio < 1 else None
    gain = out["requests_speedup_vs_dense"]
    for ideal in ("ideal_gain", "concurrency_gain"):
        bound = out[ideal]
        # NOTE: below a 1% gain (a run that is not memory-bound) the share is noise over noise.
        out[f"{ideal}_achieved"] = (gain - 1.0) / (bound - 1.0) if gain is not None and bound and bound > 1.01 else None
    bound, conc = out["ideal_gain"], out["concurrency_gain"]
    # The share of the possible concurrency gain that sharing really bought.
    out["bound_achieved"] = (conc - 1.0) / (bound - 1.0) if conc is not None and bound and bound > 1.01 else None
    return out


def accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``num_graded``, ``num_correct`` and ``accuracy`` (pass@1 averaged over every graded sample)."""
    graded = [r for r in rows if "correct" in r]
    n_correct = sum(1 for r in graded if r["correct"] is True)
    return {"num_graded": len(graded), "num_correct": n_correct,
            "accuracy": n_correct / len(graded) if graded else None}


def add_quality_vs_dense(results: dict[str, dict[str, Any]], reps: dict[str, list[dict[str, Any]]],
                         reference: dict[str, Any] | None = None) -> None:
    """Free-running quality against dense (first repeat; else ``reference``, a dense run from
    another call): same answer, common prefix, loops."""
    base = reps.get("dense") or reps.get("vanilla") or ([reference] if reference else None)
    ref = run_samples(base[0]) if base else []
    for policy, runs in reps.items():
        results[policy].update(quality_vs(run_samples(runs[0]), ref))


def add_fidelity_vs_dense(results: dict[str, dict[str, Any]], reps: dict[str, list[dict[str, Any]]],
                          reference: dict[str, Any] | None = None) -> None:
    """Teacher-forced fidelity of replay runs against dense (first repeats; ``memshare.bench.fidelity``)."""
    from memshare.bench.fidelity import fidelity_vs

    base = (reps.get("dense") or reps.get("vanilla") or [reference])[0]
    if base is None:
        return
    for policy, runs in reps.items():
        results[policy].update(fidelity_vs(runs[0], base))


def run_samples(run: dict[str, Any]) -> list[dict[str, Any]]:
    return RunDir(Path(run["run_dir"])).load_samples()


def run_metrics(policy: str, cfg: Any, problems: list[Problem], rows: list[dict[str, Any]],
             report: dict[str, Any], run: RunDir) -> dict[str, Any]:
    wanted = {p.id for p in problems}
    rows = [r for r in rows if str(r["problem_id"]) in wanted]
    wall = report.get("wall_s") or 0.0
    out_tokens = report.get("output_tokens", 0)
    n_req = report.get("num_requests", 0)
    lengths = [r["output_tokens"] for r in rows]
    return {
        "policy": policy, "model": cfg.model, "dataset": cfg.dataset_name, "num_prompts": len(problems),
        "samples": cfg.samples, "run_dir": str(run.path), **accuracy(rows),
        "output_tokens": out_tokens, "wall_s": wall,
        "output_tokens_per_s": out_tokens / wall if wall else None,
        "requests_per_s": n_req / wall if wall else None,
        "mean_output_tokens": sum(lengths) / len(lengths) if lengths else None,
        "hit_token_cap": sum(1 for r in rows if r.get("finish_reason") == "length"),
        "mean_ttft_s": _mean([r["ttft_s"] for r in rows]),
        "bookkeeping_share_of_step": _bookkeeping(report),
        "mean_tpot_s": _mean([(r["latency_s"] - r["ttft_s"]) / max(r["output_tokens"] - 1, 1) for r in rows]),
        **{k: report.get(k) for k in RunMetrics.engine_names()},
        "prefix_cached_tokens": sum(r.get("num_cached_tokens") or 0 for r in rows),
        "kv_budget": cfg.kv_blocks,
        "tokens_per_step": out_tokens / report["engine_steps"] if report.get("engine_steps") else None,
        "freed_block_steps_share": _freed_share(report),
    }


def _freed_share(report: dict[str, Any]) -> float | None:
    """Block-steps freed as a share of the block-steps the run would have held without its frees
    (held + freed): the memory-time sharing gave back. 0 for a run that frees nothing."""
    held, freed = report.get("block_steps_held"), report.get("block_steps_freed") or 0
    return freed / (held + freed) if held else None


def _bookkeeping(report: dict[str, Any]) -> float | None:
    """MemShare's own time per step (Stage 1, Stage 2, remap) as a share of the step's wall time."""
    step = report.get("step_ms")
    parts = [report.get(k) for k in ("stage1_ms_per_step", "stage2_ms_per_step", "remap_ms_per_step")]
    if not step or any(p is None for p in parts):
        return None
    return sum(parts) / step


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


