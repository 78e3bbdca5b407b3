"""``dense``: the baseline that never shares (it still counts eligible blocks)."""

from __future__ import annotations

from memshare.core.policies.common import BlockPolicy, RequestState
from memshare.core.policy import Proposal


class DensePolicy(BlockPolicy):
    name = "dense"

    def propose(self, req_id: str, req: RequestState, block: int) -> Proposal | None:
        return None
