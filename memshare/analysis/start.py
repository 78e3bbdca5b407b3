"""The start every analysis run shares (``analyze``, ``compare``): progress messages, torch
threads, the model (Hugging Face, CPU float32) and the output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.results import Events


@dataclass(frozen=True, slots=True)
class RunStart:
    emit: Events
    lm: Any  # memshare.analysis.traces.LoadedModel
    out: Path

    def status(self, message: str) -> None:
        self.emit("status", {"message": message})


def start_run(model: str, threads: int | None, out_dir: Path, on_event: Events | None) -> RunStart:
    """Set torch's CPU threads (None: torch's default), load ``model``, make ``out_dir``."""
    import torch

    from memshare.analysis.traces import load_model

    emit = on_event or (lambda kind, data: None)
    if threads:
        torch.set_num_threads(threads)
    lm = load_model(model, status=lambda message: emit("status", {"message": message}))
    out_dir.mkdir(parents=True, exist_ok=True)
    return RunStart(emit, lm, out_dir)
