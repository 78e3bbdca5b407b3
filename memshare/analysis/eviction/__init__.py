"""KV-cache eviction baselines, replayed in the Hugging Face path by masking attention.

An evicted token is masked out of every later query's attention in its layer and KV head:
exactly what removing it from the cache would compute, in fewer lines. The physical KV a
method needs is the tokens it keeps visible. ``Evictor`` installs a method on a model;
``make_method(name, budget, prompt_len, settings)`` builds one from the registry.

Quest (arXiv 2406.10774) is left out on purpose: it keeps the whole cache and only reads
fewer pages per step, so it saves no KV memory.
"""

from __future__ import annotations

from memshare.analysis.eviction.base import EvictionMethod, EvictionSettings
from memshare.analysis.eviction.h2o import H2O
from memshare.analysis.eviction.random_evict import RandomEvict
from memshare.analysis.eviction.rkv import RKV
from memshare.analysis.eviction.snapkv import SnapKV
from memshare.analysis.eviction.streaming import StreamingLLM

EVICTION_METHODS: dict[str, type[EvictionMethod]] = {
    cls.name: cls for cls in (StreamingLLM, H2O, SnapKV, RKV, RandomEvict)
}


def make_method(name: str, budget: int, prompt_len: int, settings: EvictionSettings | None = None) -> EvictionMethod:
    """The eviction method ``name`` with a budget of ``budget`` tokens per KV head."""
    try:
        cls = EVICTION_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown eviction method {name!r}; known: {', '.join(EVICTION_METHODS)}") from None
    return cls(budget, prompt_len, settings or EvictionSettings())


__all__ = ["EVICTION_METHODS", "EvictionMethod", "EvictionSettings", "make_method"]
