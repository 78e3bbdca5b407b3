"""Experiments over saved runs: ``report`` (tables and plots from run folders), ``regress``
(compare runs with reference figures) and ``ablate`` (sweep the paper's settings, arXiv 2507.21433).

``report`` and ``regress`` read run folders only and never import vLLM or torch.
"""
