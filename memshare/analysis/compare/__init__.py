"""MemShare against KV-cache eviction baselines at matched KV memory (``memshare compare``).

* ``config``: ``CompareConfig``, the methods and the MemShare threshold ladder;
* ``matching``: budgets in tokens, MemShare's per-prompt setting, random sharing's seed;
* ``replay``: one decoding loop (teacher forcing or free running) for every method;
* ``measure``: one method, one budget, one prompt -> one sample row;
* ``metrics``: rows -> the table's metrics; ``plot``: quality against KV;
* ``run.run_compare``: run folders, resume, the summary.

Eviction happens only in this Hugging Face replay: evicting inside vLLM needs changes a plugin
cannot make, so the in-engine comparison (``memshare bench``) stays sharing-only.
"""

from memshare.analysis.compare.config import METHODS, CompareConfig
from memshare.analysis.compare.run import run_compare

__all__ = ["METHODS", "CompareConfig", "run_compare"]
