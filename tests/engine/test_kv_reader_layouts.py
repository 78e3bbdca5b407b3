"""The KV reader against every cache layout vLLM 0.32 can hand a worker, built with vLLM's own views.

GPU caches cannot run end to end on the CPU build, but their views can be built here with
``create_kv_cache_views`` and filled exactly as the CUDA backends read them; the reader must
return the same K and V. On a GPU runner the same matrix also runs on CUDA tensors.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from memshare.core.config import MemShareConfig
from memshare.engine.adapter import worker as adapter
from memshare.engine.kv_reader import CpuKVReader, CudaKVReader, KVCacheFacts, LayerFacts, make_kv_reader
from memshare.engine.worker_side import WorkerSide
from memshare.errors import UserError
from tests.engine.kv_views import GPU_LAYOUTS, build_views, fill_as_cpu_vec_kernel, fill_as_gpu_backends

pytestmark = pytest.mark.gpu_layouts

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
HEAD = 16


def facts(views, *, platform="cuda", backend="FLASH_ATTN", block_size=16, num_kv_heads=8, head_size=HEAD,
          head_size_v=None, cpu_isa=None, **kw) -> KVCacheFacts:
    layers = tuple(LayerFacts(name, backend, num_kv_heads, head_size, head_size_v or head_size) for name in views)
    return KVCacheFacts(platform=platform, block_size=block_size, layers=layers, cpu_isa=cpu_isa, **kw)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout, dtype, block_size, num_kv_heads", list(itertools.product(
    GPU_LAYOUTS, (torch.bfloat16, torch.float16), (16, 32), (1, 8))), ids=str)
def test_cuda_reader_returns_what_the_backends_wrote(layout, dtype, block_size, num_kv_heads, device):
    views = build_views(layout, dtype=dtype, block_size=block_size, num_kv_heads=num_kv_heads, head_size=HEAD,
                        device=device)
    k_ref, v_ref = fill_as_gpu_backends(views, HEAD, block_size)
    reader = make_kv_reader(views, facts(views, block_size=block_size, num_kv_heads=num_kv_heads), "kv")
    assert isinstance(reader, CudaKVReader)
    ids = torch.tensor([4, 1, 4, 0], device=device)  # repeats and any order
    k, v = reader.gather(ids)
    assert k.shape == (4, 3, num_kv_heads, block_size, HEAD)
    assert torch.equal(k.cpu(), k_ref[ids.cpu()]) and torch.equal(v.cpu(), v_ref[ids.cpu()])
    k_only, none = reader.gather(ids, want_v=False)
    assert none is None and torch.equal(k_only.cpu(), k_ref[ids.cpu()])


@pytest.mark.parametrize("layout", (GPU_LAYOUTS[0], GPU_LAYOUTS[2]), ids=str)
def test_cuda_reader_joins_kernel_blocks_of_a_scheduler_block(layout):
    # FlashInfer/Triton may split a 32-token scheduler block into two 16-token kernel blocks.
    views = build_views(layout, dtype=torch.bfloat16, block_size=32, kernel_block_size=16, num_kv_heads=2,
                        head_size=HEAD)
    assert next(iter(views.values())).shape[:3] == (12, 2, 16)
    k_ref, v_ref = fill_as_gpu_backends(views, HEAD, 32)
    k, v = make_kv_reader(views, facts(views, block_size=32, num_kv_heads=2), "kv").gather(torch.tensor([5, 2]))
    assert torch.equal(k, k_ref[[5, 2]]) and torch.equal(v, v_ref[[5, 2]])


def test_cuda_reader_with_a_v_head_size_of_its_own():
    views = build_views(GPU_LAYOUTS[0], dtype=torch.bfloat16, block_size=16, num_kv_heads=2, head_size=HEAD,
                        head_size_v=8)
    k_ref, v_ref = fill_as_gpu_backends(views, HEAD, 16)
    k, v = make_kv_reader(views, facts(views, num_kv_heads=2, head_size_v=8), "kv").gather(torch.tensor([3]))
    assert v.shape[-1] == 8 and torch.equal(k, k_ref[[3]]) and torch.equal(v, v_ref[[3]])


def test_layers_in_separate_allocations_are_read_one_by_one():
    parts = [build_views(GPU_LAYOUTS[1], dtype=torch.float16, block_size=16, num_kv_heads=8, head_size=HEAD,
                         num_layers=1, device="cpu") for _ in range(2)]
    views = {"a": parts[0]["layers.0.attn"], "b": parts[1]["layers.0.attn"]}
    k_ref, v_ref = fill_as_gpu_backends(views, HEAD, 16)
    reader = make_kv_reader(views, facts(views), "kv")
    assert reader._stacked is None  # no common layer stride: the per-layer path
    k, v = reader.gather(torch.tensor([2, 5]))
    assert torch.equal(k, k_ref[[2, 5]]) and torch.equal(v, v_ref[[2, 5]])


def test_layers_that_share_kv_are_counted_once():
    views = build_views(GPU_LAYOUTS[0], dtype=torch.bfloat16, block_size=16, num_kv_heads=8, head_size=HEAD)
    k_ref, _ = fill_as_gpu_backends(views, HEAD, 16)
    names = list(views)
    # vLLM points a KV-sharing layer's cache at its target's tensor (initialize_kv_cache_tensors).
    views["layers.3.attn"] = views[names[0]]
    declared = facts(views)
    declared = KVCacheFacts(platform="cuda", block_size=16, layers=declared.layers[:3] + (
        LayerFacts("layers.3.attn", "FLASH_ATTN", 8, HEAD, HEAD, shares_kv_of=names[0]),))
    assert make_kv_reader(views, declared, "kv").num_layers == 3
    # Even without the declaration an aliased tensor is read once.
    assert make_kv_reader(views, facts(views), "kv").num_layers == 3
    k, _ = make_kv_reader(views, declared, "k").gather(torch.tensor([1]))
    assert torch.equal(k, k_ref[[1]])


# --------------------------------------------------------------------------- refusals


def small_views(dtype=torch.bfloat16):
    return build_views(GPU_LAYOUTS[0], dtype=dtype, block_size=16, num_kv_heads=8, head_size=HEAD)


@pytest.mark.parametrize("change, message", [
    (dict(kv_quantized=True), "quantized"),
    (dict(use_mla=True), "MLA"),
    (dict(backend="ROCM_ATTN"), "no KV reader for attention backend ROCM_ATTN"),
    (dict(platform="rocm"), "no KV reader"),
    (dict(backend="CPU_ATTN"), "no KV reader for attention backend CPU_ATTN on cuda"),
])
def test_unsupported_caches_are_refused_in_one_line(change, message):
    views = small_views()
    with pytest.raises(UserError, match=message) as err:
        make_kv_reader(views, facts(views, **change), "kv")
    assert "\n" not in str(err.value)


def test_a_float8_cache_is_refused_even_if_not_declared_quantized():
    views = {n: v.view(torch.float8_e4m3fn) for n, v in small_views(torch.float16).items()}
    with pytest.raises(UserError, match="float16/bfloat16/float32"):
        make_kv_reader(views, facts(views, head_size=HEAD), "kv")


def test_layers_with_different_head_sizes_are_refused():
    views = small_views()
    f = facts(views)
    f = KVCacheFacts(platform="cuda", block_size=16, layers=f.layers[:2] + (
        LayerFacts(f.layers[2].name, "FLASH_ATTN", 8, 2 * HEAD, 2 * HEAD),))
    with pytest.raises(UserError, match="same KV heads and head sizes"):
        make_kv_reader(views, f, "kv")


# --------------------------------------------------------------------------- CPU reader


def cpu_views(block_size=32, num_kv_heads=2):
    # The CPU backend accepts only LBHNC (CPUAttentionBackend.supported_kv_cache_layouts).
    return build_views(GPU_LAYOUTS[2], dtype=torch.float32, block_size=block_size, num_kv_heads=num_kv_heads,
                       head_size=HEAD)


def test_cpu_vec_reader_returns_k_per_token_and_v():
    views = cpu_views()
    k_ref, v_ref = fill_as_cpu_vec_kernel(views, HEAD, 32)
    reader = make_kv_reader(views, facts(views, platform="cpu", backend="CPU_ATTN", block_size=32, num_kv_heads=2,
                                         cpu_isa="vec"), "k_unrope")
    assert isinstance(reader, CpuKVReader)
    k, v = reader.gather(torch.tensor([3, 0, 3]))
    assert torch.equal(k, k_ref[[3, 0, 3]]) and torch.equal(v, v_ref[[3, 0, 3]])


@pytest.mark.parametrize("isa", ["amx", "vec16", "neon"])
def test_cpu_isas_other_than_vec_refuse_only_the_per_token_distances(isa):
    views = cpu_views()
    f = facts(views, platform="cpu", backend="CPU_ATTN", block_size=32, num_kv_heads=2, cpu_isa=isa)
    with pytest.raises(UserError, match=f"'{isa}'.*use --distance kv, k or v"):
        make_kv_reader(views, f, "k_unrope")
    for distance in ("kv", "k", "v"):
        assert isinstance(make_kv_reader(views, f, distance), CpuKVReader)


# --------------------------------------------------------------------------- adapter + worker wiring


class _Layer:
    """What ``kv_cache_facts`` reads off vLLM's Attention layer."""

    def __init__(self, head_size=HEAD, num_kv_heads=2, kv_cache_dtype="auto", shares=None):
        self.head_size, self.head_size_v, self.num_kv_heads = head_size, head_size, num_kv_heads
        self.kv_cache_dtype, self.kv_sharing_target_layer_name = kv_cache_dtype, shares

    def get_attn_backend(self):
        return SimpleNamespace(get_name=lambda: "CPU_ATTN")


def fake_vllm_config(views, *, cache_dtype="auto", pp=1, use_mla=False):
    return SimpleNamespace(
        model_config=SimpleNamespace(use_mla=use_mla),
        cache_config=SimpleNamespace(block_size=32, cache_dtype=cache_dtype),
        parallel_config=SimpleNamespace(pipeline_parallel_size=pp, decode_context_parallel_size=1),
    )


@pytest.fixture
def fake_layers(monkeypatch):
    """Attention layers as vLLM's forward context would list them; the host ISA simulated."""
    import vllm.config

    monkeypatch.setattr(adapter, "platform_name", lambda: "cpu")  # also on a GPU runner
    layers: dict[str, _Layer] = {}
    monkeypatch.setattr(vllm.config, "get_layers_from_vllm_config",
                        lambda cfg, cls, names=None: {n: layers[n] for n in names if n in layers})
    return layers


@pytest.mark.parametrize("isa, ok", [("vec", True), ("amx", False)])
def test_adapter_reads_the_host_isa_for_the_cpu_reader(fake_layers, monkeypatch, isa, ok):
    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda dtype, block_size, head_size: isa)
    views = cpu_views()
    fake_layers.update({n: _Layer() for n in views})
    cfg = fake_vllm_config(views)
    if ok:
        assert adapter.make_kv_reader(views, cfg, "k_unrope").k_transposed
    else:
        with pytest.raises(UserError, match="'amx'"):
            adapter.make_kv_reader(views, cfg, "k_unrope")


def test_adapter_sees_a_quantized_kv_cache_dtype(fake_layers, monkeypatch):
    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda *a: "vec")
    views = cpu_views()
    fake_layers.update({n: _Layer() for n in views})
    with pytest.raises(UserError, match="quantized"):
        adapter.make_kv_reader(views, fake_vllm_config(views, cache_dtype="fp8_e4m3"), "kv")
    fake_layers[next(iter(views))].kv_cache_dtype = "fp8"  # one layer quantized is enough
    with pytest.raises(UserError, match="quantized"):
        adapter.make_kv_reader(views, fake_vllm_config(views), "kv")


@pytest.mark.parametrize("policy", ["dense", "random"])
def test_dense_and_random_never_build_a_reader(fake_layers, monkeypatch, policy):
    # A host where the reader would refuse: 'amx' ISA with k_unrope, and an fp8 cache.
    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda *a: "amx")
    views = cpu_views()
    fake_layers.update({n: _Layer(kv_cache_dtype="fp8") for n in views})
    side = WorkerSide(MemShareConfig(policy=policy, distance="k_unrope"))
    side.register_kv_caches(views, fake_vllm_config(views, cache_dtype="fp8"))
    assert side.reader is None and side.stage2 is None
    with pytest.raises(UserError, match="quantized"):
        WorkerSide(MemShareConfig(policy="memshare")).register_kv_caches(views, fake_vllm_config(views, cache_dtype="fp8"))


def test_pipeline_parallel_is_refused_for_sharing_policies_only(fake_layers, monkeypatch):
    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda *a: "vec")
    views = cpu_views()
    fake_layers.update({n: _Layer() for n in views})
    for policy in ("random", "memshare"):
        with pytest.raises(UserError, match="pipeline parallelism"):
            WorkerSide(MemShareConfig(policy=policy)).register_kv_caches(views, fake_vllm_config(views, pp=2))
    WorkerSide(MemShareConfig(policy="dense")).register_kv_caches(views, fake_vllm_config(views, pp=2))


def test_mla_models_are_refused_by_the_adapter(fake_layers):
    views = cpu_views()
    with pytest.raises(UserError, match="MLA"):
        adapter.make_kv_reader(views, fake_vllm_config(views, use_mla=True), "kv")


def test_worker_side_measures_a_step_and_hands_the_sums_over_after(fake_layers, monkeypatch):
    from memshare.core.stage2 import stage2_partials
    from memshare.engine.messages import MemShareMeta, Stage2Job

    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda *a: "vec")
    views = cpu_views()
    k_ref, v_ref = fill_as_cpu_vec_kernel(views, HEAD, 32)
    fake_layers.update({n: _Layer() for n in views})
    side = WorkerSide(MemShareConfig(policy="memshare", distance="kv"))
    side.register_kv_caches(views, fake_vllm_config(views))
    side.handle(MemShareMeta(jobs=[Stage2Job(9, 1, 1, [4, 2], [4, 2])]))
    out = side.take_results()
    want = stage2_partials(k_ref[1], v_ref[1], k_ref[[4, 2]], v_ref[[4, 2]], distance="kv").sums
    torch.testing.assert_close(torch.tensor(out.partials[9]), want)
    assert out.stage2_s > 0 and side.take_results() is None


def test_a_reconfigured_worker_side_measures_like_a_fresh_one(fake_layers, monkeypatch):
    # One engine serves a dense run, then a memshare run, then dense again (memshare.engine.session).
    from memshare.engine.messages import MemShareMeta, Stage2Job

    monkeypatch.setattr(adapter, "cpu_attention_isa", lambda *a: "vec")
    views = cpu_views()
    fill_as_cpu_vec_kernel(views, HEAD, 32)
    fake_layers.update({n: _Layer() for n in views})
    job = MemShareMeta(jobs=[Stage2Job(3, 1, 1, [4, 2], [4, 2])])
    fresh = WorkerSide(MemShareConfig(policy="memshare", distance="kv"))
    fresh.register_kv_caches(views, fake_vllm_config(views))
    fresh.handle(job)
    reused = WorkerSide(MemShareConfig(policy="dense"))
    reused.register_kv_caches(views, fake_vllm_config(views))
    assert reused.reader is None and reused.stage2 is None
    reused.reconfigure(MemShareConfig(policy="memshare", distance="kv"))
    reused.handle(job)
    assert reused.take_results().partials == fresh.take_results().partials
    reused.reconfigure(MemShareConfig(policy="dense"))
    assert reused.reader is None and reused.stage2 is None
    with pytest.raises(UserError, match="pipeline parallelism"):  # every reconfigure re-checks the layout
        side = WorkerSide(MemShareConfig(policy="dense"))
        side.register_kv_caches(views, fake_vllm_config(views, pp=2))
        side.reconfigure(MemShareConfig(policy="memshare"))
