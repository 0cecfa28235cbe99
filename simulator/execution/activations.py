"""Activation bytes of one layer and one micro-batch, and what each recompute level keeps of them.

One responsibility: the activations a layer stores (memory.py adds stages, weights, optimizer
states, logits, buffers and the runtime's overhead).

Activations (Korthikanti et al. 2022 sec. 4.1 and Table 2), bytes per token per layer for one
micro-batch, bf16, tensor by tensor so that GQA and head_dim != d_model / heads count exactly:
inputs of the two norms 2h + 2h, input of the QKV GEMM 2h, Q 2 H hd, K and V 2 K hd each (the paper's
4sbh for Q, K and 2sbh for V when K = H), attention output = input of the output projection 2 H hd
(FlashAttention saves Q, K, V, the output and the log-sum-exp, no s x s scores), input of the first
MLP GEMM 2h, MLP intermediates 4 f_eff (GeLU input and output; gated: gate, up and product), and
in an MoE layer the k dispatched copies of the token its routed experts' first GEMM reads, 2 k h. The
paper's dropout masks (1 B per element after the attention and after the MLP) exist only when
dropout > 0 (`dropout`); modern LLMs train without dropout (Llama, Nemotron-4 `hidden_dropout: 0.0`
in NeMo's `nemotron_340b.yaml`, MPT `resid_pdrop: 0.0`, MaxText `dropout_rate: 0`), so the default is
s b h (16 + 4 f_eff / h) for MHA, 32 sbh at ffn = 4h, and the paper's 34 sbh with dropout. Sequence
parallelism (or t = 1) divides everything by t; without it the norm and GEMM inputs (and masks) are
replicated: s b h (8 [+2 with dropout] + (8 + 4 f_eff / h) / t) for MHA (the paper's 10 + 24 / t).
K and V are divided by min(t, kv_heads) (GQA replication beyond the KV heads). FP8 training
(`precision = "fp8"`, Transformer Engine): each TE Linear saves its input for the weight gradient as
the FP8 copy it fed the GEMM (`_Linear.forward`: `inputmat_t if ... fp8_wgrad`, and LayerNormLinear's
FP8 `ln_out`), so the QKV and first-MLP GEMM inputs and the second MLP GEMM's input take 1 B
instead of 2 (-2h - f), while the attention output stays bf16 for the attention backward and the
output projection keeps its own FP8 copy of it (+ H v_hd); norms, Q, K, V and the activation
function's input stay bf16. Unfused attention
adds the softmax output 2 a s^2 b / t (and with dropout its mask and output: the paper's 5 a s^2 b).
Recompute:
- full: each layer keeps its input, 2 sbh / t, plus one layer's working set while it is recomputed
  (Korthikanti et al. 2022 sec. 5), less that input where it is the same tensor (sharded like the
  norm's input: with sequence parallelism or t = 1);
- selective (Megatron): the attention core is recomputed, so only the unfused s^2 terms go;
- mlp (Megatron-Core `recompute_modules: [core_attn, mlp]`, which checkpoints the MLP module on its
  input): the MLP intermediates go too, and are held again for one layer while its MLP is recomputed;
- offload (MaxText `remat_policy=custom` with `decoder_layer_input`, `query_proj`, `key_proj`,
  `value_proj: offload`): the tensors the policy saves wait in host memory, none on the device;
  recomputing a layer needs its whole working set;
- MaxText (`stack="maxtext"`): "selective" is MaxText's `remat_policy=minimal`
  (`jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims`): each layer keeps its input and the
  outputs of the weight GEMMs the backward needs (Q, K, V, the attention output projection, which
  rebuilds the second norm's input, and the MLP input projections), the rest is recomputed with one
  layer's working set; "mlp" is `save_dot_except_mlpwi` (the same without the MLP input
  projections, which are recomputed); "full" is `remat_policy=full` (policy None: only the layer inputs, carried by
  the scan over layers). MaxText shards activations over the tensor axis (`activation_embed`,
  `activation_mlp`, `activation_heads` -> 'tensor'), hence / t.
"""

from __future__ import annotations

import numpy as np

from simulator.execution.plan import PlanGrid, expert_tp
from simulator.model.shapes import ModelSpec

BYTES_ACT = 2  # bf16 activations
BYTES_FP8 = 1  # FP8 copies of GEMM inputs (Transformer Engine, module docstring)


def ffn_effective(model: ModelSpec, padding: float = 1.0) -> float:
    """Width of the MLP activations a token creates (gated MLPs keep 1.5x: gate, up, product)."""
    gate = 1.5 if model.gated_mlp else 1.0
    return _ffn_width(model, padding) * gate


def _ffn_width(model: ModelSpec, padding: float = 1.0) -> float:
    """Intermediate width of the MLP a token passes through (routed top-k plus shared experts; the
    routed part x `padding`, the capacity factor of token-dropping MoE, moe_comm.MoeSetup)."""
    if model.is_moe:
        return (model.experts_per_token * padding + model.shared_experts) * model.expert_ffn_dim
    return model.ffn_dim


def _attention_widths(model: ModelSpec) -> tuple[int, int, int]:
    """(Q width, K + V width, attention-output width) per token: H (hd + rope), K (hd + rope) + K v_hd,
    H v_hd (MHA/GQA: H hd, 2 K hd, H hd)."""
    qk = model.hd + model.rope_head_dim
    return model.heads * qk, model.kv_heads * (qk + model.v_hd), model.heads * model.v_hd


def kv_chunk_bytes(model: ModelSpec, grid: PlanGrid) -> np.ndarray:
    """K and V of one rank's sequence chunk, one micro-batch, one layer: 2 x mb x seq/cp x the KV
    heads on a TP rank (replicated beyond kv_heads) x head_dim x 2 B."""
    return 2 * grid.mb * (model.seq_len / grid.cp) * model.kv_heads * model.hd * BYTES_ACT / np.minimum(
        grid.tp, model.kv_heads)


def activation_bytes_per_layer(model: ModelSpec, grid: PlanGrid, flash: bool = True,
                               dropout: bool = False, precision: str = "bf16", padding: float = 1.0) -> np.ndarray:
    """Korthikanti 2022 Table 2, tensor by tensor, for one micro-batch on one layer with nothing
    recomputed but the selective-recompute attention core (module docstring; FP8 GEMM inputs
    with `precision = "fp8"`)."""
    s, b, h, t = model.seq_len / grid.cp, grid.mb, model.d_model, grid.tp
    q, kv, o = _attention_widths(model)
    local = BYTES_ACT * (4 * h) + (2 * h if dropout else 0)  # two norm and two GEMM inputs (+ masks)
    split = BYTES_ACT * (q + o + 2 * ffn_effective(model, padding))  # Q, attention output, MLP intermediates
    if precision == "fp8":  # Transformer Engine saves FP8 copies of its GEMMs' inputs
        local = local - (BYTES_ACT - BYTES_FP8) * 2 * h  # QKV and first MLP GEMM inputs
        split = split - (BYTES_ACT - BYTES_FP8) * _ffn_width(model, padding) + BYTES_FP8 * o  # MLP-out input; proj copy
    kv_bytes = s * b * BYTES_ACT * kv / np.minimum(t, model.kv_heads)
    sp = grid.sp.astype(bool) | (t == 1)
    stored = np.where(sp, s * b * (local + split) / t, s * b * (local + split / t)) + kv_bytes
    stored = stored + _dispatched_bytes(model, grid, precision, padding)
    if not flash:
        scores = (5 if dropout else 2) * model.heads * s * model.seq_len * b / t
        stored = stored + scores * np.where(grid.rc >= 1, 0, 1)
    return stored


def _maxtext_minimal_bytes(model: ModelSpec, grid: PlanGrid, padding: float = 1.0) -> np.ndarray:
    """MaxText `remat_policy=minimal`, one micro-batch on one layer: the layer input, Q, K, V, the
    output projection and the MLP input projections (module docstring)."""
    s, b, h, t = model.seq_len / grid.cp, grid.mb, model.d_model, grid.tp
    q, kv, _ = _attention_widths(model)
    mlp_in = (2 if model.gated_mlp else 1) * _ffn_width(model, padding)
    kept = BYTES_ACT * (2 * h + q + mlp_in)
    return s * b * kept / t + s * b * BYTES_ACT * kv / np.minimum(t, model.kv_heads)


def _dispatched_bytes(model: ModelSpec, grid: PlanGrid, precision: str, padding: float = 1.0):
    """MoE: the routed experts' first GEMM input, the k copies of each token the dispatch delivers
    (Megatron-Core's grouped expert GEMM saves it for its weight gradient; FP8 with Transformer
    Engine), on a rank of the EP exchange: tokens x etp / t of them (steptime.py's exchange), every
    layer counted as an MoE layer as the MLP widths are, x `padding` with token dropping; 0 for a dense
    model."""
    if not model.is_moe:
        return 0.0
    per_token = (BYTES_FP8 if precision == "fp8" else BYTES_ACT) * model.experts_per_token * model.d_model
    return model.seq_len / grid.cp * grid.mb * per_token * padding * expert_tp(grid) / grid.tp


def _mlp_intermediate_bytes(model: ModelSpec, grid: PlanGrid, precision: str, padding: float = 1.0) -> np.ndarray:
    """The MLP block's activations one micro-batch keeps on one layer beyond its input: the
    intermediates (`activation_bytes_per_layer`'s 4 f_eff per token, the second GEMM's FP8 input at
    1 B), / t, and an MoE layer's dispatched tokens (`_dispatched_bytes`)."""
    per_token = BYTES_ACT * 2 * ffn_effective(model, padding) - (
        (BYTES_ACT - BYTES_FP8) * _ffn_width(model, padding) if precision == "fp8" else 0.0)
    return (model.seq_len / grid.cp * grid.mb * per_token / grid.tp
            + _dispatched_bytes(model, grid, precision, padding))


def recompute_bytes(model: ModelSpec, grid: PlanGrid, per_layer, stack: str, precision: str, padding: float = 1.0):
    """(kept per layer and micro-batch, working set of the layer being recomputed) by recompute
    level (module docstring): none and selective keep `per_layer`; full keeps the layer input;
    mlp drops the MLP intermediates (kept again while the MLP is recomputed); offload keeps nothing
    on the device (the layer input, Q, K and V wait in host memory) and needs the whole layer while
    it is recomputed. MaxText: selective = remat minimal, mlp = save_dot_except_mlpwi."""
    rc = grid.rc
    layer_input = BYTES_ACT * model.seq_len / grid.cp * grid.mb * model.d_model / grid.tp
    mlp = _mlp_intermediate_bytes(model, grid, precision, padding)
    # recomputing a layer recreates all but its checkpointed input, which is the first norm's input
    # when the input is sharded like it (sequence parallelism or t = 1; without SP Megatron gathers a
    # replicated copy: --distribute-saved-activations)
    sharded_input = grid.sp.astype(bool) | (grid.tp == 1)
    kept = np.choose(rc, [per_layer, per_layer, np.broadcast_to(layer_input, rc.shape), per_layer - mlp,
                          np.zeros(rc.shape)])
    working = np.choose(rc, [np.zeros(rc.shape), np.zeros(rc.shape),
                             per_layer - np.where(sharded_input, layer_input, 0.0), mlp, per_layer])
    if stack == "maxtext":
        minimal = _maxtext_minimal_bytes(model, grid, padding)
        mlp_in = (BYTES_ACT * (2 if model.gated_mlp else 1) * _ffn_width(model, padding)
                  * model.seq_len / grid.cp * grid.mb / grid.tp)
        policy = np.choose(rc, [kept, minimal, kept, minimal - mlp_in, kept])
        partial = (rc == 1) | (rc == 3)
        kept = np.where(partial, policy, kept)
        working = np.where(partial, np.maximum(per_layer - kept, 0.0), working)  # what the policy recomputes
    return kept, working
