"""``memshare bench --kv-blocks 48,64,96``: every policy at every KV budget, in one invocation.

The figure users of KV compression expect: the gain under memory pressure and none when memory
is ample. Each budget's runs are normal run folders (a sweep resumes like any run), served by one
engine per kind built with the largest budget (``memshare.bench.engines``); random sharing is
matched to MemShare's affected ratio at each budget. Writes
``sweep__<dataset>__<model>.json`` and a PNG (engine steps x vanilla and teacher-forced top-1
agreement, or same answer as dense without replay, against the KV budget; one line per policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshare.bench.config import BenchConfig
from memshare.bench.engines import Engines
from memshare.results import Events, pyplot, save_figure, write_json

COLORS = {"dense": "black", "vanilla": "grey", "vanilla-sync": "silver", "memshare": "tab:blue", "random": "tab:red"}


def run_sweep(cfg: BenchConfig, budgets: tuple[int | None, ...], on_event: Events | None = None,
              engines: Engines | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every policy of ``cfg`` at every budget; returns the runs (tagged ``kv_budget``) and the PNG."""
    from memshare.bench.run import run_budgets

    runs = [r for per_budget in run_budgets(cfg, budgets, on_event, engines=engines) for r in per_budget]
    stem = Path(cfg.out) / f"sweep__{cfg.dataset_name}__{cfg.model.replace('/', '_')}"
    write_json(stem.with_suffix(".json"), {"budgets": list(budgets), "runs": runs,
                                           **({"engines": engines.summary()} if engines else {})})
    return runs, sweep_plot(runs, stem.with_suffix(".png"), title=f"{cfg.dataset_name} / {cfg.model}")


def sweep_plot(runs: list[dict[str, Any]], path: Path, title: str = "") -> str:
    plt = pyplot()
    replay = any(r.get("top1_agreement") is not None for r in runs)
    quality, label = (("top1_agreement", "teacher-forced top-1 agreement with dense") if replay else
                      ("same_answer_as_dense", "same answer as dense"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for policy in dict.fromkeys(r["policy"] for r in runs):
        mine = sorted((r for r in runs if r["policy"] == policy), key=lambda r: r["kv_budget"] or 0)
        xs = [r["kv_budget"] for r in mine]
        for ax, key in ((axes[0], "steps_speedup_vs_vanilla"), (axes[1], quality)):
            ax.plot(xs, [r.get(key) for r in mine], marker="o", color=COLORS.get(policy), label=policy)
    axes[0].set_ylabel("engine steps: vanilla / policy")
    axes[1].set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("KV budget (blocks)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    return str(save_figure(fig, path))
