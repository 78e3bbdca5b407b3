"""Quality against KV fraction, one line per method (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshare.analysis.compare.metrics import PLOTTED
from memshare.results import pyplot, save_figure


def quality_vs_kv(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Write ``path``: one panel per ``PLOTTED`` metric, x = peak KV fraction; returns ``path``."""
    plt = pyplot()
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"))
    dense = next((r for r in rows if r["method"] == "dense"), None)
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(6.2 * len(PLOTTED), 4.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], PLOTTED):
        for m in methods:
            pts = sorted((r["kv_fraction"], r[key]) for r in rows if r["method"] == m and r.get(key) is not None)
            if dense is not None and dense.get(key) is not None:
                pts.append((1.0, dense[key]))
            if pts:
                ax.plot(*zip(*pts), marker="o", label=m)
        ax.set_xlabel("peak KV held / dense KV")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title or "quality against KV memory (each line ends at dense, 1.0)")
    return save_figure(fig, path)
