"""PNG figures for ``report`` and ``ablate``: accuracy against the affected KV ratio (the
paper's trade-off, arXiv 2507.21433) and throughput. matplotlib with the Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshare.results import pyplot, save_figure

COLORS = {"dense": "black", "vanilla": "grey", "vanilla-sync": "silver", "memshare": "tab:blue", "random": "tab:red"}
MARKERS = {"dense": "*", "vanilla": "P", "vanilla-sync": "p", "memshare": "o", "random": "x"}


def _run_label(i: int, run: dict[str, Any]) -> str:
    digest = Path(run["run_dir"]).name.split("__")[-1][:6]
    return f"#{i} {run.get('policy')}\n{digest}"


def report_plots(runs: list[dict[str, Any]], out: Path) -> list[str]:
    """Accuracy vs affected ratio, and throughput per run coloured by policy; returns the paths."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for i, r in enumerate(runs, 1):
        x, y = r.get("affected_ratio") or 0.0, r.get("accuracy")
        if y is None:
            continue
        policy = r.get("policy")
        ax.scatter([x], [y], color=COLORS.get(policy, "tab:green"), marker=MARKERS.get(policy, "s"), s=60)
        ax.annotate(f"#{i} {policy}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("affected KV ratio (shared blocks / eligible blocks)")
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy vs affected KV ratio")
    ax.grid(alpha=0.3)
    paths = [str(save_figure(fig, out / "accuracy_vs_affected.png"))]

    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.3 * len(runs) + 4), 4.6))
    labels = [_run_label(i, r) for i, r in enumerate(runs, 1)]
    colors = [COLORS.get(r.get("policy"), "tab:green") for r in runs]
    for ax, key, title in ((axes[0], "output_tokens_per_s", "output tokens/s"),
                           (axes[1], "requests_per_s", "requests/s")):
        ax.bar(range(len(runs)), [r.get(key) or 0.0 for r in runs], color=colors)
        ax.set_xticks(range(len(runs)), labels, fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    paths.append(str(save_figure(fig, out / "throughput.png")))
    return paths


QUALITY_LABELS = {"accuracy": "accuracy", "top1_agreement": "teacher-forced top-1 agreement with dense"}


def ablation_plots(points: list[dict[str, Any]], front: list[dict[str, Any]], out: Path, title: str,
                   quality: str = "accuracy") -> list[str]:
    """Quality (accuracy, or top-1 agreement on a replay) vs affected ratio with the Pareto front;
    speedup vs dense per threshold point."""
    plt = pyplot()
    name = QUALITY_LABELS[quality]
    fig, ax = plt.subplots(figsize=(7.2, 5.2))
    for policy in ("dense", "memshare", "random"):
        pts = [p for p in points if p["policy"] == policy and p.get(quality) is not None]
        if pts:
            ax.scatter([p.get("affected_ratio") or 0.0 for p in pts], [p[quality] for p in pts],
                       s=70 if policy == "dense" else 45, color=COLORS[policy], marker=MARKERS[policy], label=policy,
                       zorder=3)
        for p in pts:
            if policy == "memshare":
                ax.annotate(p["label"], (p.get("affected_ratio") or 0.0, p[quality]), textcoords="offset points",
                            xytext=(5, 4), fontsize=8)
    if front:
        xs = [p.get("affected_ratio") or 0.0 for p in front]
        ys = [p[quality] for p in front]
        ax.step(xs, ys, where="post", color="tab:green", alpha=0.6, zorder=2)
        ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="tab:green", linewidths=1.5, label="Pareto front",
                   zorder=4)
    ax.set_xlabel("affected KV ratio (shared blocks / eligible blocks)")
    ax.set_ylabel(name)
    ax.set_title(f"{title}: {name.split(' with ')[0]} vs affected KV ratio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths = [str(save_figure(fig, out / "accuracy_vs_affected.png"))]

    labels = list(dict.fromkeys(p["label"] for p in points if p["policy"] != "dense"))
    relative = any(p.get("requests_speedup_vs_dense") is not None for p in points)
    panels = ((("requests_speedup_vs_dense", "requests/s vs dense"), ("speedup_vs_dense", "output tokens/s vs dense"))
              if relative else (("requests_per_s", "requests/s (no dense run)"),
                                ("output_tokens_per_s", "output tokens/s (no dense run)")))
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.4 * len(labels) + 4), 4.6))
    width = 0.4
    for ax, (key, name) in zip(axes, panels):
        for k, policy in enumerate(("memshare", "random")):
            by_label = {p["label"]: p.get(key) for p in points if p["policy"] == policy}
            if by_label:
                ax.bar([i + (k - 0.5) * width for i in range(len(labels))],
                       [by_label.get(lab) or 0.0 for lab in labels], width, color=COLORS[policy], label=policy)
        if relative:
            ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=20)
        ax.set_xlabel("step / block threshold")
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}: throughput per threshold pair")
    paths.append(str(save_figure(fig, out / "throughput_vs_thresholds.png")))
    return paths


def budget_plot(points: list[dict[str, Any]], path: Path, title: str, quality: str = "accuracy") -> str:
    """The thresholds x budgets curve: engine steps (dense / policy) and quality against the KV
    budget, one line per memshare threshold point (random dashed, same colour)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    labels = list(dict.fromkeys(p["label"] for p in points if p["policy"] == "memshare"))
    cmap = plt.get_cmap("viridis", max(2, len(labels)))
    for i, label in enumerate(labels):
        for policy, style in (("memshare", "-"), ("random", "--")):
            mine = sorted((p for p in points if p["policy"] == policy and p["label"] == label),
                          key=lambda p: p.get("kv_budget") or 0)
            if not mine:
                continue
            xs = [p.get("kv_budget") for p in mine]
            for ax, key in ((axes[0], "steps_speedup_vs_dense"), (axes[1], quality)):
                ax.plot(xs, [p.get(key) for p in mine], style, marker="o" if policy == "memshare" else "x",
                        color=cmap(i), label=f"{policy} {label}")
    axes[0].axhline(1.0, color="black", linestyle=":", linewidth=1)
    axes[0].set_ylabel("engine steps: dense / policy")
    axes[1].set_ylabel(QUALITY_LABELS[quality])
    for ax in axes:
        ax.set_xlabel("KV budget (blocks)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: step / block thresholds x KV budgets")
    return str(save_figure(fig, path))
