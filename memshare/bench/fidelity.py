"""Teacher-forced fidelity measured in the engine, for trace replay runs.

Every policy emits the same forced tokens, so position ``t`` of a request means the same prefix
in every run, and the model's raw logprobs there (``memshare.engine.logprobs``) can be compared
with dense's directly:

* ``top1_agreement``: the share of positions where the run's top-1 token is dense's;
* ``topk_kl``: mean KL(dense || run) over the tokens in both top-k lists, each on its own,
  plus one bucket holding all other tokens' mass on each side (vLLM returns no logprob for a
  token outside a run's top-k). Merging tokens into a bucket can only lower a KL, so this is a
  lower bound on the full KL;
* ``*_after``: the same over the positions after the request's first share (only those can
  differ), and ``positions_after_share``: their share of all positions;
* ``trace_nll``: mean negative log-likelihood of the forced trace tokens under the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memshare.engine.logprobs import load_logprobs


def fidelity_vs(run: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Fidelity of ``run`` against ``reference`` (dense), from their run folders' logprobs."""
    from memshare.results import RunDir

    ours, theirs = RunDir(Path(run["run_dir"])), RunDir(Path(reference["run_dir"]))
    ref_rows = {_key(r): r for r in theirs.load_samples()}
    totals = np.zeros(6)  # positions, agree, kl, after, agree after, kl after
    nll, nll_n = 0.0, 0
    for row in ours.load_samples():
        key = _key(row)
        a = load_logprobs(ours.path / "logprobs", key)
        b = load_logprobs(theirs.path / "logprobs", key) if key in ref_rows else None
        if a is None:
            continue
        nll -= float(a["token_logprob"].sum())
        nll_n += len(a["token_logprob"])
        if b is None:
            continue
        start = row.get("first_shared_position")
        totals += compare_positions(b, a, start if start is not None else len(a["token_logprob"]))
    if not nll_n:
        return {}
    out: dict[str, Any] = {"trace_nll": nll / nll_n}
    n, agree, kl, after, agree_after, kl_after = totals
    if n:
        out.update(top1_agreement=agree / n, topk_kl=kl / n, positions_after_share=after / n,
                   top1_agreement_after=agree_after / after if after else None,
                   topk_kl_after=kl_after / after if after else None)
    return out


def compare_positions(ref: dict[str, np.ndarray], run: dict[str, np.ndarray], start: int) -> np.ndarray:
    """(positions, top-1 agreements, KL sum, positions >= start, agreements there, KL sum there)."""
    n = min(len(ref["token_logprob"]), len(run["token_logprob"]))
    agree = ref["top_ids"][:n, 0] == run["top_ids"][:n, 0]
    kl = topk_kl(ref["top_ids"][:n], ref["top_logprobs"][:n], run["top_ids"][:n], run["top_logprobs"][:n])
    tail = slice(min(start, n), n)
    return np.array([n, agree.sum(), kl.sum(), n - tail.start, agree[tail].sum(), kl[tail].sum()], dtype=np.float64)


def topk_kl(p_ids: np.ndarray, p_lp: np.ndarray, q_ids: np.ndarray, q_lp: np.ndarray) -> np.ndarray:
    """Per-position KL(p || q) over the tokens in both top-k lists plus an "all other tokens" bucket.

    Args:
        p_ids, p_lp: (T, k) the reference's top-k token ids and logprobs.
        q_ids, q_lp: (T, k) the run's.
    Returns:
        (T,) float64; >= 0 and 0 where the two top-k lists and logprobs are equal.
    """
    p = np.exp(p_lp.astype(np.float64))
    q_all = np.exp(q_lp.astype(np.float64))
    # q's probability of each of p's top-k tokens; 0 (-> the bucket) when not in q's top-k.
    match = p_ids[:, :, None] == q_ids[:, None, :]  # (T, k, k)
    q = (match * q_all[:, None, :]).sum(-1)
    known = match.any(-1)
    p_known = np.where(known, p, 0.0)
    q_known = np.where(known, q, 0.0)
    p_rest = np.clip(1.0 - p_known.sum(-1), 0.0, 1.0)
    q_rest = np.clip(1.0 - q_known.sum(-1), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p_known > 0, p_known * (np.log(p_known) - np.log(np.maximum(q_known, 1e-300))), 0.0).sum(-1)
        rest = np.where(p_rest > 1e-12, p_rest * (np.log(p_rest) - np.log(np.maximum(q_rest, 1e-12))), 0.0)
    return np.maximum(terms + rest, 0.0)


def _key(row: dict[str, Any]) -> str:
    return f"{row['problem_id']}#{int(row.get('sample_index', 0))}"
