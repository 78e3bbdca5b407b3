"""``memshare``: Stage 1 (similar reasoning steps) then Stage 2 (KV distance), arXiv 2507.21433.

Per request, a ``StepTracker`` cuts the output into steps; finished steps go into the Stage-1
index and finished output blocks into its block store. Each eligible block is queried once:
its Stage-1 candidates (led by the same-position blocks of earlier requests with the same
prompt, with ``share_siblings``) become a ``Proposal`` with ``needs_distance=True``; the engine measures
Stage 2 (``memshare.core.stage2``) and ``decide`` accepts the closest candidate at or below
``block_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from memshare.core.config import MemShareConfig
from memshare.core.encoders import as_embedding_matrix, make_step_index
from memshare.core.policies.common import BlockPolicy, RequestState
from memshare.core.policy import BlockRef, Proposal
from memshare.core.stage1 import Stage1
from memshare.core.steps import BlockDone, StepTracker, StepVocab


class MemSharePolicy(BlockPolicy):
    """Args: vocab: token texts for the step splitter (``StepVocab.from_tokenizer``);
    embedding: (vocab, dim) input embeddings, needed when ``config.encoder == "embedding"``."""

    name = "memshare"

    def __init__(self, config: MemShareConfig, *, vocab: StepVocab | None = None, embedding=None) -> None:
        super().__init__(config)
        if not isinstance(vocab, StepVocab):
            raise ValueError("the memshare policy needs vocab=StepVocab.from_tokenizer(tokenizer)")
        self.vocab = vocab
        if config.encoder == "embedding":
            if embedding is None:
                raise ValueError("encoder='embedding' needs the model's input embedding matrix (embedding=...)")
            embedding = as_embedding_matrix(embedding)
        self.stage1 = Stage1(config, partial(make_step_index, config.encoder, embedding))
        self._trackers: dict[str, StepTracker] = {}

    def _on_add(self, req_id: str, prompt_len: int, first_block: int) -> None:
        cfg = self.config
        self._trackers[req_id] = StepTracker(self.vocab, prompt_len, cfg.block_size, cue_words=cfg.cue_words,
                                             split_on_blank_lines=cfg.split_on_blank_lines)
        self.stage1.add_request(req_id, first_block)

    def _observe(self, req_id: str, req: RequestState, token_ids: Sequence[int]) -> int:
        tracker = self._trackers[req_id]
        for event in tracker.feed(token_ids):
            if isinstance(event, BlockDone):
                self.stage1.add_block(req_id, event)
            else:
                self.stage1.add_step(req_id, event.step, event.counts)
        self.stage1.set_full_blocks(req_id, req.num_full_blocks)
        return (tracker.prompt_len + tracker.num_committed) // self.config.block_size

    def propose(self, req_id: str, req: RequestState, block: int) -> Proposal | None:
        # NOTE: only the query's own in-flight blocks are excluded. Another request's block
        # that is itself a query this step may still be a candidate: the engine pins it, so
        # its own share is dropped (ref check) and this one reads valid KV. Requests are
        # visited in order and a block only becomes a candidate once committed, so two
        # queries never point at each other.
        candidates = self.stage1.candidates(req_id, block, {req_id: self._in_flight.get(req_id, set())})
        if self.config.share_siblings:
            siblings = self.sibling_blocks(req_id, block)
            if siblings:
                candidates = (siblings + [c for c in candidates if c not in siblings])[: self.config.max_candidates]
        self.stats.stage1_queries += 1
        self.stats.stage1_candidates += len(candidates)
        if not candidates:
            return None
        return Proposal(BlockRef(req_id, block), tuple(candidates), needs_distance=True)

    def _on_remove(self, req_id: str) -> None:
        del self._trackers[req_id]
        self.stage1.remove_request(req_id)
