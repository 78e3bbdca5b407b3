"""The start every analysis run shares (``analyze``, ``compare``): progress messages, the workload
(``memshare.workload.load_workload``, the one builder every command uses), torch threads, the model
(Hugging Face, CPU float32) and the output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memshare.results import Events

if TYPE_CHECKING:
    from memshare.analysis.config import WorkloadOptions
    from memshare.workload import Workload


@dataclass(frozen=True, slots=True)
class RunStart:
    emit: Events
    lm: Any  # memshare.analysis.traces.LoadedModel
    out: Path
    work: Workload | None  # the dataset's problems and prompts; None when a replay file brings them

    def status(self, message: str) -> None:
        self.emit("status", {"message": message})


def start_run(opts: WorkloadOptions, threads: int | None, out_dir: Path, on_event: Events | None, *,
              replay: bool = False) -> RunStart:
    """Build ``opts``' workload (unless ``replay``), set torch's CPU threads (None: torch's default),
    load ``opts.model``, make ``out_dir``.

    The problems are read before the model is loaded, so bad input fails before a slow download.
    """
    import torch
    from transformers.utils import logging as hf_logging

    from memshare.analysis.traces import load_model
    from memshare.workload import load_workload

    emit = on_event or (lambda kind, data: None)

    def status(message: str) -> None:
        emit("status", {"message": message})

    hf_logging.disable_progress_bar()  # as load_model does: the workload's tokenizer may be downloaded first
    work = None if replay else load_workload(opts.model, opts.max_tokens, dataset=opts.dataset,
                                             data_file=opts.data_file, limit=opts.limit, status=status)
    if threads:
        torch.set_num_threads(threads)
    lm = load_model(opts.model, status=status)
    out_dir.mkdir(parents=True, exist_ok=True)
    return RunStart(emit, lm, out_dir, work)
