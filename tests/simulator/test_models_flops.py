"""Parameter counts and FLOPs against published figures (sources and tolerances inline)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import ScenarioError
from simulator.model.flops import (
    attention_flops_per_token,
    hardware_flops_per_token,
    model_flops_per_token,
    param_flops_per_token,
    recomputed_flops_per_token,
    train_flops,
)
from simulator.model.shapes import PRESETS, ModelSpec, get_preset

# (preset, published total params, active params, relative tolerance, source)
PUBLISHED = [
    ("gpt3-175b", 175e9, None, 0.01, "Brown et al. 2020 Table 2.1 (175.0B; Megatron counts 174.6B)"),
    ("llama2-7b", 6.738e9, None, 0.001, "HF meta-llama/Llama-2-7b: 6,738,415,616"),
    ("llama2-13b", 13.016e9, None, 0.001, "HF meta-llama/Llama-2-13b: 13,015,864,320"),
    ("llama2-70b", 68.977e9, None, 0.001, "HF meta-llama/Llama-2-70b: 68,976,648,192"),
    ("llama3-8b", 8.030e9, None, 0.001, "HF meta-llama/Meta-Llama-3-8B: 8,030,261,248"),
    ("llama3-70b", 70.554e9, None, 0.001, "HF meta-llama/Meta-Llama-3-70B: 70,553,706,496"),
    ("llama3-405b", 405.85e9, None, 0.002, "Dubey et al. 2024: 405B (HF: 405,853,388,800)"),
    ("mixtral-8x7b", 46.7e9, 12.9e9, 0.005, "Jiang et al. 2024 sec. 2: 47B total, 13B active"),
    ("deepseek-v3", 671e9, 37e9, 0.02, "DeepSeek-V3 report: 671B total, 37B active (MTP excluded)"),
    ("bloom-176b", 176.247e9, None, 0.001, "BigScience 2022: 176,247M"),
    ("megatron-145.6b", 145.6e9, None, 0.002, "Narayanan et al. 2021 Table 1"),
    ("megatron-529.6b", 529.6e9, None, 0.002, "Narayanan et al. 2021 Table 1"),
]


@pytest.mark.parametrize("name,total,active,tol,source", PUBLISHED)
def test_preset_params_match_published(name, total, active, tol, source):
    m = get_preset(name)
    assert m.params_total() == pytest.approx(total, rel=tol), source
    assert m.params_active() == pytest.approx(active or total, rel=max(tol, 0.005) if active else tol), source


def test_llama2_7b_exact_count():
    # HF config: 32 x (4*4096^2 + 3*4096*11008 + 2*4096) + 2*32000*4096 + 4096 = 6,738,415,616
    assert get_preset("llama2-7b").params_total() == 6_738_415_616


def test_gpt3_flops_against_brown_2020():
    """Brown et al. 2020 Table D.1: 3.14e23 FLOPs for 175B on 300B tokens (6ND, no attention)."""
    m = get_preset("gpt3-175b")
    six_nd = param_flops_per_token(m) * 300e9
    assert six_nd == pytest.approx(3.14e23, rel=0.02)
    # The PaLM convention adds attention: 12 * 96 * 12288 * 2048 per token, +2.8% on GPT-3.
    assert attention_flops_per_token(m) == 12 * 96 * 12288 * 2048
    assert train_flops(m, 300e9) == pytest.approx(six_nd + 12 * 96 * 12288 * 2048 * 300e9)
    assert train_flops(m, 300e9) / 3.14e23 == pytest.approx(1.029, abs=0.005)


def test_palm_convention_hand_computed():
    m = ModelSpec("t", layers=2, d_model=64, heads=4, kv_heads=4, ffn_dim=256, vocab=100, seq_len=32,
                  gated_mlp=False)
    n_matmul = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 100 * 64
    assert m.matmul_params_active() == n_matmul
    assert model_flops_per_token(m) == 6 * n_matmul + 12 * 2 * 64 * 32


def test_recompute_hardware_flops():
    m = get_preset("llama3-8b")
    base = model_flops_per_token(m)
    assert hardware_flops_per_token(m, "none") == base
    assert hardware_flops_per_token(m, "full") == pytest.approx(base * 4 / 3)
    assert hardware_flops_per_token(m, "selective") == pytest.approx(base + attention_flops_per_token(m) / 3)


def test_mlp_and_offload_recompute_flops_by_hand():
    """Llama 2 7B (32 layers, d 4096, SwiGLU 11,008, 4k tokens): the attention core's forward,
    4 x 32 x 4096 x 4096 = 2,147,483,648 per token, for both; "mlp" re-runs the MLP (3 x 4096 x 11,008
    weights x 32 layers, 2 FLOPs each: 8,657,043,456); "offload" the output projection (4096^2 x 32)
    and the gate and up projections (2 x 4096 x 11,008 x 32): 2 x 3,422,552,064."""
    m = get_preset("llama2-7b")
    core = 4 * 32 * 4096 * 4096
    assert core == 2_147_483_648 == attention_flops_per_token(m) / 3
    assert recomputed_flops_per_token(m, "mlp") == core + 2 * 3 * 4096 * 11008 * 32 == core + 8_657_043_456
    assert recomputed_flops_per_token(m, "offload") == core + 2 * (4096 * 4096 + 2 * 4096 * 11008) * 32
    assert recomputed_flops_per_token(m, "none") == 0
    with pytest.raises(ValueError, match="recompute: expected one of none, selective, full, mlp, offload"):
        recomputed_flops_per_token(m, "partial")


def test_moe_flops_use_active_params():
    m = get_preset("mixtral-8x7b")
    assert param_flops_per_token(m) == 6 * m.matmul_params_active()
    assert m.matmul_params_active() < m.params_total() / 3


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=5e7, max_value=2e12))
def test_from_params_is_close(n):
    m = ModelSpec.from_params(n, vocab=32000)
    # the closest standard shape: within 35% for tiny models (vocab-dominated), 10% above 1B
    assert m.params_total() == pytest.approx(n, rel=0.05 if n > 1e9 else 0.35)


@pytest.mark.parametrize("kwargs,field", [
    ({"layers": 0}, "model.layers"), ({"heads": 6, "kv_heads": 6}, "model.heads"), ({"kv_heads": 3}, "model.kv_heads"),
    ({"experts": 8, "moe_layers": 2, "experts_per_token": 9, "expert_ffn_dim": 64}, "model.experts_per_token"),
])
def test_bad_shapes_name_the_field(kwargs, field):
    base = dict(name="x", layers=2, d_model=64, heads=4, kv_heads=4, ffn_dim=256, vocab=100, seq_len=32)
    with pytest.raises(ScenarioError, match=field):
        ModelSpec(**{**base, **kwargs})


def test_unknown_preset_suggests():
    with pytest.raises(ScenarioError, match="llama3-70b"):
        get_preset("llama3-70")
    assert "llama3-70b" in PRESETS
