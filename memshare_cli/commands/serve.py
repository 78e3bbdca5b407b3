"""``memshare serve``: vLLM's OpenAI-compatible server with MemShare sharing, on 127.0.0.1."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors


@clean_errors
def serve(
    model: o.Model = "smollm2-135m",
    policy: Annotated[str, typer.Option(help="vanilla (vLLM's defaults), vanilla-sync, dense, random or memshare.")] = "memshare",
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    block_size: o.BlockSize = 32,
    kv_blocks: o.KVBlocks = None,
    max_model_len: Annotated[int, typer.Option(help="Longest prompt + output, in tokens.")] = 4096,
    max_num_seqs: o.MaxNumSeqs = 256,
    tensor_parallel_size: o.TensorParallelSize = 1,
    step_threshold: Annotated[float, typer.Option(help="Stage 1 threshold.")] = 0.8,
    block_threshold: Annotated[float, typer.Option(help="Stage 2 threshold.")] = 0.55,
    distance: Annotated[str, typer.Option(help="kv, k, v, k_unrope, k_unrope_v.")] = "k_unrope",
    random_rate: Annotated[float, typer.Option(help="Random policy rate.")] = 0.1,
    share_delay: Annotated[int, typer.Option(help="Keep the newest N full blocks exact.")] = 0,
    stats_file: Annotated[Optional[str], typer.Option(help="JSON file the scheduler rewrites with sharing stats.")] = None,
    print_only: Annotated[bool, typer.Option("--print-command", help="Print the vLLM command and exit.")] = False,
) -> None:
    """Serve a model with the MemShare backend (OpenAI-compatible API)."""
    from memshare.engine.llm import EngineSettings
    from memshare.engine.protocol import engine_mode_for
    from memshare.engine.serve import server_argv, sharing_config
    from memshare.models import resolve_model

    sharing = sharing_config(policy, block_size=block_size, step_threshold=step_threshold,
                       block_threshold=block_threshold, distance=distance, random_rate=random_rate,
                       share_delay_blocks=share_delay)
    settings = EngineSettings(model=resolve_model(model, status=lambda m: typer.echo(m, err=True)),
                              block_size=block_size, kv_blocks=kv_blocks, max_model_len=max_model_len,
                              max_num_seqs=max_num_seqs, tensor_parallel_size=tensor_parallel_size,
                              engine_mode=engine_mode_for(policy))
    argv = server_argv(settings, sharing, host=host, port=port, stats_path=stats_file)
    from memshare.engine.adapter import engine_env

    env = engine_env(os.environ, in_process=False, vllm_defaults=settings.engine_mode == "defaults",
                     tensor_parallel_size=tensor_parallel_size)
    if print_only:
        import shlex

        # What the server needs on top of this shell's environment, so the printed line runs as is.
        added = [f"{k}={shlex.quote(v)}" for k, v in env.items() if os.environ.get(k) != v]
        typer.echo(" ".join([*added, shlex.join(argv)]))
        return
    os.execve(argv[0], argv, env)
