"""``memshare serve``: the OpenAI-compatible server with the backend, bound to 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.client import HTTPConnection

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app


def test_serve_binds_loopback_and_loads_the_backend():
    res = CliRunner().invoke(app, ["serve", "--print-command", "--kv-blocks", "64", "--max-model-len", "1024"])
    assert res.exit_code == 0, res.output
    assert "--host 127.0.0.1" in res.output
    assert "--worker-cls memshare.engine.worker.MemShareWorker" in res.output
    assert '"kv_connector": "MemShareConnector"' in res.output
    # Scheduling is vLLM's choice (async on a GPU): MemShare runs under either.
    assert "async-scheduling" not in res.output and "--enable-prefix-caching" in res.output


def test_serve_vanilla_has_no_backend():
    res = CliRunner().invoke(app, ["serve", "--print-command", "--policy", "vanilla"])
    assert res.exit_code == 0 and "MemShareConnector" not in res.output


def test_serve_rejects_unknown_policy():
    res = CliRunner().invoke(app, ["serve", "--print-command", "--policy", "nope"])
    assert res.exit_code == 2 and "unknown policy" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(base: str) -> dict[str, float]:
    """Prometheus text -> {name: value}, summed over label sets."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("{")[0].split(" ")[0], float(line.rsplit(" ", 1)[1])
            out[name] = out.get(name, 0.0) + value
    return out


def _post(port: int, body: bytes, *, stream: bool = False, drop_after: int | None = None) -> tuple[int, int]:
    """POST a completion; returns (status, stream events read). ``drop_after``: hang up mid-stream."""
    conn = HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200 or not stream:
            resp.read()
            return resp.status, 0
        events = 0
        while True:
            line = resp.readline()
            if not line or line.strip() == b"data: [DONE]":
                return resp.status, events
            if line.startswith(b"data: "):
                events += 1
                if drop_after is not None and events >= drop_after:
                    return resp.status, events  # close() below drops the connection mid-stream
    finally:
        conn.close()


def _start_server(tmp_path, *extra: str):
    port = _free_port()
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "memshare_cli.main", "serve", "--port", str(port), "--max-model-len", "1024",
           "--stats-file", str(stats), *extra]
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 400
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=5) as r:
                return proc, port, base, json.load(r)["data"][0]["id"], stats
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(2)
    _stop(proc)
    pytest.fail("server did not come up")


def _stop(proc) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_serve_soak_streams_drops_malformed_then_idle_with_counters_on_metrics(tmp_path):
    """Concurrent streaming requests (same and different prompts), clients hanging up mid-stream and
    malformed requests, twice over; then the server is healthy, KV use is back to 0, no pin is held,
    and MemShare's counters on /metrics agree with the scheduler's own report."""
    # Share everything Stage 1 proposes, so shares, frees and pins happen in a short run.
    proc, port, base, model, stats = _start_server(
        tmp_path, "--policy", "memshare", "--block-size", "32", "--kv-blocks", "160",
        "--step-threshold", "0", "--block-threshold", "2")
    try:
        def body(prompt: str, **kw) -> bytes:
            return json.dumps({"model": model, "prompt": prompt, "max_tokens": 160, "temperature": 0,
                               "stream": True, **kw}).encode()

        prompts = ["Count from one to fifty: one, two, three,", "List the even numbers: 2, 4, 6,",
                   "Say the alphabet: a, b, c,"]
        malformed = [b"{not json", json.dumps({"model": model}).encode(),
                     body("x", max_tokens=-5), body("y", model="no-such-model"),
                     body("word " * 2000)]  # longer than --max-model-len
        results: list[tuple[str, tuple[int, int]]] = []
        jobs = ([("full", body(prompts[i % 3]), None) for i in range(6)]
                + [("dropped", body(prompts[i % 3], seed=i), 3) for i in range(4)]
                + [("malformed", b, None) for b in malformed])
        for _ in range(2):
            def run(kind, b, drop):
                try:
                    results.append((kind, _post(port, b, stream=True, drop_after=drop)))
                except Exception as exc:  # recorded, asserted below
                    results.append((kind, (-1, repr(exc))))
            threads = [threading.Thread(target=run, args=job) for job in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
        by_kind: dict[str, list] = {}
        for kind, res in results:
            by_kind.setdefault(kind, []).append(res)
        assert all(status == 200 and events >= 5 for status, events in by_kind["full"]), by_kind["full"]
        assert all(status == 200 and events == 3 for status, events in by_kind["dropped"]), by_kind["dropped"]
        assert all(400 <= status < 500 for status, _ in by_kind["malformed"]), by_kind["malformed"]
        assert proc.poll() is None
        # Idle: one last request lets the engine step once more and publish fresh gauges.
        assert _post(port, body(prompts[0], max_tokens=8, stream=False))[0] == 200
        deadline = time.time() + 60
        while True:
            m = _metrics(base)
            idle = (m.get("vllm:num_requests_running") == 0 and m.get("vllm:kv_cache_usage_perc") == 0
                    and m.get("vllm:memshare_outstanding_pins") == 0)
            if idle or time.time() > deadline:
                break
            time.sleep(1)
        assert idle, {k: v for k, v in m.items() if "memshare" in k or "usage" in k or "running" in k}
        with urllib.request.urlopen(base + "/health", timeout=10) as r:
            assert r.status == 200
        assert m["vllm:memshare_full_blocks_total"] > 0
        assert 0 < m["vllm:memshare_freed_blocks_total"] <= m["vllm:memshare_shared_blocks_total"]
        assert m["vllm:memshare_stage2_queries_total"] >= m["vllm:memshare_matches_total"] > 0
        assert m["vllm:memshare_stage1_seconds_total"] > 0
        ratio = m["vllm:memshare_shared_blocks_total"] / m["vllm:memshare_full_blocks_total"]
        assert m["vllm:memshare_affected_ratio"] == pytest.approx(ratio, rel=1e-6)
        deadline = time.time() + 30
        while not stats.exists() and time.time() < deadline:
            time.sleep(1)
        report = json.loads(stats.read_text())
        for key in ("full_blocks", "shared_blocks", "freed_blocks", "matches"):
            assert m[f"vllm:memshare_{key}_total"] == report[key], key
    finally:
        _stop(proc)


@pytest.mark.slow
def test_serve_tensor_parallel_3_answers_and_its_counters_move(tmp_path):
    """``--tensor-parallel-size 3`` on the CPU build: the packaged model's 3 KV heads, one per rank.
    ``memshare serve`` sets the thread binding vLLM needs where there are fewer NUMA nodes than ranks."""
    from memshare.engine.adapter import threads

    facts = threads._cpu_facts()
    binding = threads.thread_binding(3, *facts) if facts is not None else None
    proc, port, base, model, _stats = _start_server(
        tmp_path, "--tensor-parallel-size", "3", "--policy", "memshare", "--block-size", "32", "--kv-blocks", "64",
        "--step-threshold", "0", "--block-threshold", "2")
    try:
        before = _metrics(base)
        body = json.dumps({"model": model, "prompt": "List the even numbers: 2, 4, 6,", "max_tokens": 96,
                           "ignore_eos": True, "temperature": 0}).encode()
        assert _post(port, body)[0] == 200
        m = _metrics(base)
        moved = {k: v - before.get(k, 0) for k, v in m.items() if "memshare" in k or "generation_tokens" in k}
        assert moved["vllm:generation_tokens_total"] == 96, moved
        assert moved["vllm:memshare_full_blocks_total"] >= 2, moved  # 96 output tokens fill 2-3 blocks of 32
        assert proc.poll() is None
    finally:
        _stop(proc)
    log = (tmp_path / "server.log").read_text()
    if binding is not None:
        assert f"{threads.THREADS_BIND_ENV}={binding} " in log
    assert "tensor_parallel_size=3" in log
