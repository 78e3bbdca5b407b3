"""A batch run that also records every Stage-2 decision: ``python -m tests.engine.distance_probe SPEC OUT``.

Runs ``memshare.engine.batch`` on ``SPEC`` (same events on stdout) with the memshare policy's
``decide`` wrapped, then writes to ``OUT`` one JSON row per measured proposal: query, candidates,
the distances the engine measured (the scheduler side's sum of every rank's partial sums) and the
choice. The scheduler side runs in this process (the backend's in-process engine core).
``--after-dense``: the same engine first serves the spec with the dense policy, so the measured run
is a reused engine's (``memshare.engine.session``: settings reach every rank by RPC).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def main(spec_path: str, out_path: str, *flags: str) -> int:
    from memshare.core.policies.memshare import MemSharePolicy
    from memshare.engine import batch

    rows: list[dict] = []
    decide = MemSharePolicy.decide

    def recording(self, proposal, distances):
        choice = decide(self, proposal, distances)
        if not all(math.isinf(d) for d in distances):  # ``cancel``: nothing was measured
            rows.append({"query": list(proposal.query), "candidates": [list(c) for c in proposal.candidates],
                         "distances": [float(d) for d in distances],
                         "choice": list(choice) if choice is not None else None})
        return choice

    MemSharePolicy.decide = recording
    if "--after-dense" in flags:
        spec = json.loads(Path(spec_path).read_text())
        dense = {**spec, "sharing": {**spec["sharing"], "policy": "dense"},
                 "samples_path": spec["samples_path"] + ".dense"}
        capacity = spec["engine"]["kv_blocks"]
        code = batch.serve_session([json.dumps({"spec": s, "capacity": capacity}) for s in (dense, spec)])
    else:
        code = batch.main([spec_path])
    Path(out_path).write_text(json.dumps(rows))
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
