"""``memshare compare``: every method on the same dense traces, prompts and KV budgets.

Outputs, in ``CompareConfig.out_dir``: ``traces.json`` (dense greedy traces, reused), one run
folder per method and budget (``RunDir``: ``config.json``, ``samples.jsonl`` with one line per
prompt appended as it finishes, ``metrics.json``) plus ``dense__...`` for the reference,
``compare.json`` (every row) and ``compare.png``. A rerun resumes: prompts already in a
folder's ``samples.jsonl`` are skipped; ``--force`` starts over.
"""

from __future__ import annotations

import json
import os
from typing import Any

from memshare.analysis.compare.config import CompareConfig
from memshare.results import Events, RunDir, json_safe, run_name, write_json


def run_compare(cfg: CompareConfig, on_event: Events | None = None) -> dict[str, Any]:
    """Run what ``cfg`` asks for; return ``{"methods": [...], ...}`` as written to ``compare.json``."""
    from memshare.analysis.compare.measure import Context, measure_prompt
    from memshare.analysis.compare.metrics import dense_row, method_row
    from memshare.analysis.compare.plot import quality_vs_kv
    from memshare.analysis.start import start_run
    from memshare.analysis.traces import dense_traces
    from memshare.core.config import MemShareConfig
    from memshare.core.rope import rope_spec_from_hf_config
    from memshare.core.steps import StepVocab

    run = start_run(cfg, cfg.threads, cfg.out_dir, on_event)
    lm, out, status, emit = run.lm, run.out, run.status, run.emit
    traces = dense_traces(lm, run.work, cfg.max_tokens, out / "traces.json", cfg.force, status)
    grade = _grader(lm, run.work.problems)
    ctx = Context(lm, MemShareConfig(block_size=cfg.block_size, seed=cfg.seed), cfg.eviction,
                  StepVocab.from_tokenizer(lm.tokenizer), rope_spec_from_hf_config(lm.hf_config), cfg.max_tokens, grade)

    dense_dir = _run_dir(cfg, "dense", None)
    dense = _dense_rows(dense_dir, traces, grade)
    keys = [(m, b) for m in cfg.methods for b in cfg.kv_budgets]
    dirs = {k: _run_dir(cfg, *k) for k in keys}
    done = {k: {str(r["problem_id"]): r for r in dirs[k].load_samples()} for k in keys}
    total = len(keys) * len(traces)
    finished = sum(t.problem_id in done[k] for k in keys for t in traces)
    emit("start", {"total": total, "done": finished, "out": str(out)})
    for t, trace in enumerate(traces):
        todo = [k for k in keys if trace.problem_id not in done[k]]
        if not todo:
            continue
        status(f"prompt {t + 1}/{len(traces)} ({trace.problem_id}): {len(todo)} method runs, batched")
        saved_ms = {b: done[("memshare", b)][trace.problem_id] for b in cfg.kv_budgets
                    if trace.problem_id in done.get(("memshare", b), {})}
        for key, row in measure_prompt(ctx, trace, todo, saved_ms).items():
            _append(dirs[key], row)
            done[key][trace.problem_id] = row
        finished += len(todo)
        emit("progress", {"done": finished, "total": total, "label": f"prompt {t + 1}/{len(traces)}"})

    wanted = [t.problem_id for t in traces]
    rows = [dense_row(dense)]
    for k in keys:
        r = method_row(k[0], k[1], [done[k][pid] for pid in wanted], dense)
        write_json(dirs[k].metrics_path, json_safe({**r, "run_dir": str(dirs[k].path)}))
        rows.append(r)
    write_json(dense_dir.metrics_path, json_safe(rows[0]))
    figure = quality_vs_kv(rows, out / "compare.png", title=f"{cfg.dataset} / {cfg.model}: {len(traces)} prompts")
    result = json_safe({"methods": rows, "config": cfg.to_dict(), "model_path": lm.path, "figure": str(figure),
                     "run_dirs": {f"{m}@{b:g}": str(d.path) for (m, b), d in dirs.items()}})
    write_json(out / "compare.json", result)
    result["written"] = str(out / "compare.json")
    return result


def _run_dir(cfg: CompareConfig, method: str, budget: float | None) -> RunDir:
    params = cfg.run_params(method, budget)
    label = method if budget is None else f"{method}@{budget:g}"
    run = RunDir(cfg.out_dir / run_name(cfg.dataset, cfg.model, label, params))
    run.prepare({"method": method, "kv_budget": budget, **params}, cfg.force)
    return run


def _dense_rows(run: RunDir, traces, grade) -> list[dict[str, Any]]:
    """The dense traces as sample rows (graded), kept in the dense run folder."""
    saved = {str(r["problem_id"]): r for r in run.load_samples()}
    rows = []
    for t in traces:
        row = saved.get(t.problem_id)
        if row is None or row.get("output_token_ids") != list(t.output_ids):
            row = {"problem_id": t.problem_id, "sample_index": 0, "method": "dense", "prompt_tokens": len(t.prompt_ids),
                   "dense_kv": len(t.prompt_ids) + len(t.output_ids), "output_token_ids": list(t.output_ids),
                   "output_tokens": len(t.output_ids), "finished": t.finished,
                   "finish_reason": "stop" if t.finished else "length", **grade(list(t.output_ids), t.problem_id)}
        rows.append(row)
    run.rewrite_samples(rows)
    return rows


def _grader(lm, problems):
    from evaluators import grade_detailed

    by_id = {p.id: p for p in problems}

    def grade(ids: list[int], problem_id: str) -> dict[str, Any]:
        p = by_id[problem_id]
        text = lm.tokenizer.decode(ids, skip_special_tokens=True)
        res = grade_detailed(text, p.gold, p.kind)
        return {"response": text, "gold": p.gold, "extracted": res.extracted, "correct": res.correct,
                "reason": res.reason}

    return grade


def _append(run: RunDir, row: dict[str, Any]) -> None:

    with run.samples_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(json_safe(row)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
