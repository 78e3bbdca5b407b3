"""The comparison's metrics: each name and formula written once; the table, JSON and plot read them.

A method's row at a budget summarizes its sample rows (one per prompt, ``measure_prompt``):

* ``kv_fraction``: mean over prompts of the most KV held during the teacher-forced replay /
  the dense trace's KV (prompt + output); ``kv_fraction_mean`` averages held / dense over the
  replay's forward passes instead; ``kv_fraction_free``: the peak while running free;
* ``budget_met``: prompts whose peak stayed within the budget;
* ``top1_agreement`` / ``kl``: teacher forcing, over every output position (``*_after``: the
  positions after the method first acted);
* free running against the dense trace (``memshare.analysis.quality.quality_vs``): ``same_answer_as_dense``,
  ``mean_common_prefix``, ``identical_to_dense``, ``loop_or_cap``;
* ``mean_output_tokens`` and ``output_growth`` (/ dense); ``accuracy`` (graded);
* ``overhead_ms_per_token``: time spent choosing what to evict or share, per decoded token
  (free running).
"""

from __future__ import annotations

from typing import Any

# (header, key, format) of the printed table, in order.
COLUMNS = [
    ("method", "method", "{}"), ("budget", "kv_budget", "{:.2f}"), ("KV peak", "kv_fraction", "{:.3f}"),
    ("KV mean", "kv_fraction_mean", "{:.3f}"), ("in budget", "budget_met", "{}"),
    ("top-1", "top1_agreement", "{:.3f}"), ("KL", "kl", "{:.3f}"), ("=dense ans", "same_answer_as_dense", "{:.0%}"),
    ("prefix", "mean_common_prefix", "{:.0f}"), ("loop/cap", "loop_or_cap", "{:.0%}"),
    ("mean len", "mean_output_tokens", "{:.0f}"), ("len x dense", "output_growth", "{:.2f}"),
    ("acc", "accuracy", "{:.0%}"), ("ms/token", "overhead_ms_per_token", "{:.2f}"),
]
# Quality against KV in the plot: (key, axis label).
PLOTTED = [("top1_agreement", "teacher-forced top-1 agreement with dense"),
           ("same_answer_as_dense", "free running: same final answer as dense")]


def method_row(method: str, budget: float | None, rows: list[dict[str, Any]], dense: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of the comparison from a method's sample rows and the dense rows."""
    from memshare.analysis.quality import quality_vs

    n = len(rows)
    tokens = sum(r["tf_tokens"] for r in rows)
    after = sum(r["tf_tokens_after"] for r in rows)
    decoded = sum(r["decoded_tokens"] for r in rows)
    dense_len = _mean([r["output_tokens"] for r in dense])
    mean_len = _mean([r["output_tokens"] for r in rows])
    q = quality_vs(rows, dense)
    out = {
        "method": method, "kv_budget": budget, "prompts": n,
        "kv_fraction": _mean([r["peak_kept"] / r["dense_kv"] for r in rows]),
        "kv_fraction_mean": _mean([r["mean_fraction"] for r in rows]),
        "kv_fraction_free": _mean([r["peak_kept_free"] / r["dense_kv"] for r in rows]),
        "budget_met": f"{sum(r['peak_kept'] <= r['budget_tokens'] for r in rows)}/{n}",
        "top1_agreement": sum(r["tf_agree"] for r in rows) / tokens if tokens else None,
        "kl": sum(r["tf_kl_sum"] for r in rows) / tokens if tokens else None,
        "top1_agreement_after": sum(r["tf_agree_after"] for r in rows) / after if after else None,
        "kl_after": sum(r["tf_kl_sum_after"] for r in rows) / after if after else None,
        "same_answer_as_dense": q.get("same_answer_as_dense"), "mean_common_prefix": q.get("mean_common_prefix"),
        "identical_to_dense": q.get("identical_to_dense"), "loop_or_cap": q.get("loop_or_cap_share"),
        "mean_output_tokens": mean_len,
        "output_growth": mean_len / dense_len if mean_len is not None and dense_len else None,
        "accuracy": _mean([float(bool(r.get("correct"))) for r in rows]),
        "overhead_ms_per_token": 1e3 * sum(r["overhead_s"] for r in rows) / decoded if decoded else None,
    }
    if method in ("memshare", "random-share"):
        out["shared_blocks"] = sum(r["shared_blocks"] for r in rows)
        out["full_blocks"] = sum(r["full_blocks"] for r in rows)
    if method == "memshare":
        out["matched"] = f"{sum(bool(r['matched']) for r in rows)}/{n}"
    return out


def dense_row(dense: list[dict[str, Any]]) -> dict[str, Any]:
    """The reference line: dense keeps everything and agrees with itself."""
    from memshare.analysis.quality import quality_vs

    q = quality_vs(dense, dense)
    n = len(dense)
    return {"method": "dense", "kv_budget": 1.0, "prompts": n, "kv_fraction": 1.0, "kv_fraction_mean": 1.0,
            "kv_fraction_free": _mean([(r["prompt_tokens"] + len(r["output_token_ids"])) / r["dense_kv"] for r in dense]),
            "budget_met": f"{n}/{n}", "top1_agreement": 1.0, "kl": 0.0, "top1_agreement_after": None, "kl_after": None,
            "same_answer_as_dense": q.get("same_answer_as_dense"), "mean_common_prefix": q.get("mean_common_prefix"),
            "identical_to_dense": q.get("identical_to_dense"), "loop_or_cap": q.get("loop_or_cap_share"),
            "mean_output_tokens": _mean([r["output_tokens"] for r in dense]), "output_growth": 1.0,
            "accuracy": _mean([float(bool(r.get("correct"))) for r in dense]), "overhead_ms_per_token": 0.0}


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
