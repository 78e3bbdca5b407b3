"""MemShareConfig validation (memshare.core.config)."""

from __future__ import annotations

import pytest

from memshare.core.config import MemShareConfig


@pytest.mark.parametrize("field, value, message", [
    ("policy", "greedy", "policy must be one of"),
    ("distance", "l1", "distance must be one of"),
    ("metric", "manhattan", "metric must be one of"),
    ("encoder", "bert", "encoder must be one of"),
    ("block_size", 0, "block_size must be a positive integer"),
    ("block_size", 16.0, "block_size must be a positive integer"),
    ("step_threshold", 1.5, r"step_threshold must be a number in \[0, 1\]"),
    ("step_threshold", True, r"step_threshold must be a number in \[0, 1\]"),
    ("random_rate", -0.1, r"random_rate must be a number in \[0, 1\]"),
    ("block_threshold", 2.5, r"block_threshold must be in \[0, 2\]"),
    ("block_threshold", "0.5", r"block_threshold must be in \[0, 2\]"),
    ("max_candidates", 0, "max_candidates must be an integer >= 1"),
    ("min_gap_blocks", 0, "min_gap_blocks must be an integer >= 1"),
    ("share_delay_blocks", -1, "share_delay_blocks must be an integer >= 0"),
])
def test_bad_values_raise(field, value, message):
    with pytest.raises(ValueError, match=message):
        MemShareConfig(**{field: value})


def test_round_trip_and_unknown_keys():
    cfg = MemShareConfig(policy="random", cue_words=["Wait", "Hmm"], cross_request=True)
    assert cfg.cue_words == ("Wait", "Hmm")
    assert MemShareConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(seed=3).seed == 3
    with pytest.raises(ValueError, match="unknown MemShare setting"):
        MemShareConfig.from_dict({"polcy": "dense"})
