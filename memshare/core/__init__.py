"""Engine-independent MemShare algorithm: steps, Stage 1, Stage 2, RoPE undo and policies.

Imports neither vLLM nor a GPU. The engine drives a ``SharingPolicy`` (``memshare.core.policy``)
built by ``make_policy`` and measures Stage 2 with ``stage2_partials`` / ``finish``.
"""

from memshare.core.config import MemShareConfig
from memshare.core.encoders import DenseStepIndex, SparseStepIndex, StepIndex, make_step_index
from memshare.core.policies import POLICY_REGISTRY, DensePolicy, MemSharePolicy, RandomPolicy, make_policy
from memshare.core.policy import BlockRef, Proposal, SharingPolicy
from memshare.core.rope import RopeSpec, inv_freq_from_hf_config, rope_spec_from_hf_config, rotate, unrotate
from memshare.core.stage1 import Stage1
from memshare.core.stage2 import (
    Stage2Partials,
    block_distances,
    block_positions,
    finish,
    record_stage2,
    stage2_partials,
)
from memshare.core.stats import SharingStats
from memshare.core.steps import BlockDone, StepEnd, StepTracker, StepVocab

__all__ = [
    "POLICY_REGISTRY",
    "BlockDone",
    "BlockRef",
    "DensePolicy",
    "DenseStepIndex",
    "MemShareConfig",
    "MemSharePolicy",
    "Proposal",
    "RandomPolicy",
    "RopeSpec",
    "SharingPolicy",
    "SharingStats",
    "SparseStepIndex",
    "Stage1",
    "Stage2Partials",
    "StepEnd",
    "StepIndex",
    "StepTracker",
    "StepVocab",
    "block_distances",
    "block_positions",
    "finish",
    "inv_freq_from_hf_config",
    "make_policy",
    "make_step_index",
    "record_stage2",
    "rope_spec_from_hf_config",
    "rotate",
    "stage2_partials",
    "unrotate",
]
