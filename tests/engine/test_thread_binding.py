"""The CPU build's OpenMP thread binding for tensor-parallel ranks (``adapter.threads``): which value,
when it is set, that the user's own setting wins, and one clear line where none is sensible."""

from __future__ import annotations

import logging
import os

import pytest
from typer.testing import CliRunner

from memshare.engine.adapter import BACKEND_ENV, IN_PROCESS_ENV, engine_env, set_engine_env, threads
from memshare.engine.adapter.threads import THREADS_BIND_ENV, thread_binding
from memshare.errors import UserError
from memshare_cli.main import app

SIM_NUMA = "VLLM_CPU_SIM_MULTI_NUMA"


@pytest.mark.parametrize("ranks, cpus, nodes, expected", [
    # vLLM's ``auto`` works: one rank, or a NUMA node per rank.
    (1, [0, 1], 1, None),
    (2, range(16), 2, None),
    # Fewer CPUs than ranks: one CPU per rank, round robin.
    (3, [0, 1], 1, "0|1|0"),
    (4, [0, 1], 1, "0|1|0|1"),
    (2, [7], 1, "7|7"),
    # Enough CPUs: contiguous near-equal slices, in vLLM's list syntax.
    (2, [0, 1], 1, "0|1"),
    (3, range(16), 1, "0-5|6-10|11-15"),
    (3, range(16), 2, "0-5|6-10|11-15"),  # two NUMA nodes for three ranks: ``auto`` fails
    (2, [3, 1, 2, 0], 1, "0-1|2-3"),
    (4, [0, 1, 2, 3, 8, 9, 10, 11], 1, "0-1|2-3|8-9|10-11"),
    (2, [0, 2, 4, 6], 1, "0,2|4,6"),
])
def test_binding_per_rank(ranks, cpus, nodes, expected):
    assert thread_binding(ranks, list(cpus), nodes) == expected


@pytest.mark.parametrize("ranks, cpus", [(5, [0, 1]), (3, [0]), (2, [])])
def test_more_than_two_ranks_per_cpu_is_refused_in_one_line_naming_the_variable(ranks, cpus):
    with pytest.raises(UserError, match=THREADS_BIND_ENV) as exc:
        thread_binding(ranks, cpus, 1)
    assert "\n" not in str(exc.value) and f"--tensor-parallel-size {ranks}" in str(exc.value)


@pytest.fixture
def two_cpus(monkeypatch):
    """The CPU build on 2 CPUs and one NUMA node; this process's environment restored afterwards."""
    for key in (THREADS_BIND_ENV, SIM_NUMA, *BACKEND_ENV, *IN_PROCESS_ENV):
        monkeypatch.setenv(key, "")  # recorded, so the key is removed again at teardown
        monkeypatch.delenv(key)
    monkeypatch.setattr(threads, "_ours", None)
    monkeypatch.setattr(threads, "_cpu_facts", lambda: ([0, 1], 1))


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "memshare"]


def test_child_environment_gets_the_binding_in_one_log_line(two_cpus, caplog):
    base = {"PATH": "/bin"}
    with caplog.at_level(logging.INFO, logger="memshare"):
        env = engine_env(base, in_process=True, tensor_parallel_size=3)
    assert env[THREADS_BIND_ENV] == "0|1|0" and base == {"PATH": "/bin"}
    (line,) = _lines(caplog)
    assert f"{THREADS_BIND_ENV}=0|1|0" in line
    # Plain vLLM needs it as much to start; one rank needs none.
    assert engine_env(base, in_process=True, vllm_defaults=True, tensor_parallel_size=3) == {
        "PATH": "/bin", THREADS_BIND_ENV: "0|1|0"}
    assert THREADS_BIND_ENV not in engine_env(base, in_process=True)


def test_the_users_own_setting_wins(two_cpus, caplog):
    with caplog.at_level(logging.INFO, logger="memshare"):
        assert engine_env({THREADS_BIND_ENV: "0,1|0,1|0,1"}, in_process=True,
                          tensor_parallel_size=3)[THREADS_BIND_ENV] == "0,1|0,1|0,1"
        # Simulated NUMA nodes are vLLM's other way to bind: left to it.
        assert THREADS_BIND_ENV not in engine_env({SIM_NUMA: "1"}, in_process=True, tensor_parallel_size=3)
    assert _lines(caplog) == []


def test_off_the_cpu_build_nothing_is_set(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_facts", lambda: None)
    assert THREADS_BIND_ENV not in engine_env({}, in_process=True, tensor_parallel_size=8)


def test_in_process_engines_set_replace_and_drop_their_own_binding(two_cpus):
    from vllm import envs

    # vLLM caches its environment once an engine has started in a process (engine reuse).
    envs.enable_envs_cache()
    try:
        assert envs.VLLM_CPU_OMP_THREADS_BIND == "auto"
        set_engine_env(3)
        assert os.environ[THREADS_BIND_ENV] == "0|1|0" and envs.VLLM_CPU_OMP_THREADS_BIND == "0|1|0"
    finally:
        envs.disable_envs_cache()
    set_engine_env(2)
    assert os.environ[THREADS_BIND_ENV] == "0|1"
    set_engine_env(1)  # one rank: vLLM's own ``auto`` again
    assert THREADS_BIND_ENV not in os.environ
    os.environ[THREADS_BIND_ENV] = "1|0|1"  # the user's, not ours
    set_engine_env(3)
    assert os.environ[THREADS_BIND_ENV] == "1|0|1"


def test_make_engine_refuses_in_one_line_before_starting(two_cpus):
    from memshare.engine.llm import EngineSettings, make_engine

    with pytest.raises(UserError, match=THREADS_BIND_ENV):
        make_engine(EngineSettings(model="m", tensor_parallel_size=5), None)


def test_serve_prints_the_binding_with_the_command_or_refuses_in_one_line(two_cpus):
    res = CliRunner().invoke(app, ["serve", "--print-command", "--tensor-parallel-size", "3"])
    assert res.exit_code == 0, res.output
    assert f"{THREADS_BIND_ENV}='0|1|0' " in res.output and "--tensor-parallel-size 3" in res.output
    res = CliRunner().invoke(app, ["serve", "--print-command", "--tensor-parallel-size", "5"])
    assert res.exit_code == 2 and THREADS_BIND_ENV in res.output and "Traceback" not in res.output
