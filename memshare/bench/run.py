"""``memshare bench``: generate with each policy on the same prompts, grade, and compare.

Runs go to engine processes (``memshare.bench.engines``, spoken to through
``memshare.engine.protocol``): one engine serves every run it can (every policy, threshold and KV
budget of the backend; plain vLLM has its own), one alive at a time. This module never imports
vLLM, so bad input fails fast and cleanly. Samples land in the run folder as they finish; a rerun
resumes. When both ``memshare`` and ``random`` are asked for, ``memshare`` runs first and
``random`` is matched to its measured affected ratio, or with ``match_random="freed"`` to the
memory-time it freed (``memshare.bench.config.matched_rate``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from memshare.bench.config import FIDELITY_TOP_K, RUN_ORDER, BenchConfig
from memshare.bench.engines import Engines, pool_capacity
from memshare.bench.metrics import (
    add_fidelity_vs_dense,
    add_quality_vs_dense,
    add_ratios,
    run_metrics,
    summarize_repeats,
)
from memshare.core.config import BASELINES, MemShareConfig
from memshare.data import Problem
from memshare.engine.protocol import BatchSpec, EngineSettings, Job, SamplingSpec
from memshare.results import Events, RunDir, read_json, run_name, write_json


def run_bench(cfg: BenchConfig, on_event: Events | None = None, reference: dict[str, Any] | None = None,
              engines: Engines | None = None) -> list[dict[str, Any]]:
    """Run every policy in ``cfg.policies``; return one result dict per policy.

    ``reference``: a dense result of the same workload from an earlier call (``memshare
    ablate``), used for ratios and quality when ``cfg.policies`` has no dense run. ``engines``:
    the invocation's engine processes (one is made, and stopped at the end, if None).
    """
    return run_budgets(cfg, (cfg.kv_blocks,), on_event, {cfg.kv_blocks: reference}, engines)[0]


def run_budgets(cfg: BenchConfig, budgets: tuple[int | None, ...], on_event: Events | None = None,
                references: dict[int | None, dict[str, Any] | None] | None = None,
                engines: Engines | None = None) -> list[list[dict[str, Any]]]:
    """Every policy of ``cfg`` at every KV budget: one list of results per budget.

    Runs are ordered so that each engine starts once (``run_order``); ratios and quality are
    computed per budget against that budget's dense (or ``references[budget]``) and vanilla runs.
    """
    from memshare.workload import load_workload

    emit = on_event or (lambda kind, data: None)
    work = load_workload(cfg.model, cfg.max_tokens, replay=cfg.replay, dataset=cfg.dataset, data_file=cfg.data_file,
                         limit=cfg.limit, fields=cfg.fields, seed=cfg.seed, kind=cfg.kind, split=cfg.split,
                         status=lambda msg: emit("status", {"message": msg}))
    for note in work.notes:
        emit("status", {"message": note})
    problems, prompts, forced = work.problems, work.prompts, work.forced
    longest = work.longest(cfg.max_tokens)
    max_model_len = -(-longest // cfg.block_size) * cfg.block_size
    # The one "KV pool too small" check of every budget, before any engine starts.
    settings = {b: _engine_settings(replace(cfg, kv_blocks=b), work.model_path, max_model_len, bool(forced))
                for b in budgets}
    references = references or {}
    reps: dict[tuple[int | None, str], list[dict[str, Any]]] = {}
    own = engines is None
    engines = engines or Engines(pool_capacity(budgets), per_run=cfg.engine_per_run)
    try:
        where = None
        for budget, rep, policy_name in run_order(cfg, budgets):
            mode = cfg.engine_mode_for(policy_name)
            if len(budgets) > 1 and (mode, budget) != where:
                emit("status", {"message": f"KV budget {budget} blocks"})
            where = (mode, budget)
            bcfg = replace(cfg, kv_blocks=budget)
            measured = {name: v[0] for (b, name), v in reps.items() if b == budget and v}
            sharing = bcfg.sharing_for(policy_name, measured)
            engine = replace(settings[budget], engine_mode=mode)
            reps.setdefault((budget, policy_name), []).append(
                _run_one(bcfg, policy_name, sharing, problems, prompts, engine, emit, engines, rep, forced))
    finally:
        if own:
            engines.close()
    return [_summarize(cfg, {p: reps[(b, p)] for p in cfg.policies if (b, p) in reps}, references.get(b),
                       bool(forced)) for b in budgets]


def run_order(cfg: BenchConfig, budgets: tuple[int | None, ...]) -> list[tuple[int | None, int, str]]:
    """``(budget, repeat, policy)`` in the order they run.

    Policies run in ``RUN_ORDER`` (memshare before random, which is matched to it). With reused
    engines, each engine's policies run together (vanilla's, then vanilla-sync's, then the
    backend's), at every budget, and ``--repeats`` alternates within an engine; with
    ``engine_per_run``, budget by budget with repeats alternating over all policies.
    """
    order = sorted(cfg.policies, key=RUN_ORDER.index)
    # NOTE: repeats alternate policies (d m r, d m r, ...) so machine noise hits all alike.
    if cfg.engine_per_run:
        return [(b, rep, p) for b in budgets for rep in range(cfg.repeats) for p in order]
    groups: dict[str, list[str]] = {}
    for p in order:
        groups.setdefault(cfg.engine_mode_for(p), []).append(p)
    return [(b, rep, p) for group in groups.values() for b in budgets for rep in range(cfg.repeats) for p in group]


def _summarize(cfg: BenchConfig, reps: dict[str, list[dict[str, Any]]], reference: dict[str, Any] | None,
               forced: bool) -> list[dict[str, Any]]:
    results = {p: summarize_repeats(v) for p, v in reps.items()}
    baselines = {"dense": reference} if reference is not None and "dense" not in results else {}
    add_ratios({**baselines, **results})
    add_quality_vs_dense(results, reps, reference)
    if forced:
        add_fidelity_vs_dense(results, reps, reference)
    return [results[p] for p in cfg.policies if p in results]


def _engine_settings(cfg: BenchConfig, model_path: str, max_model_len: int, forced: bool) -> EngineSettings:
    """One engine for every policy of the call; its checks (the KV pool holds one request) run here, first."""
    return EngineSettings(model=model_path, block_size=cfg.block_size, kv_blocks=cfg.kv_blocks,
                          max_num_seqs=cfg.max_num_seqs, max_model_len=max_model_len, seed=cfg.seed, dtype=cfg.dtype,
                          prefix_caching=cfg.prefix_caching, tensor_parallel_size=cfg.tensor_parallel_size,
                          forced_decoding=forced)


def _run_one(cfg: BenchConfig, policy_name: str, sharing: MemShareConfig | None, problems: list[Problem],
             prompts: dict[str, list[int]], engine: EngineSettings, emit: Events, engines: Engines,
             rep: int = 0, forced: dict[str, list[int]] | None = None) -> dict[str, Any]:
    forced = forced or {}
    sampling = SamplingSpec(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                            logprobs=FIDELITY_TOP_K if forced else 0)
    params = {"engine": {**engine.to_dict(), "model": cfg.model}, "sampling": sampling.to_dict(),
              "samples": cfg.samples, "limit": cfg.limit, "data_file": cfg.data_file,
              # NOTE: sharing settings do not change a dense run: keep them out of its folder name.
              "sharing": sharing.to_dict() if sharing and policy_name not in ("dense", *BASELINES) else policy_name}
    if cfg.repeats > 1:
        params["repeat"] = rep
    if cfg.replay:
        params["replay"] = str(Path(cfg.replay).resolve())
        if cfg.split != "all":
            params["split"] = cfg.split
    run = RunDir(Path(cfg.out) / run_name(cfg.dataset_name, cfg.model, policy_name, params))
    kind = problems[0].kind if problems else "math"
    run.prepare({"policy": policy_name, "dataset": cfg.dataset_name, "kind": kind, "model": cfg.model, **params}, cfg.force)
    done = {(str(r["problem_id"]), int(r["sample_index"])) for r in run.load_samples()}
    jobs = [Job(f"{p.id}#{s}", p.id, s, prompts[p.id], forced.get(p.id))
            for p in problems for s in range(cfg.samples) if (p.id, s) not in done]
    label = policy_name if cfg.repeats == 1 else f"{policy_name}#{rep + 1}"
    emit("policy", {"policy": label, "total": len(problems) * cfg.samples, "done": len(done), "run_dir": str(run.path)})
    report: dict[str, Any] = {}
    if jobs:
        spec = BatchSpec(engine, sharing, sampling, jobs, str(run.samples_path),
                         dataset=cfg.dataset_name, kind=kind,
                         logprobs_dir=str(run.path / "logprobs") if sampling.logprobs else None)
        report = engines.run(spec, emit, label if not _describe(cfg, sharing) else f"{label} ({_describe(cfg, sharing)})")
        # What actually ran, read from the engine, next to the settings that asked for it.
        write_json(run.config_path, {**read_json(run.config_path), "engine_facts": report.get("engine_facts")})
        write_json(run.metrics_path, {"engine": report, "status": "generated, not graded"})
        report["resumed_from"] = len(done)
    elif run.metrics_path.exists():
        report = json.loads(run.metrics_path.read_text()).get("engine", {})
    rows = _grade(run, problems, emit)
    metrics = run_metrics(policy_name, cfg, problems, rows, report, run)
    write_json(run.metrics_path, {**metrics, "engine": report})
    return metrics


def _describe(cfg: BenchConfig, sharing: MemShareConfig | None) -> str:
    """The budget and thresholds of a run, for a failure message."""
    parts = [f"--kv-blocks {cfg.kv_blocks}"] if cfg.kv_blocks is not None else []
    if sharing is not None and sharing.policy == "memshare":
        parts.append(f"step/block {sharing.step_threshold}/{sharing.block_threshold}")
    return ", ".join(parts)


def _grade(run: RunDir, problems: list[Problem], emit: Events) -> list[dict[str, Any]]:
    from evaluators import grade_detailed

    by_id = {p.id: p for p in problems}
    rows = run.load_samples()
    changed = False
    for row in rows:
        p = by_id.get(str(row["problem_id"]))
        if p is None or "correct" in row:
            continue
        res = grade_detailed(row["response"], p.gold, p.kind)
        row.update(gold=p.gold, extracted=res.extracted, correct=res.correct, reason=res.reason)
        changed = True
    if changed:
        run.rewrite_samples(rows)
    emit("graded", {"num": len(rows)})
    return rows


