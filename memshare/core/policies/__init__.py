"""The sharing policies and their registry: ``make_policy(config, vocab=..., embedding=...)``."""

from __future__ import annotations

from memshare.core.config import MemShareConfig
from memshare.core.policies.common import BlockPolicy
from memshare.core.policies.dense import DensePolicy
from memshare.core.policies.memshare import MemSharePolicy
from memshare.core.policies.random import RandomPolicy
from memshare.core.steps import StepVocab

POLICY_REGISTRY: dict[str, type[BlockPolicy]] = {
    DensePolicy.name: DensePolicy,
    RandomPolicy.name: RandomPolicy,
    MemSharePolicy.name: MemSharePolicy,
}


def make_policy(config: MemShareConfig, *, vocab: StepVocab | None = None, embedding=None) -> BlockPolicy:
    """The policy ``config.policy`` names.

    Args:
        config: resolved settings.
        vocab: ``StepVocab.from_tokenizer(tokenizer)``; required by ``memshare``.
        embedding: (vocab, dim) input-embedding matrix; required by ``memshare`` with
            ``encoder="embedding"``.
    """
    try:
        cls = POLICY_REGISTRY[config.policy]
    except KeyError:
        raise ValueError(f"unknown policy {config.policy!r}; known: {', '.join(POLICY_REGISTRY)}") from None
    return cls(config, vocab=vocab, embedding=embedding)


__all__ = ["POLICY_REGISTRY", "BlockPolicy", "DensePolicy", "MemSharePolicy", "RandomPolicy", "make_policy"]
