"""Run policies over a batch of prompts in an engine process.

``python -m memshare.engine.batch SPEC`` runs one ``BatchSpec`` (JSON file) on a fresh engine;
``python -m memshare.engine.batch --session`` reads one ``{"spec": ..., "capacity": N}`` object a
line from stdin and serves every run on one engine (``memshare.engine.session``; the parent,
``memshare.bench.engines``, starts another process when the engine must change, never two at
once). The parent reads ``Progress`` / ``Done`` / ``Failed`` events from stdout
(``memshare.engine.protocol``); after a ``Failed`` the process exits. Sample rows are appended
and fsynced as each request finishes, so a killed run loses at most the requests in flight.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from memshare.engine.logprobs import save_logprobs
from memshare.engine.protocol import BatchSpec, Done, Event, Failed, Job, Progress, SampleRow, encode_event
from memshare.engine.session import EngineSession
from memshare.errors import UserError


def _emit(event: Event) -> None:
    sys.stdout.write(encode_event(event) + "\n")
    sys.stdout.flush()


def run(spec: BatchSpec, session: EngineSession | None = None) -> dict:
    """Run ``spec`` on ``session``'s engine (a fresh one sized to the spec's budget if None)."""
    from vllm import SamplingParams

    from memshare.engine.llm import run_report, scheduler_connector

    session = session or EngineSession(spec, spec.engine.kv_blocks)
    steps = session.begin(spec)
    engine = session.engine
    connector = scheduler_connector(engine) if spec.sharing is not None else None
    first_shared = connector.scheduler_side.first_shared_position if connector is not None else {}
    sampling = spec.sampling
    tokenizer = engine.get_tokenizer() if any(j.forced_token_ids for j in spec.jobs) else None
    arrival: dict[str, float] = {}
    first_token: dict[str, float] = {}
    t_start = time.perf_counter()
    for job in spec.jobs:
        params = SamplingParams(**{"max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
                                   "top_p": sampling.top_p, "seed": sampling.seed + job.sample_index,
                                   **_replay_params(job, sampling.logprobs)})
        engine.add_request(job.key, {"prompt_token_ids": list(job.prompt_token_ids)}, params)
        arrival[job.key] = time.perf_counter()
    by_key = {j.key: j for j in spec.jobs}
    done = 0
    out_tokens = 0
    with open(spec.samples_path, "a", encoding="utf-8") as fh:
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
                # Forced outputs skip vLLM's detokenizer (it would also decode every top-k token).
                text = comp.text if tokenizer is None else tokenizer.decode(comp.token_ids, skip_special_tokens=True)
                row = SampleRow(
                    problem_id=job.problem_id, sample_index=job.sample_index, dataset=spec.dataset,
                    kind=spec.kind, response=text, output_token_ids=list(comp.token_ids),
                    prompt_tokens=len(job.prompt_token_ids), output_tokens=len(comp.token_ids),
                    finish_reason=comp.finish_reason, ttft_s=first_token.get(key, now) - arrival[key],
                    latency_s=now - arrival[key], num_cached_tokens=out.num_cached_tokens,
                    first_shared_position=first_shared.pop(key, None),
                )
                if spec.logprobs_dir and sampling.logprobs:
                    save_logprobs(spec.logprobs_dir, key, comp.logprobs, sampling.logprobs)
                out_tokens += row.output_tokens
                fh.write(json.dumps(row.to_dict()) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                done += 1
                _emit(Progress(done, len(spec.jobs), out_tokens))
    wall = time.perf_counter() - t_start
    report = run_report(engine, steps)
    report.update(wall_s=wall, output_tokens=out_tokens, num_requests=len(spec.jobs),
                  engine_facts={**session.facts, "session": session.end()})
    return report


def _replay_params(job: Job, logprobs: int) -> dict:
    """SamplingParams of a forced (trace replay) request, and raw top-k logprobs when asked."""
    from memshare.engine.forcing import FORCED_KEY

    out: dict = {}
    if logprobs:
        out.update(logprobs=logprobs, flat_logprobs=True)
    if job.forced_token_ids:
        out.update(max_tokens=len(job.forced_token_ids), ignore_eos=True, temperature=0.0, detokenize=False,
                   extra_args={FORCED_KEY: list(job.forced_token_ids)})
    return out


def main(argv: list[str]) -> int:
    if argv == ["--session"]:
        return serve_session(sys.stdin)
    if len(argv) != 1:
        print("usage: python -m memshare.engine.batch SPEC.json | --session", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        spec = BatchSpec.from_dict(json.load(fh))
    try:
        report = run(spec)
    except (UserError, ValueError) as exc:
        _emit(Failed(str(exc)))
        return 2
    _emit(Done(report))
    return 0


def serve_session(lines: Any) -> int:
    """Serve one run per line until the input ends; the engine is built by the first run."""
    session: EngineSession | None = None
    for line in lines:
        if not line.strip():
            continue
        command = json.loads(line)
        spec = BatchSpec.from_dict(command["spec"])
        try:
            if session is None:
                session = EngineSession(spec, command.get("capacity"))
            report = run(spec, session)
        except (UserError, ValueError, RuntimeError) as exc:
            _emit(Failed(str(exc)))
            return 2
        _emit(Done(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
