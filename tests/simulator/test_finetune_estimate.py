"""Fine-tuning through estimate(): the [finetune] section (full or LoRA) in the plan search.

Hand-computed values for Llama 2 7B (32 layers, d 4096, MHA, ffn 11008, vocab 32000, T 4096):
N_lora(r=16, q k v o) = 32 x 4 x 16 x (4096 + 4096) = 16,777,216 (tests/simulator/test_workloads.py).
"""

import pytest

from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.estimate import estimate
from simulator.model.flops import attention_flops_per_token
from simulator.model.shapes import get_preset
from simulator.scenario import scenario_from_dict

LLAMA2_7B = get_preset("llama2-7b")
N_LORA = 16_777_216


def scenario(method="lora", devices=8, preset="llama2-7b", plan=None, **finetune):
    return scenario_from_dict({
        "model": {"preset": preset, "seq_len": 4096},
        "training": {"tokens": 1e9, "global_batch_tokens": 128 * 4096},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": devices},
        "parallelism": plan or {},
        "finetune": {"method": method, **finetune}})


def test_lora_flops_and_trained_params_hand_computed():
    est = estimate(scenario())
    n = LLAMA2_7B.matmul_params_active()
    assert est.trained_params == N_LORA
    assert est.finetune_method == "lora"
    # 4 N_matmul + 6 N_lora + 12 L d T (Hu et al. 2021; finetune.py)
    assert est.model_flops_per_token == pytest.approx(4 * n + 6 * N_LORA + attention_flops_per_token(LLAMA2_7B), rel=1e-12)
    assert est.model_flops_per_token == pytest.approx(32.97e9, rel=1e-3)
    assert est.train_flops == pytest.approx(1e9 * est.model_flops_per_token, rel=1e-12)


def test_lora_memory_on_a_fixed_plan():
    # dp 8, ZeRO-2, no pipeline: weights 2 B x all params + 2 B x adapters; gradients 4 B and
    # optimizer 12 B x adapters, both sharded over the 8 DP ranks
    plan = {"tp": 1, "pp": 1, "cp": 1, "zero": 2, "microbatch": 1, "recompute": "full"}
    est = estimate(scenario(plan=plan))
    p = LLAMA2_7B.params_total()
    assert est.memory_weights_gb == pytest.approx((2 * p + 2 * N_LORA) / 1e9, rel=1e-9)
    assert est.memory_gradients_gb == pytest.approx(4 * N_LORA / 8 / 1e9, rel=1e-9)
    assert est.memory_optimizer_gb == pytest.approx(12 * N_LORA / 8 / 1e9, rel=1e-9)
    full = estimate(scenario("full", plan=plan))
    assert full.memory_optimizer_gb == pytest.approx(12 * p / 8 / 1e9, rel=1e-9)
    assert est.memory_gb_per_device < full.memory_gb_per_device - 13  # (4 + 12) B x 6.7B / 8 ranks saved


def test_qlora_base_bytes():
    plan = {"tp": 1, "pp": 1, "cp": 1, "zero": 2, "microbatch": 1, "recompute": "full"}
    bf16 = estimate(scenario(plan=plan))
    q4 = estimate(scenario(plan=plan, base_weight_bytes=0.5))
    p = LLAMA2_7B.params_total()
    assert bf16.memory_weights_gb - q4.memory_weights_gb == pytest.approx(1.5 * p / 1e9, rel=1e-9)


def test_lora_step_faster_than_full_by_about_the_flop_ratio():
    plan = {"tp": 1, "pp": 1, "cp": 1, "zero": 2, "microbatch": 1, "recompute": "selective"}
    lora, full = estimate(scenario(plan=plan)), estimate(scenario("full", plan=plan))
    flop_ratio = lora.model_flops_per_token / full.model_flops_per_token  # 0.715
    time_ratio = lora.step_time_s / full.step_time_s
    assert time_ratio < 1
    assert time_ratio == pytest.approx(flop_ratio, abs=0.05)
    # Gradient traffic: adapters only
    dp = {b["component"]: b["seconds"] for b in lora.breakdown}["dp_comm"]
    dp_full = {b["component"]: b["seconds"] for b in full.breakdown}["dp_comm"]
    assert dp < dp_full / 100


def test_70b_lora_fits_where_full_finetuning_does_not():
    # 70B full fine-tuning needs ~18 B x 70.6B = 1.27 TB of states: more than 8 x 80 GB.
    with pytest.raises(InfeasiblePlanError, match="no plan fits"):
        estimate(scenario("full", preset="llama3-70b"))
    est = estimate(scenario(preset="llama3-70b"))
    assert est.memory_gb_per_device <= 80


@pytest.mark.parametrize("finetune, match", [
    ({"method": "lora", "lora_targets": ["q", "qq"]}, "finetune.lora_targets: unknown target 'qq'"),
    ({"method": "lora", "lora_rank": 0}, "finetune.lora_rank"),
    ({"method": "sft"}, "finetune.method"),
    ({"method": "lora", "base_weight_bytes": -1}, "finetune.base_weight_bytes"),
    ({"method": "lora", "lora_targets": "all", "extra": 1}, "finetune.extra: unknown key"),
])
def test_bad_finetune_input(finetune, match):
    with pytest.raises(ScenarioError, match=match):
        scenario_from_dict({"model": {"preset": "llama2-7b"}, "training": {"tokens": 1e9},
                            "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 8}, "finetune": finetune})


def test_lora_on_moe_mlp_rejected():
    with pytest.raises(ScenarioError, match="MoE"):
        scenario_from_dict({"model": {"preset": "mixtral-8x7b"}, "training": {"tokens": 1e9},
                            "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 8},
                            "finetune": {"method": "lora", "lora_targets": "all"}})


def test_full_training_recompute_flops_match_the_projects_convention():
    # finetune.recompute_flops_per_token generalises flops.hardware_flops_per_token: equal for FULL
    from simulator.model.finetune import FULL, flops_per_token, recompute_flops_per_token
    from simulator.model.flops import hardware_flops_per_token

    for preset in ("llama2-7b", "gpt3-175b", "mixtral-8x7b"):
        m = get_preset(preset)
        for rc, name in enumerate(("none", "selective", "full", "mlp", "offload")):
            ours = flops_per_token(m, FULL) + float(recompute_flops_per_token(m, FULL, rc))
            assert ours == pytest.approx(hardware_flops_per_token(m, name), rel=1e-12), (preset, name)
