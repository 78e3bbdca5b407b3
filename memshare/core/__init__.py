"""Engine-independent MemShare algorithm: steps, Stage 1, Stage 2, RoPE undo and policies.

Imports neither vLLM nor a GPU. The engine drives a ``SharingPolicy`` (``memshare.core.policy``)
built by ``make_policy`` and measures Stage 2 with ``stage2_partials`` / ``finish``.
"""

import importlib
from typing import Any

# Public names -> the module that defines them. Imported on first use (PEP 562), so
# ``memshare.core.config`` (settings only) imports without torch.
_HOME = {
    "MemShareConfig": "config",
    "DenseStepIndex": "encoders", "SparseStepIndex": "encoders", "StepIndex": "encoders", "make_step_index": "encoders",
    "POLICY_REGISTRY": "policies", "DensePolicy": "policies", "MemSharePolicy": "policies",
    "RandomPolicy": "policies", "make_policy": "policies",
    "BlockRef": "policy", "Proposal": "policy", "SharingPolicy": "policy",
    "RopeSpec": "rope", "inv_freq_from_hf_config": "rope", "rope_spec_from_hf_config": "rope", "rotate": "rope",
    "unrotate": "rope",
    "Stage1": "stage1",
    "Stage2Partials": "stage2", "block_distances": "stage2", "block_positions": "stage2", "finish": "stage2",
    "stage2_partials": "stage2",
    "SharingStats": "stats",
    "BlockDone": "steps", "StepEnd": "steps", "StepTracker": "steps", "StepVocab": "steps",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'memshare.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"memshare.core.{_HOME[name]}"), name)


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
    "rope_spec_from_hf_config",
    "rotate",
    "stage2_partials",
    "unrotate",
]
