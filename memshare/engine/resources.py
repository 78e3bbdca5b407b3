"""Things a policy needs from the model, loaded once in the scheduler process."""

from __future__ import annotations

from typing import Any

from memshare.core.config import MemShareConfig


def load_policy_resources(config: MemShareConfig, model_config: Any) -> dict[str, Any]:
    """Step vocabulary from the tokenizer; the input-embedding matrix for ``encoder=embedding``."""
    if config.policy == "dense":
        return {}
    from transformers import AutoTokenizer

    from memshare.core.steps import StepVocab

    tok = AutoTokenizer.from_pretrained(model_config.tokenizer, trust_remote_code=model_config.trust_remote_code)
    out: dict[str, Any] = {"vocab": StepVocab.from_tokenizer(tok)}
    if config.encoder == "embedding":
        out["embedding"] = load_input_embeddings(model_config.model)
    return out


def load_input_embeddings(model_path: str) -> Any:
    """The ``embed_tokens`` matrix as float32 numpy, read straight from safetensors."""
    import glob
    import os

    from safetensors import safe_open

    for path in sorted(glob.glob(os.path.join(model_path, "*.safetensors"))):
        with safe_open(path, framework="pt") as fh:
            for name in fh.keys():
                if name.endswith("embed_tokens.weight"):
                    return fh.get_tensor(name).float().numpy()
    raise ValueError(f"no embed_tokens.weight found in {model_path}")
