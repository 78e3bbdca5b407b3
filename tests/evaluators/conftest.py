"""Shared fixtures for the evaluator tests: where the reference datasets live."""

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_datasets_dir() -> Path:
    """``$MEMSHARE_SHARED_DATASETS`` if set, else ``../shared/datasets`` beside the repo."""
    env = os.environ.get("MEMSHARE_SHARED_DATASETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def load_dataset():
    """Return a loader for ``NAME.jsonl`` rows; skips only when the file is absent."""

    def load(name: str) -> list[dict]:
        path = shared_datasets_dir() / f"{name}.jsonl"
        if not path.is_file():
            pytest.skip(f"reference file {path} is missing (set MEMSHARE_SHARED_DATASETS to its directory)")
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    return load


@pytest.fixture(scope="session", autouse=True)
def warm_pool():
    """Start the grading workers once, as ``regrade`` does, before any deadline runs.

    On a loaded 2-core machine the pool's start-up (importing sympy and
    math-verify) can take seconds; a cold first call would time out.
    """
    from evaluators import GradeSettings, warm_up

    warm_up(GradeSettings(), timeout_s=120.0)
