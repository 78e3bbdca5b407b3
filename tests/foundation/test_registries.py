"""Model and benchmark registries, loaders on small files the tests write."""

from __future__ import annotations

import json

import pytest

from memshare.data import DATASETS, FieldMap, load_problems, source_of
from memshare.errors import UserError
from memshare.models import MODELS, resolve_model


def test_model_aliases_resolve_to_hub_ids():
    assert resolve_model("qwq-32b") == "Qwen/QwQ-32B"
    assert resolve_model("r1-distill-qwen-32b") == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    assert set(MODELS) >= {"smollm2-135m", "qwq-32b", "r1-distill-qwen-7b", "r1-distill-qwen-1.5b", "phi4-reasoning-plus"}


def test_hub_ids_and_local_folders_pass_through(tmp_path):
    assert resolve_model("org/some-model") == "org/some-model"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("bad", ["nope", "a/b/c", "/no/such/dir", ""])
def test_unknown_models_are_refused(bad):
    with pytest.raises(UserError, match="unknown model"):
        resolve_model(bad)


def test_local_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        resolve_model(str(tmp_path))


def test_packaged_default_model_is_converted_once():
    path = resolve_model("smollm2-135m")
    assert (path and json.load(open(f"{path}/config.json"))["num_hidden_layers"] == 30)
    assert resolve_model("smollm2-135m") == path


def test_math500_loads_from_the_packaged_copy():
    assert source_of("math500").startswith("packaged")
    rows = load_problems("math500", limit=3)
    assert len(rows) == 3 and rows[0].kind == "math"
    assert "\\boxed{}" in rows[0].prompt and rows[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_aime_from_a_local_file_keeps_string_answers(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", [{"id": 60, "problem": "Find x.", "answer": "025"}])
    (p,) = load_problems("aime24", data_file=f)
    assert (p.id, p.gold, p.kind) == ("60", "025", "aime")


def test_field_mapping_options(tmp_path):
    f = _write_jsonl(tmp_path / "q.jsonl", [{"q": "What is 1+1?", "sol": "2", "key": "k1"}])
    (p,) = load_problems("math500", data_file=f, fields=FieldMap(problem="q", answer="sol", id="key"))
    assert (p.id, p.gold) == ("k1", "2") and "What is 1+1?" in p.prompt
    with pytest.raises(UserError, match="field 'zzz' is missing"):
        load_problems("math500", data_file=f, fields=FieldMap(problem="zzz"))


def test_json_and_parquet_files(tmp_path):
    pj = tmp_path / "d.json"
    pj.write_text(json.dumps([{"problem": "p", "answer": "1"}, {"problem": "q", "answer": "2"}]))
    assert [p.gold for p in load_problems("math500", data_file=str(pj))] == ["1", "2"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"problem": ["p"], "answer": ["7"]}), tmp_path / "d.parquet")
    assert load_problems("math500", data_file=str(tmp_path / "d.parquet"))[0].gold == "7"


def test_gpqa_shuffles_options_with_a_fixed_seed_and_records_the_gold_letter(tmp_path):
    rows = [{"Question": f"Q{i}?", "Correct Answer": f"right{i}", "Incorrect Answer 1": "w1",
             "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3", "Record ID": f"r{i}"} for i in range(12)]
    f = _write_jsonl(tmp_path / "g.jsonl", rows)
    first = load_problems("gpqa-diamond", data_file=f, seed=0)
    again = load_problems("gpqa-diamond", data_file=f, seed=0)
    assert [p.gold for p in first] == [p.gold for p in again]
    for i, p in enumerate(first):
        assert p.meta["options"][p.gold] == f"right{i}"
        assert f"{p.gold}) right{i}" in p.prompt
    assert len({p.gold for p in first}) > 1, "the correct answer should not always sit at one letter"


@pytest.mark.parametrize("content,match", [
    ('{"problem": "x"\n', "line 1: not valid JSON"),
    ('[1, 2]\n', "expected an object"),
    ('{"problem": "x"}\n', "none of the fields"),
])
def test_malformed_rows_give_one_clear_error(tmp_path, content, match):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(UserError, match=match):
        load_problems("math500", data_file=str(f))


def test_missing_file_unknown_dataset_and_bad_limit():
    with pytest.raises(UserError, match="not found"):
        load_problems("math500", data_file="/no/such.jsonl")
    with pytest.raises(UserError, match="unknown dataset"):
        load_problems("math501")
    with pytest.raises(UserError, match="--limit"):
        load_problems("math500", limit=0)


def test_offline_hub_only_dataset_names_data_file(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("MEMSHARE_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="--data-file"):
        load_problems("aime25")


def test_data_dir_variable_is_used(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / "aime25.jsonl", [{"id": "0", "problem": "p", "answer": 70}])
    monkeypatch.setenv("MEMSHARE_DATA_DIR", str(tmp_path))
    assert "MEMSHARE_DATA_DIR" in source_of("aime25")
    assert load_problems("aime25")[0].gold == "70"


def test_every_dataset_has_a_grader_kind():
    assert {s.kind for s in DATASETS.values()} == {"math", "aime", "gpqa"}


def test_a_benchmark_file_of_its_own_runs_under_its_name_with_kind(tmp_path):
    from evaluators import grade_detailed
    from memshare.bench import BenchConfig
    from memshare.data import load_problems

    f = tmp_path / "gsm_mini.jsonl"
    f.write_text('{"question": "Tom has 3 apples and buys 15 more. How many?", '
                 '"answer": "He has 3 + 15 = 18 apples.\\n#### 18"}\n')
    (p,) = load_problems("math500", data_file=str(f), kind="math")
    assert (p.dataset, p.kind) == ("gsm_mini", "math")
    assert grade_detailed("So the answer is \\boxed{18}.", p.gold, p.kind).correct
    assert not grade_detailed("So the answer is \\boxed{17}.", p.gold, p.kind).correct
    assert BenchConfig(data_file=str(f), kind="math").dataset_name == "gsm_mini"
    assert BenchConfig(data_file=str(f)).dataset_name == "math500"  # without --kind it poses as --dataset
    with pytest.raises(UserError, match="--kind goes with --data-file"):
        load_problems("math500", kind="math")
    with pytest.raises(UserError, match="unknown --kind"):
        load_problems("math500", data_file=str(f), kind="essay")
