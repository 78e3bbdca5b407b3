"""Run the real vLLM engine (CPU build) in a child process, as ``memshare bench`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.engine.adapter import engine_env


@lru_cache(maxsize=1)
def model_path() -> str:
    from memshare.models import resolve_model

    return resolve_model("smollm2-135m")


def chat_ids(texts: list[str]) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path())
    out = []
    for t in texts:
        ids = tok.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=True)
        out.append([int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)])
    return out


def run_engine(tmp: Path, prompts: list[list[int]], *, policy: MemShareConfig | None, max_tokens: int = 128,
               kv_blocks: int | None = None, max_model_len: int = 1024, debug: dict[str, Any] | None = None,
               temperature: float = 0.0, max_num_seqs: int = 256, prefix_caching: bool = True,
               samples: int = 1, engine_mode: str = "backend", forced: list[list[int]] | None = None,
               logprobs: int = 0, extra: dict[str, Any] | None = None, tensor_parallel_size: int = 1,
               record_decisions: bool = False, after_dense: bool = False) -> tuple[list[list[int]], dict[str, Any]]:
    """Generate ``samples`` seeded samples per prompt; return (output token ids in job order:
    prompt-major, then sample), engine report). ``forced``: one trace per prompt, replayed by every
    sample of it; ``logprobs``: raw top-k logprobs saved under ``tmp/logprobs``; ``record_decisions``:
    every Stage-2 decision with its distances in ``tmp/decisions.json`` (``distance_probe``; with
    ``after_dense`` the engine serves a dense run first and the returned run reuses it)
    The thread binding a tensor-parallel run needs is left to the child, as for ``memshare bench``."""
    tmp.mkdir(parents=True, exist_ok=True)
    samples_path = tmp / "samples.jsonl"
    samples_path.unlink(missing_ok=True)
    spec = {
        "engine": {"model": model_path(), "block_size": 32, "kv_blocks": kv_blocks, "max_num_seqs": max_num_seqs,
                   "max_model_len": max_model_len, "seed": 0, "prefix_caching": prefix_caching,
                   "engine_mode": engine_mode, "forced_decoding": forced is not None,
                   "tensor_parallel_size": tensor_parallel_size, "extra": extra or {}},
        "sharing": policy.to_dict() if policy else None,
        "sampling": {"max_tokens": max_tokens, "temperature": temperature, "top_p": 1.0, "seed": 0,
                     "logprobs": logprobs},
        "jobs": [{"key": f"p{i}#{k}", "problem_id": f"p{i}", "sample_index": k, "prompt_token_ids": ids,
                  "forced_token_ids": forced[i] if forced is not None else None}
                 for i, ids in enumerate(prompts) for k in range(samples)],
        "samples_path": str(samples_path),
        "debug": debug or {},
        "logprobs_dir": str(tmp / "logprobs") if logprobs else None,
    }
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = engine_env(os.environ, in_process=True, quiet=True, vllm_defaults=engine_mode == "defaults")
    child = (["tests.engine.distance_probe", str(spec_path), str(tmp / "decisions.json"),
              *(["--after-dense"] if after_dense else [])] if record_decisions
             else ["memshare.engine.batch", str(spec_path)])
    proc = subprocess.run([sys.executable, "-m", *child], capture_output=True, text=True, env=env, timeout=900)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = [e for e in events if e.get("event") == "done"]
    if proc.returncode != 0 or not done:
        raise AssertionError(f"engine run failed ({proc.returncode}): {events[-1:] or proc.stderr[-2000:]}")
    rows = {(r["problem_id"], r["sample_index"]): r for r in map(json.loads, samples_path.read_text().splitlines())}
    return ([rows[(f"p{i}", k)]["output_token_ids"] for i in range(len(prompts)) for k in range(samples)],
            done[-1]["report"])
