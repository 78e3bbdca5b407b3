"""Figure-3-style heatmaps (arXiv 2507.21433): step-vs-step similarity beside block-vs-block
KV distance, one PNG per trace. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

from memshare.analysis.premise import TraceAnalysis
from memshare.results import pyplot, save_figure


def trace_heatmaps(a: TraceAnalysis, path: Path, title: str = "") -> Path:
    """Write ``path``: step similarity, then one panel per distance; returns ``path``."""
    plt = pyplot()
    panels = [("step vs step: bag-of-words cosine", a.step_sim, "viridis", 0.0, 1.0, "step")]
    # One colour scale for every distance panel, so that they compare at a glance.
    vmax = max([1.0] + [float(m.max()) for m in a.dist.values() if m.size])
    for name, m in a.dist.items():
        panels.append((f"block vs block: {name} distance", m, "magma_r", 0.0, vmax, "block"))
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.6 * rows), squeeze=False)
    for ax, (label, m, cmap, vmin, vmax, unit) in zip(axes.flat, panels):
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("output block (candidate)" if unit == "block" else unit, fontsize=9)
        ax.set_ylabel("output block (query)" if unit == "block" else unit, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    n, any_offset, aligned = a.repetition
    fig.suptitle(f"{title}  {a.problem_id}: {a.output_tokens} output tokens, {len(a.step_sim)} steps, "
                 f"{len(a.blocks)} blocks; verbatim repeats {any_offset}/{n} at any offset, "
                 f"{aligned}/{n} block-aligned", fontsize=11)
    return save_figure(fig, path)
