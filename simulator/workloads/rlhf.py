"""Post-training with RL or preference optimisation: rollouts, scoring passes and updates.

A scenario with an `[rlhf]` section is a sequence of phases on the same devices (colocated, as
DeepSpeed-Chat's Hybrid Engine and OpenRLHF's colocated mode run them), summed:

1. rollout generation (ppo, grpo): every prompt x `samples_per_prompt` responses decoded by the
   policy: continuous-batching throughput of TP replicas (serving.batch_curve, the inference
   roofline), the in-flight batch limited by the KV cache and by the sequences per replica in one
   global batch and by `generation_batch_per_device` x TP (DeepSpeed-Chat's static batches) or
   the engine's 256 sequences (inference.DEFAULT_MAX_BATCH);
2. scoring: forward passes over prompt + response of the reference model (KL penalty), the policy
   (old log-probabilities), the reward model and, for ppo, the critic (values); dpo: the
   reference model only. Forward FLOPs = P (2 N + 4 L d_attn P) per sequence (inference.prefill_flops)
   at the achieved model FLOP/s of the policy update;
3. policy update: training on prompt + response tokens x `epochs` (the ordinary training estimate,
   its plan search, memory check and goodput);
4. critic update (ppo): training FLOPs of the critic on the same tokens at the same FLOP/s.

Wall clock = (sum of phases) / goodput of the policy update's reliability model. Energy per phase:
device power at that phase's achieved FLOP/s (energy roofline), idle power for the failure
overhead, host power throughout, x PUE. Not modelled: re-sharding weights between training and
generation layouts, the training states' memory during generation, asynchronous (off-policy)
pipelines that overlap generation with training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from simulator.footprint import cost, energy
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.model.flops import model_flops_per_token
from simulator.execution.inference import DEFAULT_MAX_BATCH, dtype_bytes, prefill_flops
from simulator.model.shapes import ModelSpec, get_preset
from simulator.result import Estimate, uncertainty_bands
from simulator.workloads.serving import batch_curve, choose_tp, max_batch
from simulator.workloads.training import estimate_training, prelude


def _aux_model(spec: str | float | None, policy: ModelSpec, field: str) -> ModelSpec:
    if spec is None:
        return policy
    if isinstance(spec, str):
        try:
            return get_preset(spec).with_seq_len(policy.seq_len)
        except ScenarioError as exc:
            raise ScenarioError(f"rlhf.{field}: {exc}") from None
    return ModelSpec.from_params(spec, seq_len=policy.seq_len, field=f"rlhf.{field}")


def _actor(scenario, site):
    """The policy update: a training run over the rollouts' tokens (simulator.workloads.training) at the
    scenario's resolved `site` (the actor's scenario differs only in what the resolve stage ignores)."""
    rl = scenario.rlhf
    seq = rl.prompt_tokens + rl.response_tokens
    trained_tokens = rl.prompts * rl.samples() * seq * rl.epochs
    actor_sc = scenario.model_copy(update={
        "rlhf": None, "uncertainty": type(scenario.uncertainty)(), "model": scenario.model.model_copy(update={"seq_len": seq}),
        "training": scenario.training.model_copy(update={"tokens": trained_tokens})})
    model = actor_sc.model.spec()
    return estimate_training(actor_sc, site, model, prelude(actor_sc, site, model))


def _rollouts(rl, policy: ModelSpec, site, devices: int, global_batch_tokens: float) -> tuple[float, float, str]:
    """Rollout generation (ppo, grpo): (seconds, hardware TFLOP/s per device, note), served by
    replicas of the TP the serving model picks, as many sequences in flight as fit."""
    if rl.algorithm == "dpo":
        return 0.0, 0.0, ""
    seq, dt, sequences = rl.prompt_tokens + rl.response_tokens, rl.generation_dtype, rl.prompts * rl.samples()
    tp = choose_tp(policy, site.acc, seq, dt, dt)
    if devices < tp:
        raise InfeasiblePlanError(f"cluster.devices: generation needs tp = {tp} devices per replica for "
                                  f"{policy.name}; the cluster has {devices}")
    replicas = devices // tp
    per_replica = math.ceil(global_batch_tokens / seq / replicas)
    cap = rl.generation_batch_per_device * tp if rl.generation_batch_per_device else DEFAULT_MAX_BATCH
    batch = max(1, min(max_batch(policy, site.acc, tp, seq, dt, dt), per_replica, cap))
    curve = batch_curve(policy, site.acc, tp, [batch], rl.prompt_tokens, rl.response_tokens, site.perf, dt, dt)
    tok_s = float(curve.tokens_per_s[0]) * replicas
    gen_s = sequences * rl.response_tokens / tok_s
    decode_steps = curve.decode_share * rl.response_tokens  # the prefill emits the first token (serving.py)
    flops_per_seq = (decode_steps * float(curve.decode.flops_per_device[0]) * tp / batch
                     + prefill_flops(policy, rl.prompt_tokens))
    gen_tflops = sequences * flops_per_seq / (devices * gen_s) / 1e12
    return gen_s, gen_tflops, f"rollouts: tp = {tp}, {replicas} replicas, {batch} sequences in flight, {tok_s:,.0f} tokens/s"


def _scoring(rl, policy: ModelSpec, devices: int, model_fps: float) -> tuple[float, float, float, float]:
    """Scoring forward passes (reference; policy and reward outside dpo; critic in ppo) and the critic
    update, at the policy update's achieved model FLOP/s: (score FLOPs, score s, critic FLOPs, critic s)."""
    seq = rl.prompt_tokens + rl.response_tokens
    reward = _aux_model(rl.reward_model, policy, "reward_model")
    critic = _aux_model(rl.critic_model, reward, "critic_model") if rl.algorithm == "ppo" else None
    fwd = [("reference", policy)] + ([] if rl.algorithm == "dpo" else [("policy", policy), ("reward", reward)])
    if critic is not None:
        fwd.append(("critic", critic))
    sequences = rl.prompts * rl.samples()
    score_flops = sequences * sum(prefill_flops(m.with_seq_len(seq), seq) for _, m in fwd)
    trained_tokens = sequences * seq * rl.epochs
    critic_flops = model_flops_per_token(critic.with_seq_len(seq)) * trained_tokens if critic else 0.0
    return score_flops, score_flops / (devices * model_fps), critic_flops, critic_flops / (devices * model_fps)


def _breakdown(phases, phase_kwh: dict, idle_kwh: float, constant_kwh: dict, it_kwh: float, facility_kwh: float,
               overhead_s: float, wall_s: float, capex: float, electricity: float, ci: float,
               embodied_t: float) -> list[dict[str, Any]]:
    """Time, energy, cost and CO2e by phase, then failures, host, network, storage (`constant_kwh`),
    facility, electricity, embodied."""
    rows = [{"component": name, "seconds": s, "energy_kwh": phase_kwh[name],
             "cost_usd": capex * s / wall_s, "co2e_kg": phase_kwh[name] * ci} for name, s, _ in phases]
    return rows + [
        {"component": "checkpoint_and_failures", "seconds": overhead_s, "energy_kwh": idle_kwh,
         "cost_usd": capex * overhead_s / wall_s, "co2e_kg": idle_kwh * ci},
        *({"component": k, "seconds": 0.0, "energy_kwh": v, "cost_usd": 0.0, "co2e_kg": v * ci}
          for k, v in constant_kwh.items()),
        {"component": "facility_overhead", "seconds": 0.0, "energy_kwh": facility_kwh - it_kwh, "cost_usd": 0.0,
         "co2e_kg": (facility_kwh - it_kwh) * ci},
        {"component": "electricity", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": electricity, "co2e_kg": 0.0},
        {"component": "embodied", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": 0.0, "co2e_kg": embodied_t * 1e3},
    ]


@dataclass(frozen=True)
class _PhaseEnergy:
    """The phases' wall clock and footprint: phases summed, stretched by the policy update's goodput; each
    phase at its own power, the failure overhead at idle power, host/network/storage over the wall clock."""

    compute_s: float
    wall_s: float
    phase_kwh: dict[str, float]
    idle_kwh: float
    constant_kwh: dict[str, float]  # host, network, storage
    it_kwh: float
    facility_kwh: float
    capex_usd: float
    electricity_usd: float

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.compute_s


def _phase_energy(phases, basis, site) -> _PhaseEnergy:
    """`phases`: (name, seconds, W per device); `basis`: the policy update's (goodput, powers, PUE, prices)."""
    devices = basis.devices
    compute_s = sum(s for _, s, _ in phases)
    wall_s = compute_s / (basis.compute_s / basis.wall_s)
    phase_kwh = {name: devices * w * s / 3.6e6 for name, s, w in phases}
    idle_kwh = devices * basis.idle_w * (wall_s - compute_s) / 3.6e6
    constant_kwh = {k: devices * w * wall_s / 3.6e6  # over the whole wall clock
                    for k, w in (("host", basis.host_w), ("network", site.network_w), ("storage", site.storage_w))}
    it_kwh = sum(phase_kwh.values()) + idle_kwh + sum(constant_kwh.values())
    facility_kwh = it_kwh * basis.pue
    capex, electricity = cost.run_cost_usd(devices * wall_s / 3600, basis.usd_per_device_hour, facility_kwh,
                                           basis.usd_per_kwh)
    return _PhaseEnergy(compute_s, wall_s, phase_kwh, idle_kwh, constant_kwh, it_kwh, facility_kwh, capex, electricity)


def _rlhf_values(rl, actor_values: dict[str, Any], basis, pe: _PhaseEnergy, extra_flops: float, gen_s: float,
                 gen_tflops: float) -> dict[str, Any]:
    """The policy update's values with the whole run's figures over them: FLOPs of every phase (`extra_flops`:
    scoring and critic), utilisation over all phases, wall clock, energy, cost; then the rollouts' share."""
    v, devices = actor_values, basis.devices
    sequences = rl.prompts * rl.samples()
    trained_tokens = sequences * (rl.prompt_tokens + rl.response_tokens) * rl.epochs
    gen_flops = gen_tflops * 1e12 * devices * gen_s
    total_flops = v["train_flops"] + extra_flops + gen_flops
    mfu = total_flops / (devices * pe.compute_s * (v["model_tflops_per_device"] * 1e12 / v["mfu"]))
    device_hours = devices * pe.wall_s / 3600
    cost_usd = pe.capex_usd + pe.electricity_usd
    values = {
        **v, "workload": f"rlhf-{rl.algorithm}", "tokens": trained_tokens, "train_flops": total_flops,
        "mfu": mfu, "hfu": mfu * v["hfu"] / v["mfu"],
        "model_tflops_per_device": total_flops / (devices * pe.compute_s) / 1e12,
        "tokens_per_s": trained_tokens / pe.compute_s, "wall_clock_days": pe.wall_s / 86400,
        "device_hours": device_hours, "goodput": basis.compute_s / basis.wall_s,
        "energy_it_mwh": pe.it_kwh / 1e3, "energy_mwh": pe.facility_kwh / 1e3,
        "co2e_t": energy.operational_co2e_t(pe.facility_kwh, basis.carbon_intensity_kg_per_kwh),
        "embodied_co2e_t": energy.embodied_co2e_t(devices, basis.embodied_kg_per_device, pe.wall_s / 3600,
                                                  basis.lifetime_years),
        "cost_usd": cost_usd, "usd_per_device_hour": cost_usd / device_hours,
        "water_m3": energy.water_m3(pe.it_kwh, basis.wue_l_per_kwh),
        "rlhf_sequences": sequences, "rlhf_generation_s": gen_s, "rlhf_generation_share": gen_s / pe.compute_s,
        "rlhf_generation_tflops_per_device": gen_tflops, "rlhf_generation_flops_share": gen_flops / total_flops,
    }
    values.pop("co2e_t_hourly", None)
    return values


def _mc_basis(basis, phases, pe: _PhaseEnergy):
    """Monte Carlo basis: the phases as one busy period at their time-weighted mean power (the same
    throughput multiplier scales every phase), so the neutral draw reproduces the estimate's figures."""
    mean_w = sum(w * s for _, s, w in phases) / pe.compute_s
    dyn = basis.dynamic_w_per_tflops
    return replace(basis, compute_s=pe.compute_s, wall_s=pe.wall_s, active_w=mean_w,
                   hardware_tflops=(mean_w - basis.idle_w) / dyn if dyn > 0 else basis.hardware_tflops)


def estimate_rlhf(scenario, site):
    """The `Estimate` of an `[rlhf]` scenario (module docstring): the policy update as a training
    run, rollouts and scoring passes around it, each phase at its own power."""
    rl = scenario.rlhf
    dtype_bytes(rl.generation_dtype, "rlhf.generation_dtype")
    seq = rl.prompt_tokens + rl.response_tokens
    policy = scenario.model.spec().with_seq_len(seq)
    actor = _actor(scenario, site)
    basis, v = actor.basis, actor.values
    model_fps = v["model_tflops_per_device"] * 1e12  # achieved in the policy update
    gen_s, gen_tflops, gen_note = _rollouts(rl, policy, site, basis.devices, v["global_batch_tokens"])
    score_flops, score_s, critic_flops, critic_s = _scoring(rl, policy, basis.devices, model_fps)
    phases = [("rollout_generation", gen_s, float(basis.device_power_w(gen_tflops))),
              ("scoring_forward", score_s, basis.active_w),
              ("policy_update", basis.compute_s, basis.active_w),
              ("critic_update", critic_s, basis.active_w)]
    pe = _phase_energy(phases, basis, site)
    values = _rlhf_values(rl, v, basis, pe, score_flops + critic_flops, gen_s, gen_tflops)
    breakdown = _breakdown(phases, pe.phase_kwh, pe.idle_kwh, pe.constant_kwh, pe.it_kwh, pe.facility_kwh,
                           pe.overhead_s, pe.wall_s, pe.capex_usd, pe.electricity_usd,
                           basis.carbon_intensity_kg_per_kwh, values["embodied_co2e_t"])
    notes = [a for a in actor.assumptions if "training.tokens" not in a]
    notes.append(f"rlhf ({rl.algorithm}): {values['rlhf_sequences']:,.0f} sequences of {seq} tokens; "
                 + (gen_note or "no generation (offline preference pairs)"))
    notes.append("rlhf: scoring and critic passes at the policy update's achieved FLOP/s; weight re-sharding "
                 "between training and generation not modelled")
    if gen_s > 0:
        notes.append(energy.memory_bound_note("rlhf rollout_generation", phases[0][2], basis.tdp_w,
                                              basis.devices * gen_s / 3600, basis.pue, pe.facility_kwh / 1e3))
    mc_basis = _mc_basis(basis, phases, pe)
    return Estimate(values, actor.plan, breakdown, notes, actor.search, mc_basis, uncertainty_bands(scenario, mc_basis))
