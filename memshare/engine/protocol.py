"""The typed contract between ``memshare bench`` and its engine process (no vLLM import).

``memshare.bench`` writes a ``BatchSpec`` to a JSON file and starts
``python -m memshare.engine.batch SPEC``; the child appends one ``SampleRow`` per finished
request to the samples file and prints ``Progress``, ``Done`` or ``Failed`` events, one JSON
object a line, on stdout. Both sides import these classes; nothing is matched by hand. The
sharing settings travel as one typed ``MemShareConfig`` (``BatchSpec.sharing``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from memshare.core.config import MemShareConfig


class _Record:
    """``to_dict``/``from_dict`` for flat dataclasses (unknown keys are an error)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


# How far an engine departs from vLLM's defaults (``EngineSettings.engine_mode``):
#   defaults: vLLM as users run it (``vanilla``): no scheduling or runner flag, no environment
#             override, the engine core in its own process; statistics from vLLM's stat loggers.
#   backend:  what the MemShare backend needs: the V1 model runner and the engine core in this
#             process (statistics read directly); scheduling is vLLM's choice (async where the
#             platform has it: a GPU; the CPU build turns it off).
#   sync:     ``backend`` with synchronous scheduling (``vanilla-sync``, the former baseline).
#   async:    ``backend`` with async scheduling, set after vLLM's platform hook so the CPU build runs
#             it too (tests: AsyncScheduler and the batch queue on the CPU).
ENGINE_MODES = ("defaults", "backend", "sync", "async")
# The engine each plain-vLLM baseline runs on; the backend's policies run on "backend" (or a mode asked for).
BASELINE_ENGINE = {"vanilla": "defaults", "vanilla-sync": "sync"}


def engine_mode_for(policy_name: str, backend_mode: str = "backend") -> str:
    """The engine mode one policy runs on: a baseline's own, else ``backend_mode``."""
    return BASELINE_ENGINE.get(policy_name, backend_mode)


@dataclass(frozen=True, slots=True)
class EngineSettings(_Record):
    """How to build the vLLM engine (``memshare.engine.llm.engine_kwargs``)."""

    model: str
    block_size: int = 32
    kv_blocks: int | None = None
    max_num_seqs: int = 256
    max_model_len: int = 2048
    seed: int = 0
    dtype: str = "auto"
    # None: eager on the CPU build (it has no CUDA graphs), CUDA graphs on a GPU. Graphs are safe
    # with sharing: a remap edits the block table before the step's copy to the device (README).
    enforce_eager: bool | None = None
    prefix_caching: bool = True  # vLLM's default; every policy runs with the same setting
    tensor_parallel_size: int = 1
    forced_decoding: bool = False  # trace replay: load ``memshare.engine.forcing`` (every policy alike)
    engine_mode: str = "backend"  # one of ENGINE_MODES
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine_mode not in ENGINE_MODES:
            raise ValueError(f"engine mode {self.engine_mode!r}: use one of {', '.join(ENGINE_MODES)}")
        if self.block_size <= 0:
            raise ValueError(f"block size must be positive, got {self.block_size}")
        if not isinstance(self.tensor_parallel_size, int) or self.tensor_parallel_size < 1:
            raise ValueError(f"--tensor-parallel-size must be an integer >= 1, got {self.tensor_parallel_size!r}")
        # NOTE: the one "KV pool too small for one request" check (bench builds its settings first).
        if self.kv_blocks is not None:
            need = -(-self.max_model_len // self.block_size) + 1  # vLLM keeps one block as its null block
            if self.kv_blocks < need:
                raise ValueError(f"--kv-blocks {self.kv_blocks} cannot hold one request of up to "
                                 f"{self.max_model_len} tokens: too small, it needs {need} blocks of "
                                 f"{self.block_size} (raise it or lower --max-tokens)")


@dataclass(frozen=True, slots=True)
class SamplingSpec(_Record):
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0  # sample i of a problem uses seed + i
    # Raw top-k logprobs per generated position, saved per request (engine-side fidelity); 0: none.
    logprobs: int = 0


@dataclass(frozen=True, slots=True)
class Job(_Record):
    """One request: sample ``sample_index`` of problem ``problem_id``."""

    key: str
    problem_id: str
    sample_index: int
    prompt_token_ids: list[int]
    # Trace replay: the request emits exactly these tokens (``memshare.engine.forcing``).
    forced_token_ids: list[int] | None = None


@dataclass(frozen=True, slots=True)
class BatchSpec:
    engine: EngineSettings
    sharing: MemShareConfig | None  # None = plain vLLM (vanilla)
    sampling: SamplingSpec
    jobs: list[Job]
    samples_path: str
    dataset: str = ""
    kind: str = "math"
    debug: dict[str, Any] = field(default_factory=dict)
    logprobs_dir: str | None = None  # where ``SamplingSpec.logprobs`` arrays go, one file per request

    def to_dict(self) -> dict[str, Any]:
        sharing = None if self.sharing is None else self.sharing.to_dict()
        return {"engine": self.engine.to_dict(), "sharing": sharing, "sampling": self.sampling.to_dict(),
                "jobs": [j.to_dict() for j in self.jobs], "samples_path": self.samples_path,
                "dataset": self.dataset, "kind": self.kind, "debug": dict(self.debug),
                "logprobs_dir": self.logprobs_dir}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchSpec:
        sharing = None if data.get("sharing") is None else MemShareConfig.from_dict(data["sharing"])
        return cls(EngineSettings.from_dict(data["engine"]), sharing,
                   SamplingSpec.from_dict(data["sampling"]), [Job.from_dict(j) for j in data["jobs"]],
                   data["samples_path"], data.get("dataset", ""), data.get("kind", "math"),
                   dict(data.get("debug") or {}), data.get("logprobs_dir"))


@dataclass(slots=True)
class SampleRow(_Record):
    """One finished request as written to ``samples.jsonl`` (grading adds gold and verdict)."""

    problem_id: str
    sample_index: int
    dataset: str
    kind: str
    response: str
    output_token_ids: list[int]
    prompt_tokens: int
    output_tokens: int
    finish_reason: str | None
    ttft_s: float
    latency_s: float
    num_cached_tokens: int | None = None
    # The first output position whose logits read shared KV (None: the request never shared a block).
    first_shared_position: int | None = None


# ------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Progress(_Record):
    name: ClassVar[str] = "progress"
    done: int
    total: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Done(_Record):
    name: ClassVar[str] = "done"
    report: dict[str, Any]  # StepStats.report() + sharing statistics + leak check + wall time


@dataclass(frozen=True, slots=True)
class Failed(_Record):
    name: ClassVar[str] = "error"
    message: str


Event = Progress | Done | Failed
_EVENTS = {cls.name: cls for cls in (Progress, Done, Failed)}


def encode_event(event: Event) -> str:
    return json.dumps({"event": event.name, **event.to_dict()})


def decode_event(line: str) -> Event | None:
    """The event on a stdout line, or None for any other line (library log output)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("event") not in _EVENTS:
        return None
    cls = _EVENTS[data.pop("event")]
    return cls.from_dict(data)
