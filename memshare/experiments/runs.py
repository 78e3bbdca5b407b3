"""Read saved run folders back, without an engine and without modifying them.

A run folder (see ``memshare.results``) holds ``config.json``, ``samples.jsonl`` and
``metrics.json``. Accuracy is recomputed from the samples' ``correct`` fields, so a
re-graded samples file is reflected; speedups are recomputed against a dense run of the
same workload found among the runs read together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memshare.analysis.quality import quality_vs
from memshare.bench.fidelity import fidelity_vs
from memshare.bench.metrics import accuracy, ratios
from memshare.errors import UserError
from memshare.results import SCHEMA_VERSION, read_json, read_samples

RUN_FILES = "config.json, samples.jsonl and metrics.json"
# Config fields that define the workload: a dense run is a valid reference only if these match.
WORKLOAD_KEYS = ("dataset", "model", "engine", "sampling", "samples", "limit", "data_file", "repeat")
REFERENCE_POLICIES = ("dense", "vanilla")


def expand_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Each path is a run folder, or a folder whose direct subfolders include run folders."""
    if not paths:
        raise UserError("give at least one run folder (or a results folder holding run folders)")
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: no such folder")
        if not p.is_dir():
            raise UserError(f"{p}: not a run folder (a run folder holds {RUN_FILES})")
        if (p / "config.json").is_file():
            found.append(p)
            continue
        # NOTE: subfolders without config.json (plots, ablation or analyze folders) are not runs: skipped.
        children = sorted(c for c in p.iterdir() if c.is_dir() and (c / "config.json").is_file())
        if not children:
            raise UserError(f"{p}: not a run folder and holds none (a run folder holds {RUN_FILES})")
        found.extend(children)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def load_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(run, config)``: the run's metrics with recomputed accuracy and ``run_dir``; its config."""
    config = read_json(path / "config.json")
    version = config.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UserError(f"{path}: written by results schema {version}, this memshare reads schema {SCHEMA_VERSION}")
    if not (path / "metrics.json").is_file():
        raise UserError(f"{path}: no metrics.json, the run did not finish (rerun memshare bench to resume it)")
    metrics = read_json(path / "metrics.json")
    if "policy" not in metrics:
        raise UserError(f"{path}: metrics.json is from an unfinished run ({metrics.get('status', 'no policy field')}); "
                        "rerun memshare bench to finish it")
    run = {**metrics, "run_dir": str(path)}
    for key in ("policy", "dataset", "model"):
        run.setdefault(key, config.get(key))
    graded = accuracy(read_samples(path / "samples.jsonl")[0])
    if graded["num_graded"]:
        run.update(graded)
    return run, config


def load_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Expand ``paths``, read every run (all checks pass before anything is returned), add speedups."""
    loaded = [load_run(p) for p in expand_run_dirs(paths)]
    runs = [run for run, _ in loaded]
    add_speedups(runs, [config for _, config in loaded])
    return runs


def workload_key(config: dict[str, Any]) -> str:
    return json.dumps({k: config.get(k) for k in WORKLOAD_KEYS}, sort_keys=True, default=str)


def add_speedups(runs: list[dict[str, Any]], configs: list[dict[str, Any]]) -> None:
    """Ratios and free-running quality (``memshare.bench.metrics``) against the dense (else
    vanilla) run of the same workload, if one was given; for trace replays also the
    teacher-forced fidelity from the two runs' logprobs (``memshare.bench.fidelity``)."""
    refs: dict[tuple[str, str], dict[str, Any]] = {}
    for run, config in zip(runs, configs):
        if run.get("policy") in REFERENCE_POLICIES:
            refs.setdefault((run["policy"], workload_key(config)), run)
    for run, config in zip(runs, configs):
        key = workload_key(config)
        ref = refs.get(("dense", key)) or refs.get(("vanilla", key))
        run["dense_run_dir"] = ref["run_dir"] if ref else None
        run.update(ratios(run, ref, refs.get(("vanilla", key))))
        reference = read_samples(Path(ref["run_dir"]) / "samples.jsonl")[0] if ref else []
        run.update(quality_vs(read_samples(Path(run["run_dir"]) / "samples.jsonl")[0], reference))
        if ref and config.get("replay"):
            run.update(fidelity_vs(run, ref))
