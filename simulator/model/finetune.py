"""What a run trains: every weight (pre-training, full fine-tuning) or LoRA adapters on a frozen base.

Full fine-tuning is pre-training on fewer tokens: the project's model FLOPs per token (flops.py,
PaLM App. B) and memory.py's 18 B per parameter.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", sec. 4.1) freezes the
base weights W and trains W + B A with A: r x d_in, B: d_out x r on chosen matrices. Per token:
    base matmuls: forward 2N + activation gradient 2N, no weight gradient (-2N)  -> 4 N_matmul
    adapters: trained like any weight                                          -> 6 N_lora
    attention core (QK^T, AV): no weights, full forward + backward             -> 12 L d_attn T
so  FLOPs/token = 4 N_matmul_active + 6 N_lora + 12 L d_attn T.
Memory: the frozen base at `base_weight_bytes` per parameter (2 = bf16; 0.5 = 4-bit QLoRA,
Dettmers et al. 2023) and 18 B per adapter parameter (weight, fp32 gradient, master, Adam m, v).

`Tuning` carries this into the plan search (memory.py, steptime.py, search.py) and `estimate()`
(scenario section `[finetune]`). Units are in the names; GB = 1e9 bytes, as in memory.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulator.errors import ScenarioError
from simulator.model.flops import (
    RECOMPUTE,
    attention_flops_per_token,
    model_flops_per_token,
    recomputed_flops_per_token,
)
from simulator.model.shapes import ModelSpec

Method = Literal["full", "lora"]
ATTN_TARGETS = ("q", "k", "v", "o")
ALL_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
# Bytes per trained parameter, mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, sec. 3): bf16
# weight 2, fp32 main gradient 4, fp32 master weight + Adam m + v 12 (memory.py shards them by ZeRO).
BYTES_WEIGHT, BYTES_GRAD, BYTES_OPTIMIZER = 2, 4, 12


def _targets(targets: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    if targets == "all":
        return ALL_TARGETS
    if isinstance(targets, str):
        targets = (targets,)
    bad = [t for t in targets if t not in ALL_TARGETS]
    if bad:
        raise ScenarioError(f"finetune.lora_targets: unknown target '{bad[0]}' "
                            f"(known: {', '.join(ALL_TARGETS)} or 'all')")
    if not targets:
        raise ScenarioError("finetune.lora_targets: expected at least one target matrix")
    return tuple(targets)


def lora_matrix_shapes(model: ModelSpec) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each LoRA-targetable matrix in one layer (GQA: k and v are d -> K hd)."""
    if model.is_mla:
        raise ScenarioError(f"finetune: LoRA on MLA attention ({model.name}) is not supported")
    d, q_width, kv_width, f = model.d_model, model.heads * model.hd, model.kv_heads * model.hd, model.ffn_dim
    shapes = {"q": (d, q_width), "k": (d, kv_width), "v": (d, kv_width), "o": (q_width, d),
              "up": (d, f), "down": (f, d)}
    if model.gated_mlp:
        shapes["gate"] = (d, f)
    return shapes


def _adapter_shapes(model: ModelSpec, targets) -> tuple[tuple[int, int], ...]:
    names = _targets(targets)
    if model.is_moe and any(t in ("gate", "up", "down") for t in names):
        raise ScenarioError(f"finetune.lora_targets: MLP targets on an MoE model ({model.name}) are not supported")
    shapes = lora_matrix_shapes(model)
    return tuple(shapes[t] for t in names if t in shapes)  # "gate" on a non-gated MLP: no such matrix


def lora_trainable_params(model: ModelSpec, rank: int = 16,
                          targets: tuple[str, ...] | str = ATTN_TARGETS) -> int:
    """N_lora = layers * sum over targets of r * (d_in + d_out) (A is r x d_in, B is d_out x r).

    MLP targets on an MoE model are rejected (which experts get adapters is a design choice).
    A "gate" target on a non-gated MLP is skipped (there is no such matrix).
    """
    if rank <= 0:
        raise ScenarioError(f"finetune.lora_rank: expected a positive integer, got {rank}")
    return model.layers * sum(rank * (d_in + d_out) for d_in, d_out in _adapter_shapes(model, targets))


@dataclass(frozen=True)
class Tuning:
    """What is trained. The default (`FULL`) trains every weight, as pre-training does."""

    method: Method = "full"
    lora_rank: int = 0
    lora_params: int = 0
    adapter_shapes: tuple[tuple[int, int], ...] = ()  # (d_in, d_out) of each adapted matrix in a layer
    base_weight_bytes: float = BYTES_WEIGHT

    @classmethod
    def lora(cls, model: ModelSpec, rank: int = 16, targets: tuple[str, ...] | str = ATTN_TARGETS,
             base_weight_bytes: float = BYTES_WEIGHT) -> Tuning:
        if base_weight_bytes <= 0:
            raise ScenarioError(f"finetune.base_weight_bytes: expected > 0, got {base_weight_bytes}")
        return cls("lora", rank, lora_trainable_params(model, rank, targets), _adapter_shapes(model, targets),
                   base_weight_bytes)

    @property
    def frozen_base(self) -> bool:
        return self.method == "lora"

    def trained_params(self, model: ModelSpec, params_local, layers_local):
        """Trained parameters on one device: all of `params_local` (the base's, before ZeRO), or the
        adapters of its `layers_local` layers (not split by TP: each TP rank keeps the whole r x d
        matrices, an upper bound on their memory)."""
        if not self.frozen_base:
            return params_local
        return self.lora_params / model.layers * np.asarray(layers_local, dtype=float)


FULL = Tuning()


def flops_per_token(model: ModelSpec, tuning: Tuning = FULL) -> float:
    """Model FLOPs per trained token (the MFU numerator).

    full: 6 N_matmul_active + 12 L d_attn T (flops.model_flops_per_token).
    lora: 4 N_matmul_active + 6 N_lora + 12 L d_attn T (module docstring; Hu et al. 2021).
    """
    if not tuning.frozen_base:
        return model_flops_per_token(model)
    return 4.0 * model.matmul_params_active() + 6.0 * tuning.lora_params + attention_flops_per_token(model)


def recompute_flops_per_token(model: ModelSpec, tuning: Tuning, rc):
    """FLOPs recomputation adds per token, by `RECOMPUTE` index `rc` (an int or an array):
    flops.recomputed_flops_per_token, plus the LoRA adapters' forward (2 N_lora) under full recompute."""
    extra = [recomputed_flops_per_token(model, level) + (2.0 * tuning.lora_params if level == "full" else 0.0)
             for level in RECOMPUTE]
    return np.asarray(extra)[np.asarray(rc)]


def executed_flops_per_token(model: ModelSpec, tuning: Tuning, rc, causal_skip: bool):
    """Hardware FLOPs per trained token (the HFU numerator, docs/design.md section 2): the model FLOPs plus
    recomputation, less the masked half of every attention matmul a causal FlashAttention kernel
    skips (`causal_skip`; flops.hardware_flops_per_token for FULL); `rc` may be an array."""
    extra = recompute_flops_per_token(model, tuning, rc)
    attention = attention_flops_per_token(model) * (1.0 + np.where(np.asarray(rc) >= 1, 1.0 / 3.0, 0.0))
    return flops_per_token(model, tuning) + extra - (attention / 2.0 if causal_skip else 0.0)


def tuning_for(model: ModelSpec, method: str, rank: int, targets, base_bytes: float = BYTES_WEIGHT) -> Tuning:
    """The `Tuning` for a method given by name (the scenario's [finetune] section)."""
    if method == "full":
        return FULL
    if method == "lora":
        return Tuning.lora(model, rank, targets, base_bytes)
    raise ScenarioError(f"finetune.method: expected 'full' or 'lora', got '{method}'")
