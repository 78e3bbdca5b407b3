"""Raw per-position logprobs of a request, saved for engine-side fidelity (no vLLM import).

With ``SamplingParams(logprobs=k, flat_logprobs=True)`` vLLM returns, per generated position,
the sampled token with its rank, then the top-k tokens in rank order. Under vLLM's default
``logprobs_mode`` (``raw_logprobs``) they are taken before logits processors, so in a forced
replay they are the model's own prediction. One ``.npz`` per request:

* ``token_logprob`` (T,) float32: logprob of the token that was emitted (the trace's, forced);
* ``token_rank`` (T,) int32: its rank in the model's distribution (1 = the model's top-1);
* ``top_ids`` (T, k) int32 and ``top_logprobs`` (T, k) float32: the model's top-k.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def logprobs_file(folder: str | Path, key: str) -> Path:
    return Path(folder) / (key.replace("/", "_") + ".npz")


def save_logprobs(folder: str | Path, key: str, flat: Any, k: int) -> Path:
    """Write request ``key``'s logprobs (a vLLM ``FlatLogprobs``) atomically."""
    starts, ends = list(flat.start_indices), list(flat.end_indices)
    ids, lps, ranks = flat.token_ids, flat.logprobs, flat.ranks
    n = len(starts)
    token_logprob = np.empty(n, np.float32)
    token_rank = np.empty(n, np.int32)
    top_ids = np.full((n, k), -1, np.int32)
    top_logprobs = np.full((n, k), -np.inf, np.float32)
    for i, (a, b) in enumerate(zip(starts, ends)):
        token_logprob[i], token_rank[i] = lps[a], ranks[a]
        width = min(k, b - a - 1)
        top_ids[i, :width] = ids[a + 1:a + 1 + width]
        top_logprobs[i, :width] = lps[a + 1:a + 1 + width]
    path = logprobs_file(folder, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, token_logprob=token_logprob, token_rank=token_rank, top_ids=top_ids, top_logprobs=top_logprobs)
    os.replace(tmp, path)
    return path


def load_logprobs(folder: str | Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays ``save_logprobs`` wrote for ``key``; None when there is no file."""
    path = logprobs_file(folder, key)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
