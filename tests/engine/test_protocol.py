"""The typed bench <-> engine contract round-trips, and refuses what it does not know."""

from __future__ import annotations

import pytest

from memshare.core.config import MemShareConfig
from memshare.engine.protocol import (
    BatchSpec,
    Done,
    EngineSettings,
    Failed,
    Job,
    Progress,
    SampleRow,
    SamplingSpec,
    decode_event,
    encode_event,
)


def test_batch_spec_round_trips_through_a_dict():
    spec = BatchSpec(EngineSettings(model="m", kv_blocks=96, max_model_len=1024, prefix_caching=False),
                     MemShareConfig(policy="memshare"), SamplingSpec(max_tokens=8, temperature=0.6, top_p=0.95, seed=3),
                     [Job("p#0", "p", 0, [1, 2, 3])], "/tmp/s.jsonl", dataset="math500", kind="math",
                     debug={"debug_poison_freed": True})
    again = BatchSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.engine.prefix_caching is False and again.jobs[0].prompt_token_ids == [1, 2, 3]


def test_unknown_fields_and_impossible_engines_are_refused():
    with pytest.raises(ValueError, match="unknown field"):
        Job.from_dict({"key": "k", "problem_id": "p", "sample_index": 0, "prompt_token_ids": [], "extra": 1})
    with pytest.raises(ValueError, match="too small"):
        EngineSettings(model="m", kv_blocks=4, max_model_len=1024, block_size=32)


@pytest.mark.parametrize("event", [Progress(3, 8, 120), Done({"engine_steps": 12}), Failed("bad input")])
def test_events_round_trip_and_other_lines_are_ignored(event):
    assert decode_event(encode_event(event)) == event
    assert decode_event("INFO vllm started") is None
    assert decode_event('{"event": "nope"}') is None
    assert decode_event("[1, 2]") is None


def test_sample_rows_carry_dataset_and_kind():
    row = SampleRow("p", 0, "aime24", "aime", "text", [5], 10, 1, "stop", 0.1, 0.2)
    assert SampleRow.from_dict(row.to_dict()).to_dict()["kind"] == "aime"
