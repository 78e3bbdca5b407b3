"""Prefix caching with sharing, in one engine: ``python -m tests.engine.prefix_probe ARGS.json``.

Phase 1 generates for a prompt with a sharing policy that shares from the second output block on.
Phase 2, in the same engine, asks for the phase-1 prompt + output as a new prompt. Prints one
JSON line: phase-1 output, the blocks the request had hashed at its first share, and phase 2's
cached tokens and output. With ``policy`` null the engine is plain vLLM (the reference).
"""

from __future__ import annotations

import json
import sys


def main(args: dict) -> dict:
    from vllm import SamplingParams

    from memshare.core.config import MemShareConfig
    from memshare.engine.llm import EngineSettings, make_llm, run_report, scheduler_connector, watch_steps

    policy = MemShareConfig.from_dict(args["policy"]) if args["policy"] else None
    llm = make_llm(EngineSettings(model=args["model"], max_model_len=1024, seed=0), policy, debug=args.get("debug"))
    steps = watch_steps(llm)
    greedy = SamplingParams(max_tokens=args["max_tokens"], temperature=0.0)
    out: dict = {}
    if args.get("prompt") is not None:
        (first,) = llm.generate([{"prompt_token_ids": args["prompt"]}], greedy, use_tqdm=False)
        out["output"] = list(first.outputs[0].token_ids)
        side = scheduler_connector(llm)
        hashed = side.scheduler_side.hashed_at_first_share if side is not None else {}
        out["hashed_at_first_share"] = next(iter(hashed.values()), None)
    if args.get("second") is not None:
        second_prompt = args["second"] if args["second"] else args["prompt"] + out["output"]
        (second,) = llm.generate([{"prompt_token_ids": second_prompt}], SamplingParams(max_tokens=32, temperature=0.0),
                                 use_tqdm=False)
        out["second_prompt"] = second_prompt
        out["second_cached_tokens"] = second.num_cached_tokens
        out["second_output"] = list(second.outputs[0].token_ids)
    out["report"] = run_report(llm, steps)
    return out


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        result = main(json.load(fh))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
