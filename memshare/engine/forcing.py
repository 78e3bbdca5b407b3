"""Forced decoding for trace replay: a vLLM v1 custom logits processor (public interface).

A request whose ``SamplingParams.extra_args`` holds ``FORCED_KEY: [token ids]`` emits exactly
those tokens: before sampling, every logit of its row but the next trace token's is set to
-inf. Nothing else of the sampler changes, and with vLLM's default ``logprobs_mode``
(``raw_logprobs``, computed before logits processors) the logprobs a request returns are still
the model's own prediction at each position, which is what engine-side fidelity reads.

Loaded in the engine process by its qualified name (``PROCESSOR``), so it must stay importable
there; requests without the key are left alone.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

FORCED_KEY = "memshare_forced_token_ids"
PROCESSOR = "memshare.engine.forcing:ForcedTokens"


class ForcedTokens(LogitsProcessor):
    """Forces the rows of requests that carry a trace; see the module docstring."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        # batch row -> (trace, the request's live output-token list; vLLM appends to it)
        self._rows: dict[int, tuple[list[int], list[int]]] = {}
        self._device = device

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        trace = (sampling_params.extra_args or {}).get(FORCED_KEY)
        if trace is not None and (not isinstance(trace, list) or not all(isinstance(t, int) and t >= 0 for t in trace)):
            raise ValueError(f"extra_args[{FORCED_KEY!r}] must be a list of token ids")

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        rows = self._rows
        # NOTE: vLLM's order: removed, then added, then moved.
        for index in batch_update.removed:
            rows.pop(index, None)
        for index, params, _prompt, output_ids in batch_update.added:
            trace = (params.extra_args or {}).get(FORCED_KEY) if params is not None else None
            if trace:
                rows[index] = (trace, output_ids)
            else:
                rows.pop(index, None)
        for a, b, direction in batch_update.moved:
            ra, rb = rows.pop(a, None), rows.pop(b, None)
            if ra is not None:
                rows[b] = ra
            if direction == MoveDirectionality.SWAP and rb is not None:
                rows[a] = rb

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._rows:
            return logits
        index, token = [], []
        for row, (trace, output_ids) in self._rows.items():
            n = len(output_ids)  # the position about to be sampled
            if n < len(trace):
                index.append(row)
                token.append(trace[n])
        if index:
            rows = torch.tensor(index, dtype=torch.long, device=logits.device)
            cols = torch.tensor(token, dtype=torch.long, device=logits.device)
            logits[rows] = float("-inf")
            logits[rows, cols] = 0.0
        return logits
