"""``memshare serve``: the OpenAI-compatible server with the backend, bound to 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app


def test_serve_binds_loopback_and_loads_the_backend():
    res = CliRunner().invoke(app, ["serve", "--print-command", "--kv-blocks", "64", "--max-model-len", "1024"])
    assert res.exit_code == 0, res.output
    assert "--host 127.0.0.1" in res.output
    assert "--worker-cls memshare.engine.worker.MemShareWorker" in res.output
    assert '"kv_connector": "MemShareConnector"' in res.output
    assert "--no-async-scheduling" in res.output and "--enable-prefix-caching" in res.output


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


@pytest.mark.slow
def test_server_answers_a_completion_with_sharing_on(tmp_path):
    port = _free_port()
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "memshare_cli.main", "serve", "--port", str(port), "--max-model-len", "1024",
           "--policy", "random", "--random-rate", "0.5", "--stats-file", str(stats)]
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(base + "/v1/models", timeout=5) as r:
                    model = json.load(r)["data"][0]["id"]
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(2)
        else:
            pytest.fail("server did not come up")
        body = json.dumps({"model": model, "prompt": "Count from one to fifty: one, two, three,", "max_tokens": 200,
                           "temperature": 0}).encode()
        req = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            out = json.load(r)
        assert out["choices"][0]["text"].strip()
        deadline = time.time() + 30
        while not stats.exists() and time.time() < deadline:
            time.sleep(1)
        report = json.loads(stats.read_text())
        assert report["full_blocks"] >= 3 and report["shared_blocks"] >= 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
