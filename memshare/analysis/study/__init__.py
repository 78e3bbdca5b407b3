"""Where does block sharing keep quality? The study of issue 29 (HF transformers on CPU, no vLLM).

Each trace is replayed teacher-forced in block-sized chunks: ``dense`` (one pass: KV, attention
statistics, logits), ``schedule`` (selection rules as actions: share or drop which block, when),
``lines`` (the rules, baselines, bounds and eviction methods measured, with their points),
``probe`` (the measured-cost oracle), ``replay`` (every point of a trace in one batched replay
beside the dense row), ``control`` (the positive control), ``run`` (``memshare study``).
"""

from memshare.analysis.study.config import StudyConfig
from memshare.analysis.study.run import run_control, run_study

__all__ = ["StudyConfig", "run_control", "run_study"]
