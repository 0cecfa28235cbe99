"""RLHF / RL post-training through estimate(): phases, hand-computed passes, published references."""

import pytest

from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.estimate import CONTRACT_KEYS, estimate
from simulator.model.flops import model_flops_per_token
from simulator.execution.inference import prefill_flops
from simulator.model.shapes import get_preset
from simulator.scenario import scenario_from_dict

PHASES = ("rollout_generation", "scoring_forward", "policy_update", "critic_update")


def rlhf(actor="opt-13b", devices=8, acc="nvidia-a100-sxm-80gb", **rl):
    # DeepSpeed-Chat step 3 (Yao et al. 2023, arXiv 2308.01320; blogs/deepspeed-chat/README.md):
    # 131.9k queries of 256 tokens, 256-token answers, 1024 query-answer pairs per step, OPT-350M
    # reward and critic, fp16; software of 2023 (no FlashAttention, no comm overlap); generation
    # batch 16 per GPU (DeepSpeed-Chat's default per_device_generation_batch_size).
    spec = {"algorithm": "ppo", "prompts": 131_900, "prompt_tokens": 256, "response_tokens": 256,
            "reward_model": "opt-350m", "generation_batch_per_device": 16, **rl}
    return scenario_from_dict({"model": {"preset": actor},
                               "training": {"global_batch_tokens": 1024 * 512, "precision": "fp16"},
                               "cluster": {"accelerator": acc, "devices": devices},
                               "parallelism": {"flash_attention": False, "overlap_comm": False},
                               "reliability": {"failures_per_device_hour": 0.0},
                               "pricing": {"usd_per_device_hour": 2.0}, "rlhf": spec})


def phases(est):
    return {b["component"]: b for b in est.breakdown}


def test_contract_keys_and_phases_sum():
    est = estimate(rlhf())
    assert all(k in est.to_dict() for k in CONTRACT_KEYS)
    p = phases(est)
    compute_s = sum(p[k]["seconds"] for k in PHASES)
    assert est.wall_clock_days * 86400 == pytest.approx(compute_s / est.goodput, rel=1e-12)
    assert est.goodput == 1.0  # failures off
    assert sum(b["energy_kwh"] for b in est.breakdown) * 1.0 <= est.energy_mwh * 1e3 * (1 + 1e-9)
    assert sum(b["cost_usd"] for b in est.breakdown) == pytest.approx(est.cost_usd, rel=1e-9)
    assert est.cost_usd == pytest.approx(est.device_hours * 2.0, rel=1e-9)


def test_scoring_and_critic_hand_computed():
    est = estimate(rlhf())
    p = phases(est)
    actor, reward = get_preset("opt-13b").with_seq_len(512), get_preset("opt-350m").with_seq_len(512)
    seqs = 131_900
    model_fps = p["policy_update"]["seconds"] and (seqs * 512 * model_flops_per_token(actor)) / (8 * p["policy_update"]["seconds"])
    # reference + policy (old log-probs) + reward + critic forward passes over 512 tokens
    flops = seqs * (2 * prefill_flops(actor, 512) + 2 * prefill_flops(reward, 512))
    assert p["scoring_forward"]["seconds"] == pytest.approx(flops / (8 * model_fps), rel=1e-9)
    critic = seqs * 512 * model_flops_per_token(reward)
    assert p["critic_update"]["seconds"] == pytest.approx(critic / (8 * model_fps), rel=1e-9)
    assert est.tokens == seqs * 512


def test_generation_flop_share_matches_deepspeed_chat():
    # DeepSpeed-Chat blog: "the generation phase comprises approximately 20% of the total computation".
    est = estimate(rlhf())
    assert 0.12 < est.rlhf_generation_flops_share < 0.25
    # ... "despite having a small proportion, the former can take a large portion of the e2e time":
    # decode is memory-bound, so its share of time exceeds its share of FLOPs.
    assert est.rlhf_generation_share > 2 * est.rlhf_generation_flops_share


@pytest.mark.parametrize("actor, devices, reported_h", [
    ("opt-6.7b", 8, 4.1), ("opt-13b", 8, 9.0), ("opt-30b", 8, 18.0),  # Table 1, 8 x A100-80GB
    ("opt-13b", 64, 1.25), ("opt-66b", 64, 7.5),  # Table 2, 64 x A100-80GB
])
def test_deepspeed_chat_step3_times_bound(actor, devices, reported_h):
    # The model prices software that overlaps nothing but runs every kernel at the parallelism model's
    # efficiency; DeepSpeed-Chat 2023 was slower than that: OpenRLHF's README measures it 1.8-2.5x
    # slower than OpenRLHF on the same GPUs (e.g. 7B: 855 s vs 471 s per 1024 prompts). So the model
    # must be faster than the report, by a factor between 1.5 and 4 (measured when written: 2.4-3.7x).
    predicted_h = estimate(rlhf(actor, devices)).wall_clock_days * 24
    assert reported_h / 4.0 < predicted_h < reported_h / 1.5


def test_grpo_and_dpo():
    grpo = estimate(rlhf(algorithm="grpo", samples_per_prompt=8, prompts=10_000))
    assert grpo.rlhf_sequences == 80_000 and phases(grpo)["critic_update"]["seconds"] == 0.0
    dpo = estimate(rlhf(algorithm="dpo", prompts=10_000))
    p = phases(dpo)
    assert dpo.rlhf_sequences == 20_000  # chosen + rejected
    assert p["rollout_generation"]["seconds"] == 0.0 and p["critic_update"]["seconds"] == 0.0
    # DPO scoring = the reference model's forward only
    actor = get_preset("opt-13b").with_seq_len(512)
    fps = 20_000 * 512 * model_flops_per_token(actor) / (8 * p["policy_update"]["seconds"])
    assert p["scoring_forward"]["seconds"] == pytest.approx(20_000 * prefill_flops(actor, 512) / (8 * fps), rel=1e-9)


def test_more_epochs_cost_more():
    one, two = estimate(rlhf(epochs=1)), estimate(rlhf(epochs=2))
    assert phases(two)["policy_update"]["seconds"] == pytest.approx(2 * phases(one)["policy_update"]["seconds"], rel=0.02)
    assert phases(two)["rollout_generation"]["seconds"] == pytest.approx(phases(one)["rollout_generation"]["seconds"])
    assert two.cost_usd > one.cost_usd


@pytest.mark.parametrize("change, match", [
    ({"training": {"tokens": 1e9}}, "training.tokens: with \\[rlhf\\]"),
    ({"rlhf": {"prompts": 100, "reward_model": "opt-13x"}}, "rlhf.reward_model: .*unknown preset"),
    ({"rlhf": {"prompts": 0}}, "rlhf.prompts"),
    ({"rlhf": {"prompts": 100, "algorithm": "reinforce"}}, "rlhf.algorithm"),
    ({"rlhf": {"prompts": 100, "generation_dtype": "int3"}}, "rlhf.generation_dtype: unknown"),
    ({"finetune": {"method": "lora"}}, "finetune.method: LoRA inside \\[rlhf\\]"),
])
def test_bad_rlhf_input(change, match):
    base = {"model": {"preset": "opt-1.3b"}, "training": {}, "cluster": {"accelerator": "nvidia-a100-sxm-80gb",
            "devices": 8}, "rlhf": {"prompts": 100}}
    for k, v in change.items():
        base[k] = {**base.get(k, {}), **v}
    with pytest.raises(ScenarioError, match=match):
        estimate(scenario_from_dict(base))


def test_too_small_cluster_says_why():
    with pytest.raises(InfeasiblePlanError, match="no plan fits in 80 GiB .*over by"):
        estimate(scenario_from_dict({"model": {"preset": "llama3-70b"}, "training": {},
                                     "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 1},
                                     "rlhf": {"prompts": 100}}))


def test_rollouts_use_the_calibration_profile(tmp_path):
    # A profile whose measured HBM efficiency is half the prior's 0.9: memory-bound decode slows
    # by close to 2x (the NCCL latency and kernel gaps do not change), the policy update much less.
    prof = tmp_path / "h100.toml"
    prof.write_text('accelerator = "nvidia-h100-sxm-80gb"\nsource = "test profile"\nidle_w = 100.0\n'
                    'dynamic_w_per_tflops = 0.6\n[perf]\nmem_bw_eff = 0.45\n')

    def run(profile=None):
        sc = {"model": {"preset": "llama3-8b"}, "training": {"global_batch_tokens": 2**21},
              "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 64},
              "rlhf": {"algorithm": "grpo", "prompts": 10_000, "prompt_tokens": 512, "response_tokens": 1024}}
        if profile:
            sc["efficiency"] = {"profile": str(profile)}
        return phases(estimate(scenario_from_dict(sc)))

    base, slow = run(), run(prof)
    ratio = slow["rollout_generation"]["seconds"] / base["rollout_generation"]["seconds"]
    assert 1.3 < ratio < 2.0
