"""Measuring MemShare's premise and its cost on a real model (HF transformers on CPU).

* ``premise``: step-vs-step text similarity against block-vs-block KV distance, share
  fractions at thresholds, verbatim repetition lost to block alignment;
* ``fidelity``: teacher-forced and free-running generation with a real policy's sharing
  applied to the cache (``sharer``, ``kvcache``);
* ``run.run_analyze``: the ``memshare analyze`` entry point;
* ``eviction``: KV-cache eviction baselines (StreamingLLM, H2O, SnapKV, R-KV, random) applied by
  masking attention; ``compare``: ``memshare compare``, every method at matched KV budgets.

Nothing here imports vLLM.
"""

from memshare.analysis.config import AnalyzeConfig
from memshare.analysis.run import run_analyze

__all__ = ["AnalyzeConfig", "run_analyze"]
