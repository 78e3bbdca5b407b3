"""Engine arguments: CUDA graphs on a GPU, eager on the CPU build; tensor parallelism plumbed through."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from memshare.core.config import MemShareConfig
from memshare.engine import llm
from memshare.engine.llm import EngineSettings, engine_kwargs
from memshare.engine.serve import server_argv
from memshare_cli.main import app


@pytest.mark.parametrize("on_cpu, eager", [(True, True), (False, False)])
def test_eager_only_on_the_cpu_build_unless_asked(monkeypatch, on_cpu, eager):
    monkeypatch.setattr(llm, "_is_cpu", lambda: on_cpu)
    assert engine_kwargs(EngineSettings(model="m"), MemShareConfig())["enforce_eager"] is eager
    assert engine_kwargs(EngineSettings(model="m", enforce_eager=True), None)["enforce_eager"] is True


def test_tensor_parallel_uses_the_multiprocessing_executor(monkeypatch):
    monkeypatch.setattr(llm, "_is_cpu", lambda: False)
    one = engine_kwargs(EngineSettings(model="m"), MemShareConfig())
    two = engine_kwargs(EngineSettings(model="m", tensor_parallel_size=2), MemShareConfig())
    assert (one["tensor_parallel_size"], one["distributed_executor_backend"]) == (1, "uni")
    assert (two["tensor_parallel_size"], two["distributed_executor_backend"]) == (2, "mp")
    with pytest.raises(ValueError, match="tensor-parallel-size"):
        EngineSettings(model="m", tensor_parallel_size=0)


def test_the_cpu_build_runs_even_one_worker_in_the_multiprocessing_executor(monkeypatch):
    monkeypatch.setattr(llm, "_is_cpu", lambda: True)
    assert engine_kwargs(EngineSettings(model="m"), MemShareConfig())["distributed_executor_backend"] == "mp"


def test_server_command_carries_tensor_parallelism():
    argv = server_argv(EngineSettings(model="m", tensor_parallel_size=4), MemShareConfig())
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4"
    assert argv[argv.index("--distributed-executor-backend") + 1] == "mp"


@pytest.mark.parametrize("on_cpu, flag", [(True, " --enforce-eager"), (False, " --no-enforce-eager")])
def test_serve_cli_takes_tensor_parallel_size(monkeypatch, on_cpu, flag):
    monkeypatch.setattr(llm, "_is_cpu", lambda: on_cpu)
    res = CliRunner().invoke(app, ["serve", "--print-command", "--tensor-parallel-size", "2"])
    assert res.exit_code == 0, res.output
    assert "--tensor-parallel-size 2" in res.output and "--distributed-executor-backend mp" in res.output
    assert flag in res.output  # CUDA graphs unless on the CPU build


def test_stage2_gather_cap_is_validated():
    assert MemShareConfig(stage2_max_gather_mb=0.5).stage2_max_gather_mb == 0.5
    for bad in (0, -1, float("inf"), True, "64"):
        with pytest.raises(ValueError, match="stage2_max_gather_mb"):
            MemShareConfig(stage2_max_gather_mb=bad)


@pytest.mark.parametrize("on_cpu", [True, False])
def test_block_size_the_cpu_build_cannot_run_is_one_clear_line(monkeypatch, on_cpu):
    monkeypatch.setattr(llm, "_is_cpu", lambda: on_cpu)
    if on_cpu:
        with pytest.raises(ValueError, match="multiple of 32"):
            engine_kwargs(EngineSettings(model="m", block_size=16), None)
        res = CliRunner().invoke(app, ["serve", "--print-command", "--block-size", "16"])
        assert res.exit_code == 2 and "multiple of 32" in res.output and "Traceback" not in res.output
    else:
        assert engine_kwargs(EngineSettings(model="m", block_size=16), None)["block_size"] == 16


def test_vanilla_is_vllm_with_its_defaults_and_vanilla_sync_the_former_baseline():
    from memshare.engine.adapter import engine_env

    vanilla = engine_kwargs(EngineSettings(model="m", engine_mode="defaults"), None)
    assert not {"async_scheduling", "distributed_executor_backend", "worker_cls", "kv_transfer_config"} & set(vanilla)
    sync = engine_kwargs(EngineSettings(model="m", engine_mode="sync"), None)
    assert sync["async_scheduling"] is False and "distributed_executor_backend" in sync
    backend = engine_kwargs(EngineSettings(model="m"), MemShareConfig())
    assert "async_scheduling" not in backend and backend["worker_cls"].endswith("MemShareWorker")
    with pytest.raises(ValueError, match="plain vLLM only"):
        engine_kwargs(EngineSettings(model="m", engine_mode="defaults"), MemShareConfig())
    with pytest.raises(ValueError, match="engine mode"):
        EngineSettings(model="m", engine_mode="fast")
    # No environment override for vanilla, even where this process set the backend's.
    base = {"PATH": "/bin", "VLLM_USE_V2_MODEL_RUNNER": "0", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert engine_env(base, in_process=True, vllm_defaults=True) == {"PATH": "/bin"}
    assert engine_env({"PATH": "/bin"}, in_process=True)["VLLM_USE_V2_MODEL_RUNNER"] == "0"


def test_each_baseline_runs_on_its_own_engine():
    from memshare.bench import BenchConfig

    cfg = BenchConfig(policies=("vanilla", "vanilla-sync", "dense", "memshare"))
    assert [cfg.engine_mode_for(p) for p in cfg.policies] == ["defaults", "sync", "backend", "backend"]
    assert cfg.sharing_for("vanilla-sync", {}) is None and cfg.sharing_for("dense", {}).policy == "dense"


def test_serving_vanilla_passes_no_flag_of_ours():
    res = CliRunner().invoke(app, ["serve", "--print-command", "--policy", "vanilla"])
    assert res.exit_code == 0, res.output
    assert "--distributed-executor-backend" not in res.output and "async-scheduling" not in res.output
    res = CliRunner().invoke(app, ["serve", "--print-command", "--policy", "vanilla-sync"])
    assert res.exit_code == 0 and "--no-async-scheduling" in res.output
