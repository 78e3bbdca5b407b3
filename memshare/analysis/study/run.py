"""``memshare study``: every line's front on one split of the traces, resumable.

For each trace of the split: one dense pass (``dense.py``), each line's points
(``lines.py``), then one batched replay of all points beside the dense row (``replay.py``).
Each trace's rows are appended to ``rows.jsonl`` as soon as they are measured, so a killed run
resumes at the next trace; ``summary.json`` adds them up per (line, point) (sums over traces,
so every figure is token-weighted) and ``fronts.png`` draws quality against memory saved.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from memshare.analysis.study.config import StudyConfig
from memshare.analysis.study.replay import RowTotals
from memshare.results import Events


def run_study(cfg: StudyConfig, on_event: Events | None = None) -> dict[str, Any]:
    import torch

    from memshare.analysis.study.dense import dense_pass
    from memshare.analysis.study.lines import LINES, TraceContext
    from memshare.analysis.study.replay import replay_schedules
    from memshare.analysis.traces import load_model, replay_traces
    from memshare.core.config import MemShareConfig
    from memshare.core.rope import rope_spec_from_hf_config
    from memshare.core.steps import StepVocab
    from memshare.results import write_json

    emit = on_event or (lambda kind, data: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    if cfg.force and rows_path.exists():
        rows_path.unlink()
    write_json(out / "config.json", cfg.to_dict())
    lm = load_model(cfg.model, status=lambda m: emit("status", {"message": m}))
    vocab, rope = StepVocab.from_tokenizer(lm.tokenizer), rope_spec_from_hf_config(lm.hf_config)
    traces = replay_traces(lm, cfg.traces_path, cfg.limit, cfg.max_tokens, lambda m: emit("status", {"message": m}),
                           split=cfg.split)
    lines = [LINES[name] for name in cfg.line_names]
    wanted = {(line.name, float(p)) for line in lines for p in line.points}
    done = _done(rows_path)
    base = MemShareConfig(block_size=cfg.block_size, seed=cfg.seed)
    emit("start", {"total": len(traces)})
    for k, trace in enumerate(traces):
        if wanted <= done.get(trace.problem_id, set()):
            emit("advance", {"trace": trace.problem_id, "skipped": True})
            continue
        t0 = time.perf_counter()
        dense = dense_pass(lm, trace, cfg.block_size)
        ctx = TraceContext(lm, trace, dense, vocab, rope, base)
        keys, schedules = [], []
        for line in lines:
            for point, actions in line.build(ctx, line.points):
                keys.append((line.name, float(point)))
                schedules.append(actions)
        totals = _measure(lm, trace, cfg.block_size, schedules, ctx.eligible, replay_schedules)
        with rows_path.open("a") as f:
            for (name, point), tot in zip(keys, totals):
                f.write(json.dumps({"trace": trace.problem_id, "line": name, "point": point, **tot.to_dict()}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        emit("advance", {"trace": trace.problem_id, "seconds": time.perf_counter() - t0, "index": k})
    summary = summarize(rows_path, [t.problem_id for t in traces], cfg)
    write_json(out / "summary.json", summary)
    summary["figure"] = fronts_plot(summary, out / "fronts.png")
    summary["written"] = str(out / "summary.json")
    return summary


CONTROL_DELAYS = (0, 4)  # today's default, and the newest 4 blocks kept exact


def run_control(cfg: StudyConfig, on_event: Events | None = None) -> dict[str, Any]:
    """The positive control (``control.py``) on the split's traces: MemShare at the default
    thresholds with each of ``CONTROL_DELAYS``, beside random sharing matched to it."""
    import torch

    from memshare.analysis.study.control import measure_control, with_repeats
    from memshare.analysis.traces import load_model, replay_traces
    from memshare.core.config import MemShareConfig
    from memshare.core.rope import rope_spec_from_hf_config
    from memshare.core.steps import StepVocab
    from memshare.results import write_json

    emit = on_event or (lambda kind, data: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    lm = load_model(cfg.model, status=lambda m: emit("status", {"message": m}))
    vocab, rope = StepVocab.from_tokenizer(lm.tokenizer), rope_spec_from_hf_config(lm.hf_config)
    # NOTE: the source text is cut longer than the control: copies add tokens of their own.
    traces = replay_traces(lm, cfg.traces_path, cfg.limit, 2 * cfg.max_tokens,
                           lambda m: emit("status", {"message": m}), split=cfg.split)
    configs = [MemShareConfig(block_size=cfg.block_size, seed=cfg.seed, share_delay_blocks=d) for d in CONTROL_DELAYS]
    emit("start", {"total": len(traces)})
    rows = []
    for trace in traces:
        control = with_repeats(trace, cfg.block_size, max_tokens=cfg.max_tokens, seed=cfg.seed)
        rows += measure_control(lm, control, configs, vocab, rope)
        emit("advance", {"trace": trace.problem_id})
    summary = {"config": {**cfg.to_dict(), "control": True}, "traces": len(traces),
               "settings": [_control_summary([r for r in rows if r["share_delay_blocks"] == c.share_delay_blocks], c)
                            for c in configs], "rows": rows}
    write_json(out / "control.json", summary)
    summary["written"] = str(out / "control.json")
    return summary


def _control_summary(rows: list[dict[str, Any]], config) -> dict[str, Any]:
    ms = sum((RowTotals.from_dict(r["memshare"]) for r in rows), RowTotals())
    rnd = sum((RowTotals.from_dict(r["random"]) for r in rows), RowTotals())
    total = {k: sum(r[k] for r in rows) for k in ("copies", "eligible", "shares", "same_text_shares", "copies_shared")}
    return {"step_threshold": config.step_threshold, "block_threshold": config.block_threshold,
            "share_delay_blocks": config.share_delay_blocks, **total,
            "memshare": ms.figures(), "random": rnd.figures()}


def _measure(lm, trace, block_size: int, schedules, eligible: int, replay) -> list[RowTotals]:
    """``replay`` each distinct non-empty schedule once; an empty one is the dense row itself."""
    distinct: dict[tuple, int] = {}
    for s in schedules:
        if s:
            distinct.setdefault(tuple(sorted(s, key=lambda a: (a.at_full, a.block))), len(distinct))
    measured = replay(lm, trace, block_size, [list(k) for k in distinct], eligible) if distinct else []
    out = []
    for s in schedules:
        if not s:
            tokens = len(trace.output_ids)
            lengths = sum(range(len(trace.prompt_ids), len(trace.prompt_ids) + tokens))
            out.append(RowTotals(tokens=tokens, agree=tokens, held=lengths, dense=lengths, eligible=eligible))
        else:
            out.append(RowTotals().merge(measured[distinct[tuple(sorted(s, key=lambda a: (a.at_full, a.block)))]]))
    return out


def _done(path: Path) -> dict[str, set[tuple[str, float]]]:
    done: dict[str, set[tuple[str, float]]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            done.setdefault(row["trace"], set()).add((row["line"], float(row["point"])))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from a killed run
    return done


def summarize(rows_path: Path, trace_ids: list[str], cfg: StudyConfig) -> dict[str, Any]:
    """Per line and point: the figures of the rows' sums over ``trace_ids`` (token-weighted)."""
    from memshare.analysis.study.lines import LINES

    ids = set(trace_ids)
    sums: dict[tuple[str, float], RowTotals] = {}
    seen: dict[tuple[str, float], set[str]] = {}
    for line in rows_path.read_text().splitlines() if rows_path.exists() else []:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        key = (row["line"], float(row["point"]))
        if row["trace"] not in ids or row["trace"] in seen.setdefault(key, set()):
            continue
        seen[key].add(row["trace"])
        sums.setdefault(key, RowTotals()).merge(RowTotals.from_dict(row))
    out_lines = []
    for name in cfg.line_names:
        line = LINES[name]
        pts = [{"point": p, "traces": len(seen.get((name, float(p)), ())), **sums[(name, float(p))].figures()}
               for p in line.points if (name, float(p)) in sums]
        out_lines.append({"line": name, "kind": line.kind, "about": line.about, "points": pts})
    return {"config": cfg.to_dict(), "traces": len(ids), "lines": out_lines}


def fronts_plot(summary: dict[str, Any], path: Path) -> str:
    """Top-1 agreement and KL against freed memory-time, one line per rule."""
    from memshare.results import pyplot, save_figure

    plt = pyplot()
    style = {"rule": ("-", "o"), "baseline": ("-", "s"), "bound": ("--", "^"), "eviction": (":", "D")}
    colors = plt.get_cmap("tab20").colors
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for i, line in enumerate(summary["lines"]):
        pts = sorted(line["points"], key=lambda p: p["freed_memory_time"])
        if not pts:
            continue
        x = [100 * p["freed_memory_time"] for p in pts]
        dash, marker = style[line["kind"]]
        kw = {"linestyle": dash, "marker": marker, "label": f"{line['line']} ({line['kind']})",
              "color": colors[(2 * i) % 20 + (2 * i // 20) % 2]}
        if line["kind"] == "baseline":
            kw.update(color="black" if line["line"] == "random" else "dimgray", linewidth=2.5)
        axes[0].plot(x, [p["top1"] for p in pts], **kw)
        axes[1].plot(x, [p["kl"] for p in pts], **kw)
    cfg = summary["config"]
    for ax, ylabel in zip(axes, ("top-1 agreement with dense", "mean KL(dense || run)")):
        ax.set_xlabel("freed memory-time (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{cfg['split']} split, {summary['traces']} traces, {cfg['max_tokens']}-token prefixes, "
                 f"block {cfg['block_size']} ({cfg['model']})")
    return str(save_figure(fig, path))
