"""Small run folders written by the tests (no engine): config.json, samples.jsonl, metrics.json
as ``memshare bench`` writes them, with plausible numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memshare.results import SCHEMA_VERSION, run_name

ENGINE = {"model": "smollm2-135m", "block_size": 32, "kv_blocks": 64, "max_num_seqs": 256, "max_model_len": 640,
          "seed": 0, "dtype": "auto"}
SAMPLING = {"max_tokens": 512, "temperature": 0.0, "top_p": 1.0, "seed": 0}
BASE_METRICS = {"dense": dict(output_tokens_per_s=100.0, requests_per_s=0.5, affected_ratio=0.0, shared_blocks=0,
                              freed_blocks=0, peak_kv_blocks=64, num_preemptions=12, leaked_blocks=0),
                "memshare": dict(output_tokens_per_s=120.0, requests_per_s=0.6, affected_ratio=0.12,
                                 shared_blocks=40, freed_blocks=38, peak_kv_blocks=60, num_preemptions=5,
                                 leaked_blocks=0),
                "random": dict(output_tokens_per_s=118.0, requests_per_s=0.59, affected_ratio=0.11, shared_blocks=37,
                               freed_blocks=35, peak_kv_blocks=61, num_preemptions=6, leaked_blocks=0)}


def write_run(root: Path, policy: str, correct: int = 5, n: int = 10, metrics: dict[str, Any] | None = None,
              model: str = "smollm2-135m", dataset: str = "math500", limit: int = 10,
              stored_accuracy: float | None = None) -> Path:
    """A finished run: ``correct`` of ``n`` samples right; metrics.json may claim another accuracy."""
    params = {"engine": ENGINE, "sampling": SAMPLING, "samples": 1, "limit": limit, "data_file": None,
              "sharing": None if policy == "dense" else {"policy": policy, "step_threshold": 0.8}}
    path = root / run_name(dataset, model, policy, params)
    path.mkdir(parents=True)
    config = {"schema_version": SCHEMA_VERSION, "policy": policy, "dataset": dataset, "model": model, **params,
              "environment": {"python": "3.11"}}
    (path / "config.json").write_text(json.dumps(config))
    with (path / "samples.jsonl").open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"problem_id": str(i), "sample_index": 0, "response": "...", "output_tokens": 300,
                                 "correct": i < correct, "extracted": str(i), "gold": str(i)}) + "\n")
    m = {"policy": policy, "model": model, "dataset": dataset, "num_prompts": n, "samples": 1,
         "run_dir": str(path), "num_graded": n, "num_correct": correct,
         "accuracy": correct / n if stored_accuracy is None else stored_accuracy, "output_tokens": 3000,
         "wall_s": 20.0, "mean_output_tokens": 300.0, "hit_token_cap": 1, "mean_running_requests": 4.0,
         "stage1_ms_per_step": 0.1, "stage2_ms_per_step": 0.2, **BASE_METRICS.get(policy, {}), **(metrics or {}),
         "engine": {"num_requests": n}}
    (path / "metrics.json").write_text(json.dumps(m))
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: to show that a command modified nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
