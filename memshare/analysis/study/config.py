"""Settings of ``memshare study``: one frozen, validated dataclass, the split and the output folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.errors import UserError
from memshare.replay import SPLITS


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """What ``memshare study`` runs.

    Args:
        replay: a trace file (``memshare.replay``); ``None``: the shared DeepSeek-R1 traces.
        split: ``choice`` (the first 16 traces: tune here), ``report`` (the rest: report here) or ``all``.
        max_tokens: the prefix of each trace replayed (output tokens).
        block_size: tokens per KV block (the engine's on the CPU build is 32).
        lines: the study's lines (``memshare.analysis.study.lines.LINES``); empty: all of them.
        limit: at most this many traces of the split (a quick look; ``None``: all).
        threads: torch CPU threads (``None``: torch's default).
        out: results folder; ``None``: ``results/study__<traces>__<model>__<split>__<max_tokens>``.
        force: start over instead of resuming.
        control: run the positive control (``control.py``) instead of the lines.
    """

    model: str = "smollm2-135m"
    replay: str | None = None
    split: str = "choice"
    max_tokens: int = 1024
    block_size: int = 32
    lines: tuple[str, ...] = ()
    limit: int | None = None
    threads: int | None = None
    seed: int = 0
    out: str | None = None
    force: bool = False
    control: bool = False

    def __post_init__(self) -> None:
        from memshare.analysis.study.lines import LINES

        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)}; got {self.split!r}")
        if self.max_tokens < 2 * self.block_size:
            raise UserError(f"--max-tokens must be at least two blocks ({2 * self.block_size}), got {self.max_tokens}")
        if self.block_size < 1:
            raise UserError(f"--block-size must be a positive integer, got {self.block_size}")
        unknown = [name for name in self.lines if name not in LINES]
        if unknown:
            raise UserError(f"unknown line {unknown[0]!r}; known: {', '.join(LINES)}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, got {self.limit}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")

    @property
    def line_names(self) -> tuple[str, ...]:
        from memshare.analysis.study.lines import LINES

        return self.lines or tuple(LINES)

    @property
    def traces_path(self) -> str:
        from memshare.replay import default_traces

        return self.replay or str(default_traces())

    @property
    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        from memshare.replay import replay_name
        from memshare.results import default_out_dir

        base = default_out_dir("control" if self.control else "study", replay_name(self.traces_path), self.model)
        return base.with_name(f"{base.name}__{self.split}__{self.max_tokens}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(lines=list(self.line_names), replay=self.traces_path, out=str(self.out_dir))
        return d
