"""Weight-only int8 / int4 quantization of the linear layers, from one layer up to the engine."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.models import random_prompts

from inference import LLM, EngineConfig, InvalidParameterError, SamplingParams
from inference.layers.linear import Linear
from inference.layers.quantized import (
    Int4Linear,
    Int8Linear,
    dequantize_int4,
    dequantize_int8,
    quantize_int4,
    quantize_int8,
)
from inference.quantization import quantize_linear, quantize_model, weight_bytes

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def layer_inputs(n: int = 96, k: int = 256, seed: int = 0, device: str = "cpu"):
    """A weight [n, k] with LLM-like scale, a small bias [n] and activations [7, k]."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * 0.05
    b = torch.randn(n, generator=g) * 0.1
    x = torch.randn(7, k, generator=g)
    return w.to(device), b.to(device), x.to(device)


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.float() - ref.float()).norm() / ref.float().norm()).item()


@pytest.mark.parametrize("device", DEVICES)
def test_int8_layer_computes_its_dequantized_weight_and_stays_close_to_fp32(device):
    w, b, x = layer_inputs(device=device)
    layer = Int8Linear.from_weight(w, b)
    q, scales = quantize_int8(w)
    assert q.dtype == torch.int8 and q.abs().max() <= 127 and tuple(scales.shape) == (96,)
    # the kernel sees bf16 activations; against that input the only difference left is bf16 output rounding
    ref = F.linear(x.to(torch.bfloat16).float(), dequantize_int8(q, scales), b)
    y = layer(x)
    assert y.dtype == x.dtype and y.shape == (7, 96)
    assert (y - ref).abs().max() <= 1e-2 * ref.abs().max()
    assert relative_error(y, F.linear(x, w, b)) < 0.02


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_int4_layer_computes_its_dequantized_weight_for_every_group_size(group_size, device):
    w, b, x = layer_inputs(device=device)
    layer = Int4Linear.from_weight(w, group_size, b)
    q, scales_and_zeros = quantize_int4(w, group_size)
    assert q.min() >= 0 and q.max() <= 15 and tuple(scales_and_zeros.shape) == (256 // group_size, 96, 2)
    ref = F.linear(x.to(torch.bfloat16).float(), dequantize_int4(q, scales_and_zeros, group_size), b)
    y = layer(x)
    assert y.dtype == x.dtype and y.shape == (7, 96)
    assert (y - ref).abs().max() <= 1e-2 * ref.abs().max()
    # 16 levels per group of Gaussian weights: ~8-10% weight error, less on the output
    assert relative_error(y, F.linear(x, w, b)) < 0.15


def test_int4_represents_weights_on_a_q4_1_grid_almost_exactly():
    # the embedded model comes from a Q4_1 GGUF: groups of 32 with 16 levels between min and max
    g = torch.Generator().manual_seed(1)
    levels = torch.randint(0, 16, (64, 128), generator=g).float()
    lo, step = torch.rand(64, 4, 1, generator=g) - 0.5, torch.rand(64, 4, 1, generator=g) * 0.01 + 0.001
    w = (lo + step * levels.view(64, 4, 32)).view(64, 128)
    w_dq = dequantize_int4(*quantize_int4(w, 32), 32)
    assert relative_error(w_dq, w) < 0.01  # only the bf16 rounding of scale and zero point is left


def test_quantized_layers_keep_the_shape_of_batched_inputs():
    w, b, _ = layer_inputs()
    x = torch.randn(2, 3, 256)
    for layer in (Int8Linear.from_weight(w, b), Int4Linear.from_weight(w, 64, b)):
        assert layer(x).shape == (2, 3, 96)
        assert (layer.in_features, layer.out_features) == (256, 96)


def test_quantize_linear_replaces_our_linear_with_the_same_interface():
    w, b, x = layer_inputs()
    linear = Linear(256, 96, bias=True)
    linear.load(w, b)
    for method, cls in (("int8", Int8Linear), ("int4", Int4Linear)):
        q = quantize_linear(linear, method, 32)
        assert isinstance(q, cls) and (q.in_features, q.out_features) == (256, 96)
        assert relative_error(q(x), linear(x)) < 0.15


@pytest.mark.parametrize("group_size", [16, 48, 256])
def test_int4_refuses_group_sizes_other_than_32_64_128(group_size):
    with pytest.raises(InvalidParameterError, match="quantization_group_size"):
        quantize_int4(torch.randn(32, 512), group_size)
    with pytest.raises(InvalidParameterError, match="quantization_group_size"):
        EngineConfig(quantization="int4", quantization_group_size=group_size)


def test_int4_refuses_a_group_size_that_does_not_divide_the_layer_naming_its_shape():
    # SmolLM2's hidden size 576 allows groups of 32 or 64, not 128
    linear = Linear(576, 1536)
    with pytest.raises(InvalidParameterError, match=r"\[1536, 576\]") as e:
        quantize_linear(linear, "int4", 128, name="layers.3.mlp.gate_up_proj")
    assert "layers.3.mlp.gate_up_proj" in str(e.value) and "[32, 64]" in str(e.value)


def test_an_engine_refuses_int4_groups_its_model_cannot_use_before_serving(tiny_llama, tmp_path):
    with pytest.raises(InvalidParameterError, match=r"self_attn\.qkv_proj has weight \[out, in\] = \[128, 64\]"):
        LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int4", quantization_group_size=128)


def test_engine_config_refuses_unknown_quantization_methods():
    with pytest.raises(InvalidParameterError, match="quantization"):
        EngineConfig(quantization="int3")
    assert EngineConfig(quantization="none").quantization is None


def test_quantize_model_rewrites_every_linear_but_keeps_embedding_and_lm_head(tiny_llama, tmp_path):
    llm = LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8")
    model = llm.engine.model
    assert not any(isinstance(m, Linear) for name, m in model.named_modules() if name != "lm_head")
    assert sum(isinstance(m, Int8Linear) for m in model.modules()) == 4 * model.cfg.num_layers
    assert isinstance(model.lm_head, Linear) and model.lm_head.weight_t.dtype == torch.float32
    assert model.embed_tokens.weight.dtype == torch.float32
    quantize_model(model, "int8", include_lm_head=True)
    assert isinstance(model.lm_head, Int8Linear)


def test_quantized_weights_take_less_memory_and_the_engine_reports_it(tiny_models, tmp_path):
    path = tiny_models["llama-mqa-untied"]
    engines = {q: LLM(path, data_dir=tmp_path, kv_cache_memory="16MiB", quantization=q).engine
               for q in (None, "int8", "int4")}
    sizes = {q: e.weight_bytes for q, e in engines.items()}
    assert sizes["int4"] < sizes["int8"] < sizes[None]
    # decoder linears: 1 byte per weight instead of 4 (plus a scale per channel); embedding and LM head stay fp32
    linears = sum(m.weight_t.numel() for name, m in engines[None].model.named_modules()
                  if isinstance(m, Linear) and name != "lm_head")
    assert sizes[None] - sizes["int8"] == pytest.approx(3 * linears, rel=0.05)


def test_weight_bytes_counts_quantized_buffers():
    w, b, _ = layer_inputs()
    layer = Int8Linear.from_weight(w, b)
    assert weight_bytes(layer) == 96 * 256 + 96 * 2 + 96 * 4  # int8 weight, bf16 scales, fp32 bias


def agreement(outs: list[list[int]], refs: list[list[int]]) -> tuple[float, float]:
    """(share of prompts whose first token agrees, share of all positions that agree)."""
    first = sum(o[0] == r[0] for o, r in zip(outs, refs, strict=True)) / len(refs)
    tokens = sum(a == b for o, r in zip(outs, refs, strict=True) for a, b in zip(o, r, strict=True))
    return first, tokens / sum(len(r) for r in refs)


def test_int8_greedy_tokens_mostly_agree_with_the_unquantized_engine(tiny_llama, tmp_path):
    # The random tiny models are chaotic (running them in bf16 instead of fp32 alone flips ~6% of first
    # tokens and, after the first flip, most of what follows), so agreement is judged on the first token
    # of many prompts, and loosely on the rest.
    prompts = random_prompts(32, 3, 70, seed=11)
    params = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
    ref = LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="16MiB").generate(prompts, params)
    outs = LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8").generate(prompts, params)
    assert [len(o.token_ids) for o in outs] == [len(r.token_ids) for r in ref] == [8] * 32
    assert [o.prompt_token_ids for o in outs] == prompts
    first, tokens = agreement([o.token_ids for o in outs], [r.token_ids for r in ref])
    assert first >= 0.8 and tokens >= 0.5, (first, tokens)


@pytest.mark.parametrize("variant", ["llama-gqa-tied", "qwen2-gqa-bias"])
def test_int4_engine_generates_full_length_outputs(tiny_models, variant, tmp_path):
    prompts = random_prompts(4, 3, 40, seed=12)
    llm = LLM(tiny_models[variant], data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int4",
              quantization_group_size=32)
    outs = llm.generate(prompts, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True))
    assert [len(o.token_ids) for o in outs] == [12] * 4
    assert all(o.finish_reason == "length" and all(0 <= t < 512 for t in o.token_ids) for o in outs)
    assert llm.engine.block_manager.num_free_blocks == llm.engine.block_manager.num_blocks - 1


def test_quantized_qwen2_keeps_its_qkv_bias(tiny_models, tmp_path):
    llm = LLM(tiny_models["qwen2-gqa-bias"], data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8")
    qkv = llm.engine.model.layers[0].self_attn.qkv_proj
    assert isinstance(qkv, Int8Linear) and qkv.bias is not None and qkv.bias.abs().sum() > 0


def test_the_server_reports_quantization_on_the_model_card_and_in_metrics(tiny_llama, tmp_path):
    from fastapi.testclient import TestClient

    from inference.server.app import build_app
    from inference.server.state import ServerConfig, ServerState

    engine = EngineConfig(model=tiny_llama, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8",
                          kv_cache_dtype="int8")
    state = ServerState(ServerConfig(engine=engine, served_model_name="tiny", embedding_model=None))
    state.load()
    assert state.ready, state.load_error
    with TestClient(build_app(state, load_in_background=False)) as client:
        card = client.get("/v1/models").json()["data"][0]
        assert (card["id"], card["quantization"], card["kv_cache_dtype"]) == ("tiny", "int8", "int8")
        metrics = client.get("/metrics").text
    assert ('curbside_model_info{device="cpu",dtype="float32",kv_cache_dtype="int8",model_name="tiny",'
            'quantization="int8"} 1.0') in metrics
