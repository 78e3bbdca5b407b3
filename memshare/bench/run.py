"""``memshare bench``: generate with each policy on the same prompts, grade, and compare.

Each policy runs in a child process (``memshare.engine.batch``, spoken to through
``memshare.engine.protocol``); this module never imports vLLM, so bad input fails fast and
cleanly. Samples land in the run folder as they finish; a rerun resumes. When both
``memshare`` and ``random`` are asked for, ``memshare`` runs first and ``random`` is matched to
its measured affected ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from memshare.bench.config import FIDELITY_TOP_K, RUN_ORDER, BenchConfig
from memshare.bench.metrics import (
    add_fidelity_vs_dense,
    add_quality_vs_dense,
    add_ratios,
    run_metrics,
    summarize_repeats,
)
from memshare.core.config import BASELINES, MemShareConfig
from memshare.data import Problem
from memshare.engine.protocol import BatchSpec, Done, EngineSettings, Failed, Job, Progress, SamplingSpec, decode_event
from memshare.errors import UserError
from memshare.results import Events, RunDir, read_json, run_name, write_json


def run_bench(cfg: BenchConfig, on_event: Events | None = None,
              reference: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run every policy in ``cfg.policies``; return one result dict per policy.

    ``reference``: a dense result of the same workload from an earlier call (``memshare
    ablate``), used for ratios and quality when ``cfg.policies`` has no dense run.
    """
    from memshare.workload import load_workload

    emit = on_event or (lambda kind, data: None)
    work = load_workload(cfg.model, cfg.max_tokens, replay=cfg.replay, dataset=cfg.dataset, data_file=cfg.data_file,
                         limit=cfg.limit, fields=cfg.fields, seed=cfg.seed, kind=cfg.kind,
                         status=lambda msg: emit("status", {"message": msg}))
    for note in work.notes:
        emit("status", {"message": note})
    problems, prompts, forced = work.problems, work.prompts, work.forced
    longest = work.longest(cfg.max_tokens)
    engine = _engine_settings(cfg, work.model_path, -(-longest // cfg.block_size) * cfg.block_size, bool(forced))
    order = sorted(cfg.policies, key=RUN_ORDER.index)
    reps: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    # NOTE: repeats alternate policies (d m r, d m r, ...) so machine noise hits all alike.
    for rep in range(cfg.repeats):
        for policy_name in order:
            sharing = cfg.sharing_for(policy_name, {name: v[0] for name, v in reps.items() if v})
            policy_engine = replace(engine, engine_mode=cfg.engine_mode_for(policy_name))
            reps[policy_name].append(_run_one(cfg, policy_name, sharing, problems, prompts, policy_engine, emit,
                                              rep, forced))
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
             prompts: dict[str, list[int]], engine: EngineSettings, emit: Events,
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
        report = _spawn(spec, emit, label)
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


def _spawn(spec: BatchSpec, emit: Events, label: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec.to_dict(), fh)
        spec_path = fh.name
    from memshare.engine.adapter import engine_env

    env = engine_env({**os.environ, "PYTHONUNBUFFERED": "1"}, in_process=True, quiet=True,
                     vllm_defaults=spec.engine.engine_mode == "defaults")
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "memshare.engine.batch", spec_path], stdout=subprocess.PIPE,
                            stderr=log, text=True, env=env)
    report: dict[str, Any] | None = None
    error = None
    try:
        for line in proc.stdout:
            event = decode_event(line)
            if isinstance(event, Progress):
                emit("progress", {"policy": label, **event.to_dict()})
            elif isinstance(event, Done):
                report = event.report
            elif isinstance(event, Failed):
                error = event.message
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.unlink(spec_path)
    if error:
        raise UserError(f"{label}: {error}")
    if proc.returncode != 0 or report is None:
        log.seek(0)
        tail = [ln for ln in log.read().splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise UserError(f"{label}: the engine process failed (exit {proc.returncode}): {tail[0][:300]} "
                        f"[full log: {log.name}]")
    os.unlink(log.name)
    return report


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


