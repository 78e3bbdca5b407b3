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

