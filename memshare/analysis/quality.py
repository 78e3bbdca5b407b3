"""Free-running quality of generated samples against a reference run of the same prompts.

Shared by ``memshare bench`` (policies against dense) and ``memshare compare`` (methods against
dense in the Hugging Face replay): one formula for loops, same answer and common prefix.
"""

from __future__ import annotations

from typing import Any

from memshare.analysis.loops import first_divergence, loop_period


def quality_vs(rows: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """Loop/cap share of ``rows``; same answer, mean common prefix and identical outputs against
    ``reference`` (matched by problem and sample)."""
    rows = [r for r in rows if "output_token_ids" in r]  # rows from other tools may carry text only
    reference = [r for r in reference if "output_token_ids" in r]
    loops = sum(1 for r in rows if r.get("finish_reason") == "length" or loop_period(r["output_token_ids"]))
    out: dict[str, Any] = {"loop_or_cap_share": loops / len(rows) if rows else None}
    ref = {(str(r["problem_id"]), r.get("sample_index", 0)): r for r in reference}
    pairs = [(r, ref[k]) for r in rows if (k := (str(r["problem_id"]), r.get("sample_index", 0))) in ref]
    if not pairs:
        return out
    prefix = [first_divergence(a["output_token_ids"], b["output_token_ids"]) for a, b in pairs]
    out["same_answer_as_dense"] = sum(1 for a, b in pairs if a.get("extracted") == b.get("extracted")) / len(pairs)
    out["mean_common_prefix"] = sum(len(a["output_token_ids"]) if p is None else p
                                    for p, (a, _) in zip(prefix, pairs)) / len(pairs)
    out["identical_to_dense"] = sum(1 for p in prefix if p is None) / len(pairs)
    return out
