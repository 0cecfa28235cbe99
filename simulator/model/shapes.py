"""Decoder-only transformer shapes (dense and MoE) with exact parameter counts.

Counting rules (per layer, no biases unless `bias=True`):
- attention, MHA/GQA: q and o projections d*H*hd each, k and v d*K*hd each (K = kv heads);
  MLA (DeepSeek-V2/V3, Liu et al. 2024 sec. 2.1): d*q_lora + q_lora*H*(hd+rope)
  + d*(kv_lora+rope) + kv_lora*H*(hd+v_hd) + H*v_hd*d;
- MLP: 3*d*f when gated (SwiGLU, Shazeer 2020), else 2*d*f;
- MoE layer: experts*(3|2)*d*f_e + shared*(3|2)*d*f_e + router d*experts (Fedus et al. 2021);
- norms: 2 per layer + 1 final, d weights each (x2 for LayerNorm with bias);
- embeddings: vocab*d, plus a separate output head unless tied, plus learned positions.

"Matmul" parameters (those entering 6N of the FLOP count, docs/design.md section 2) are the non-embedding
weight matrices plus the output projection (which is a matmul even when tied to the input).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import math

import numpy as np

from simulator.errors import ScenarioError


# model.params is built as the closest grid shape (the estimate's assumptions say which); a request
# further than this beyond the grid's smallest or largest shape is refused
PARAMS_TOLERANCE = 0.05


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer. MoE layers are the last `moe_layers` layers."""

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    ffn_dim: int
    vocab: int
    seq_len: int
    gated_mlp: bool = True
    head_dim: int = 0  # 0 -> d_model // heads
    tied_embeddings: bool = False
    learned_positions: bool = False
    bias: bool = False
    layernorm: bool = False  # LayerNorm (weight + bias) instead of RMSNorm
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    expert_ffn_dim: int = 0
    moe_layers: int = 0
    # Node-limited routing (DeepSeek-V3 report sec. 2.1.2; Megatron-Core --moe-router-num-groups /
    # --moe-router-group-topk): a token's experts lie in at most `expert_groups_per_token` of
    # `expert_groups` equal groups; 0 = unlimited (execution/moe_comm.py).
    expert_groups: int = 0
    expert_groups_per_token: int = 0
    q_lora_rank: int = 0  # MLA; 0 = standard attention
    kv_lora_rank: int = 0
    rope_head_dim: int = 0
    v_head_dim: int = 0

    def __post_init__(self) -> None:
        for f in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "seq_len"):
            if getattr(self, f) <= 0:
                raise ScenarioError(f"model.{f}: expected a positive integer, got {getattr(self, f)}")
        for f in ("experts", "experts_per_token", "shared_experts", "expert_ffn_dim", "moe_layers", "head_dim",
                  "expert_groups", "expert_groups_per_token"):
            if getattr(self, f) < 0:
                raise ScenarioError(f"model.{f}: expected >= 0, got {getattr(self, f)}")
        if self.heads % self.kv_heads:
            raise ScenarioError(f"model.kv_heads: {self.kv_heads} must divide heads ({self.heads})")
        if self.head_dim == 0 and self.d_model % self.heads:
            raise ScenarioError(f"model.heads: {self.heads} must divide d_model ({self.d_model}) or set head_dim")
        if self.moe_layers > self.layers:
            raise ScenarioError(f"model.moe_layers: {self.moe_layers} exceeds layers ({self.layers})")
        if self.is_moe:
            if not (0 < self.experts_per_token <= self.experts):
                raise ScenarioError(
                    f"model.experts_per_token: expected 1..experts ({self.experts}), got {self.experts_per_token}"
                )
            if self.expert_ffn_dim <= 0:
                raise ScenarioError("model.expert_ffn_dim: expected a positive integer for an MoE model")
        if self.expert_groups and self.experts % self.expert_groups:
            raise ScenarioError(f"model.expert_groups: {self.expert_groups} must divide experts ({self.experts})")
        if self.expert_groups_per_token > self.expert_groups:
            raise ScenarioError(f"model.expert_groups_per_token: expected 0..expert_groups ({self.expert_groups}), "
                                f"got {self.expert_groups_per_token}")

    # --- shape helpers -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.experts > 0 and self.moe_layers > 0

    @property
    def hd(self) -> int:
        """Per-head query/key dimension (without the decoupled RoPE part of MLA)."""
        return self.head_dim or self.d_model // self.heads

    @property
    def v_hd(self) -> int:
        return self.v_head_dim or self.hd

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def dense_layers(self) -> int:
        return self.layers - (self.moe_layers if self.is_moe else 0)

    @property
    def attn_width(self) -> int:
        """H * (qk_dim + v_dim) / 2: the d_attn of PaLM's 12*L*d_attn*T term (= H*hd for MHA/GQA)."""
        return self.heads * (self.hd + self.rope_head_dim + self.v_hd) // 2

    # --- parameter counts ----------------------------------------------------------------------
    def attention_params(self) -> int:
        d, h, hd = self.d_model, self.heads, self.hd
        if self.is_mla:
            q = d * self.q_lora_rank + self.q_lora_rank * h * (hd + self.rope_head_dim) if self.q_lora_rank else (
                d * h * (hd + self.rope_head_dim)
            )
            kv = d * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank * h * (hd + self.v_hd)
            return q + kv + h * self.v_hd * d
        n = 2 * d * h * hd + 2 * d * self.kv_heads * hd
        if self.bias:
            n += h * hd + 2 * self.kv_heads * hd + d
        return n

    def _mlp_params(self, ffn: int) -> int:
        n = (3 if self.gated_mlp else 2) * self.d_model * ffn
        if self.bias:
            n += ffn + self.d_model
        return n

    def moe_layer_params(self, active: bool) -> int:
        routed = self.experts_per_token if active else self.experts
        return (routed + self.shared_experts) * self._mlp_params(self.expert_ffn_dim) + self.d_model * self.experts

    def _norm_params(self) -> int:
        per = self.d_model * (2 if self.layernorm else 1)
        extra = (self.q_lora_rank + self.kv_lora_rank) if self.is_mla else 0
        return per * (2 * self.layers + 1) + extra * self.layers

    def embedding_params(self) -> int:
        n = self.vocab * self.d_model * (1 if self.tied_embeddings else 2)
        return n + (self.seq_len * self.d_model if self.learned_positions else 0)

    def _layer_matmul_params(self, active: bool) -> int:
        dense = self.dense_layers * self._mlp_params(self.ffn_dim)
        moe = self.moe_layers * self.moe_layer_params(active) if self.is_moe else 0
        return self.layers * self.attention_params() + dense + moe

    def params_total(self) -> int:
        """All parameters, embeddings and norms included."""
        return self._layer_matmul_params(False) + self._norm_params() + self.embedding_params()

    def params_active(self) -> int:
        """Parameters touched per token (routed experts counted top-k only)."""
        return self._layer_matmul_params(True) + self._norm_params() + self.embedding_params()

    def mlp_params_active(self) -> int:
        """MLP weights a token passes through, all layers: dense MLPs, and in MoE layers the routed
        top-k and shared experts plus the router."""
        moe = self.moe_layers * self.moe_layer_params(True) if self.is_moe else 0
        return self.dense_layers * self._mlp_params(self.ffn_dim) + moe

    def mlp_input_params_active(self) -> int:
        """The MLP input projections' weights (up, and gate when gated) a token passes through, all
        layers (routed top-k and shared experts in MoE layers)."""
        g = 2 if self.gated_mlp else 1
        per_moe_layer = (self.experts_per_token + self.shared_experts) * self.expert_ffn_dim
        moe = self.moe_layers * per_moe_layer if self.is_moe else 0
        return g * self.d_model * (self.dense_layers * self.ffn_dim + moe)

    def attn_out_params(self) -> int:
        """The attention output projections' weights, all layers: H v_hd x d per layer."""
        return self.layers * self.heads * self.v_hd * self.d_model

    def matmul_params_active(self) -> int:
        """N_matmul_active of docs/design.md section 2: non-embedding matmul weights per token + output projection."""
        return self._layer_matmul_params(True) + self.vocab * self.d_model

    # --- constructors --------------------------------------------------------------------------
    def with_seq_len(self, seq_len: int) -> ModelSpec:
        return replace(self, seq_len=seq_len)

    @classmethod
    def from_params(cls, n_params: float, seq_len: int = 4096, vocab: int = 128256,
                    field: str = "model.params") -> ModelSpec:
        """A Llama-style dense shape (GQA with 8 KV heads, SwiGLU) whose total is closest to `n_params`.

        Aspect ratio from Kaplan et al. 2020 sec. 3.1 (loss is flat for d_model / layers in about
        50-200): d_model / layers in [32, 256], preferring 128 as GPT-3 175B (96 x 12288) and
        Llama 3 8B/405B (32 x 4096, 126 x 16384) do. d_model is a multiple of 512 (heads of 64 or
        128, a multiple of 8, so TP up to 8 divides them); ffn between 3 d and 4 d (Llama 3: 3.5 d).
        The grid is scored in closed form with numpy, then the best shape is built.
        """
        if not (n_params > 0 and math.isfinite(n_params)):
            raise ScenarioError(f"{field}: expected a positive number, got {n_params}")
        layers = np.arange(1, 400)[:, None, None]
        d = 512 * np.arange(1, 65)[None, :, None]
        ffn = np.round(np.linspace(3.0, 4.0, 9)[None, None, :] * d / 256) * 256
        head_dim = np.where(d % 1024 == 0, 128, 64)
        kv = 8 * head_dim
        per_layer = 2 * d * d + 2 * d * kv + 3 * d * ffn + 2 * d
        total = layers * per_layer + 2 * vocab * d + d
        ratio = d / layers
        ok = (ratio >= 32) & (ratio <= 256)
        lo, hi = float(np.min(np.where(ok, total, np.inf))), float(np.max(np.where(ok, total, 0)))
        if not lo * (1 - PARAMS_TOLERANCE) <= n_params <= hi * (1 + PARAMS_TOLERANCE):
            raise ScenarioError(
                f"{field}: {n_params:.3g} is outside what a Llama-style shape with a {vocab:,}-token vocabulary "
                f"covers ({lo:.3g} to {hi:.3g} parameters): give the shape (model.layers, d_model, heads, "
                "ffn_dim, vocab) or a preset")
        score = np.where(ok, np.abs(total / n_params - 1) + 1e-3 * np.abs(np.log(ratio / 128)), np.inf)
        li, di, fi = np.unravel_index(int(np.argmin(score)), score.shape)
        dm, hd = int(d[0, di, 0]), int(head_dim[0, di, 0])
        return cls(name=f"dense-{n_params / 1e9:.3g}b", layers=int(layers[li, 0, 0]), d_model=dm, heads=dm // hd,
                   kv_heads=8, ffn_dim=int(ffn[0, di, fi]), vocab=vocab, seq_len=seq_len, head_dim=hd)


SHAPE_FIELDS = tuple(f.name for f in fields(ModelSpec) if f.name != "name")


def _llama(name: str, layers: int, d: int, heads: int, kv: int, ffn: int, vocab: int, seq: int) -> ModelSpec:
    return ModelSpec(name, layers, d, heads, kv, ffn, vocab, seq)


# Presets. Shapes from the papers / released configs named beside each.
PRESETS: dict[str, ModelSpec] = {
    # Brown et al. 2020 Table 2.1; GPT-2-style learned positions, tied embeddings, biases, LayerNorm.
    "gpt3-175b": ModelSpec("gpt3-175b", 96, 12288, 96, 96, 49152, 50257, 2048, gated_mlp=False,
                           tied_embeddings=True, learned_positions=True, bias=True, layernorm=True),
    # Touvron et al. 2023 (Llama 2) Table 1 and the released params.json files.
    "llama2-7b": _llama("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096),
    "llama2-13b": _llama("llama2-13b", 40, 5120, 40, 40, 13824, 32000, 4096),
    "llama2-70b": _llama("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096),
    # Touvron et al. 2023 (LLaMA) Table 2 and released params.json (2k context).
    "llama-7b": _llama("llama-7b", 32, 4096, 32, 32, 11008, 32000, 2048),
    "llama-13b": _llama("llama-13b", 40, 5120, 40, 40, 13824, 32000, 2048),
    "llama-33b": _llama("llama-33b", 60, 6656, 52, 52, 17920, 32000, 2048),
    "llama-65b": _llama("llama-65b", 80, 8192, 64, 64, 22016, 32000, 2048),
    # Dubey et al. 2024 (Llama 3) Table 3.
    "llama3-8b": _llama("llama3-8b", 32, 4096, 32, 8, 14336, 128256, 8192),
    "llama3-70b": _llama("llama3-70b", 80, 8192, 64, 8, 28672, 128256, 8192),
    "llama3-405b": _llama("llama3-405b", 126, 16384, 128, 8, 53248, 128256, 8192),
    # BigScience 2022 (BLOOM) Table 3: 70 layers, 112 heads, hidden 14336, vocab 250,880, ALiBi.
    "bloom-176b": ModelSpec("bloom-176b", 70, 14336, 112, 112, 57344, 250880, 2048, gated_mlp=False,
                            tied_embeddings=True, bias=True, layernorm=True),
    # Jiang et al. 2024 (Mixtral of Experts) Table 1: 8 experts, top-2, every layer MoE.
    "mixtral-8x7b": ModelSpec("mixtral-8x7b", 32, 4096, 32, 8, 14336, 32000, 32768,
                              experts=8, experts_per_token=2, expert_ffn_dim=14336, moe_layers=32),
    # DeepSeek-AI 2024 (DeepSeek-V3 technical report) sec. 4.2: 61 layers (first 3 dense), MLA,
    # 256 routed + 1 shared experts of width 2048, top-8, node-limited routing over 8 groups, at most 4
    # per token (sec. 2.1.2 "each token will be sent to at most M nodes", M = 4; HF config n_group 8,
    # topk_group 4). Multi-token-prediction module not modelled.
    "deepseek-v3": ModelSpec("deepseek-v3", 61, 7168, 128, 128, 18432, 129280, 4096,
                             head_dim=128, experts=256, experts_per_token=8, shared_experts=1,
                             expert_ffn_dim=2048, moe_layers=58, expert_groups=8, expert_groups_per_token=4,
                             q_lora_rank=1536, kv_lora_rank=512,
                             rope_head_dim=64, v_head_dim=128),
}
# Zhang et al. 2022 (OPT) Table 1: layers, heads, d_model; ffn 4d, vocab 50,272, 2k context,
# GPT-2-style blocks (the RLHF reference runs of DeepSpeed-Chat use them). OPT-350M's 512-wide
# embedding projection is not modelled (a 1024-wide embedding is counted instead).
for _n, (_l, _d, _h) in {"opt-350m": (24, 1024, 16), "opt-1.3b": (24, 2048, 32), "opt-6.7b": (32, 4096, 32),
                         "opt-13b": (40, 5120, 40), "opt-30b": (48, 7168, 56), "opt-66b": (64, 9216, 72)}.items():
    PRESETS[_n] = ModelSpec(_n, _l, _d, _h, _h, 4 * _d, 50272, 2048, gated_mlp=False,
                            tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)
# Validation-set shapes (Narayanan et al. 2021 Table 1; rows' notes in published_runs.csv).
for _n, (_l, _d, _h) in {"megatron-1.7b": (24, 2304, 24), "megatron-7.5b": (36, 4096, 32),
                         "megatron-39.1b": (48, 8192, 64), "megatron-145.6b": (80, 12288, 96),
                         "megatron-529.6b": (105, 20480, 128)}.items():
    PRESETS[_n] = ModelSpec(_n, _l, _d, _h, _h, 4 * _d, 51200, 2048, gated_mlp=False,
                            tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)


def get_preset(name: str) -> ModelSpec:
    """The preset called `name` (case-insensitive); ScenarioError with the nearest names otherwise."""
    key = name.lower()
    if key in PRESETS:
        return PRESETS[key]
    import difflib

    near = difflib.get_close_matches(key, PRESETS, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise ScenarioError(f"model.preset: unknown preset '{name}'{hint} (known: {', '.join(sorted(PRESETS))})")
