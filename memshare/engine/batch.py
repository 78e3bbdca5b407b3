"""Run one policy over a batch of prompts in a fresh process: ``python -m memshare.engine.batch SPEC``.

Each policy runs in its own process so that every engine starts clean (vLLM keeps
process-wide state such as the KV connector agent). The parent reads JSON events from
stdout: ``progress``, ``sample`` (written to the samples file first), ``done``, ``error``.
Samples are appended and flushed as each request finishes, so a killed run loses at
most the requests in flight.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.errors import UserError


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from vllm import SamplingParams

    from memshare.engine.llm import EngineSettings, make_llm, run_report

    settings = EngineSettings(**spec["engine"])
    policy = None if spec["policy"] is None else MemShareConfig.from_dict(spec["policy"])
    llm = make_llm(settings, policy, debug=spec.get("debug"))
    engine = llm.llm_engine
    sampling = spec["sampling"]
    jobs = spec["jobs"]  # [{"key", "problem_id", "sample_index", "prompt_token_ids"}]
    arrival: dict[str, float] = {}
    first_token: dict[str, float] = {}
    prompt_len: dict[str, int] = {}
    t_start = time.perf_counter()
    for job in jobs:
        ids = job["prompt_token_ids"]
        prompt_len[job["key"]] = len(ids)
        params = SamplingParams(max_tokens=sampling["max_tokens"], temperature=sampling["temperature"],
                                top_p=sampling["top_p"], seed=sampling["seed"] + job["sample_index"])
        engine.add_request(job["key"], {"prompt_token_ids": list(ids)}, params)
        arrival[job["key"]] = time.perf_counter()
    by_key = {j["key"]: j for j in jobs}
    done = 0
    out_tokens = 0
    with open(spec["samples_path"], "a", encoding="utf-8") as fh:
        while engine.has_unfinished_requests():
            for out in engine.step():
                now = time.perf_counter()
                key = out.request_id
                if key not in first_token and out.outputs and out.outputs[0].token_ids:
                    first_token[key] = now
                if not out.finished:
                    continue
                job = by_key[key]
                comp = out.outputs[0]
                n_out = len(comp.token_ids)
                out_tokens += n_out
                row = {
                    "problem_id": job["problem_id"], "sample_index": job["sample_index"],
                    "response": comp.text, "output_token_ids": list(comp.token_ids),
                    "prompt_tokens": prompt_len[key], "output_tokens": n_out,
                    "finish_reason": comp.finish_reason,
                    "ttft_s": first_token.get(key, now) - arrival[key], "latency_s": now - arrival[key],
                }
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                done += 1
                _emit({"event": "progress", "done": done, "total": len(jobs), "output_tokens": out_tokens})
    wall = time.perf_counter() - t_start
    report = run_report(llm)
    report.update(wall_s=wall, output_tokens=out_tokens, num_requests=len(jobs))
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m memshare.engine.batch SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    try:
        report = run(spec)
    except (UserError, ValueError) as exc:
        _emit({"event": "error", "message": str(exc)})
        return 2
    _emit({"event": "done", "report": report})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
