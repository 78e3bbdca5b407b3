"""``memshare analyze``: dense traces, then the premise study or the fidelity study.

Outputs, in ``AnalyzeConfig.out_dir``: ``traces.json`` (the dense greedy traces; reused by a
rerun with the same model, prompts and token cap), then either ``summary.json`` and one
``trace_<k>.png`` heatmap per trace (premise), or ``fidelity.json`` (fidelity). Every number
written is measured; what could not be measured (no pairs of a kind) is null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshare.analysis.config import AnalyzeConfig
from memshare.results import Events, json_safe, write_json


def run_analyze(cfg: AnalyzeConfig, on_event: Events | None = None) -> dict[str, Any]:
    """Run what ``cfg`` asks for; return the summary that was written (JSON-ready)."""
    from memshare.analysis.start import start_run
    from memshare.analysis.traces import dense_traces, replay_traces
    from memshare.core.config import MemShareConfig
    from memshare.core.rope import rope_spec_from_hf_config
    from memshare.core.steps import StepVocab

    sharing = MemShareConfig(block_size=cfg.block_size, distance=cfg.distance, share_delay_blocks=cfg.share_delay_blocks,
                             min_gap_blocks=cfg.min_gap_blocks, same_step=cfg.same_step, seed=cfg.seed)
    run = start_run(cfg, cfg.threads, cfg.out_dir, on_event, replay=bool(cfg.replay))
    lm, out, status = run.lm, run.out, run.status
    vocab = StepVocab.from_tokenizer(lm.tokenizer)
    rope = rope_spec_from_hf_config(lm.hf_config)
    traces = (replay_traces(lm, cfg.replay, cfg.limit, cfg.max_tokens, status) if cfg.replay else
              dense_traces(lm, run.work, cfg.max_tokens, out / "traces.json", cfg.force, status))
    head = {"config": cfg.to_dict(), "model_path": lm.path, "sharing": sharing.to_dict()}
    if cfg.fidelity:
        result = {**head, **_fidelity(cfg, lm, traces, sharing, vocab, rope, status)}
        name = "fidelity.json"
    else:
        result = {**head, **_premise(cfg, lm, traces, sharing, vocab, rope, status, out)}
        name = "summary.json"
    result = json_safe(result)
    write_json(out / name, result)
    result["written"] = str(out / name)
    return result


def _premise(cfg, lm, traces, sharing, vocab, rope, status, out: Path) -> dict[str, Any]:
    from memshare.analysis.plots import trace_heatmaps
    from memshare.analysis.premise import analyze_trace, summarize, trace_summary
    from memshare.analysis.traces import sequence_kv

    analyses, figures = [], []
    for k, trace in enumerate(traces):
        status(f"measuring trace {k + 1}/{len(traces)} ({len(trace.output_ids)} output tokens)")
        keys, values = sequence_kv(lm, trace.token_ids, cfg.block_size)
        a = analyze_trace(trace, keys, values, vocab, sharing, rope)
        analyses.append(a)
        figures.append(str(trace_heatmaps(a, out / f"trace_{k}.png", title=f"{cfg.dataset} / {cfg.model}")))
    return {"traces": [trace_summary(a) for a in analyses],
            **summarize(analyses, cfg.steps, cfg.blocks, cfg.min_gap_blocks), "figures": figures}


def _fidelity(cfg, lm, traces, sharing, vocab, rope, status) -> dict[str, Any]:
    from memshare.analysis.fidelity import dense_outcome, free_running, match_random, teacher_forcing

    settings = [sharing.replace(policy="memshare", step_threshold=s, block_threshold=b)
                for s in cfg.steps for b in cfg.blocks]
    rows = teacher_forcing(lm, traces, settings, vocab, rope, status)
    if "random" in cfg.policies:
        # NOTE: random is matched to memshare's measured ratio, setting by setting: its rate,
        # then the seed whose teacher-forced replay shares as many blocks (see match_random).
        matched = [match_random(s.replace(policy="random", random_rate=min(1.0, r["affected_ratio"])), traces,
                                r["shared_blocks"]) for s, r in zip(settings, rows)]
        random_rows = teacher_forcing(lm, traces, matched, vocab, rope, status)
        rows = [row for pair in zip(rows, random_rows) for row in pair]
        settings = [s for pair in zip(settings, matched) for s in pair]
    free = []
    if cfg.free_running:
        prompts = traces[:cfg.free_running]
        free.append(dense_outcome(prompts))
        for k, s in enumerate(settings):
            status(f"free running {k + 1}/{len(settings)}: {s.policy} on {len(prompts)} prompt(s)")
            free.append(free_running(lm, prompts, s, vocab, rope, cfg.max_tokens))
    return {"traces": [{"problem_id": t.problem_id, "prompt_tokens": len(t.prompt_ids),
                        "output_tokens": len(t.output_ids), "finished": t.finished} for t in traces],
            "teacher_forcing": rows, "free_running": free}
