"""What a published row's table omits but a file the source links or runs states.

One responsibility: per-row supplements. Fields a row's own table does not print but a file the
source links or runs states are supplied by `SUPPLEMENTS` (CSV cells filled, recipe keys appended to
the notes), each with its file and commit in the row's `assumptions`; `SUPPLEMENTS` also pins a
precise reason on rows that stay unusable (`gap`). Every entry names its source file and commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Supplement:
    """For one (table, model): where the values come from (`evidence`, kept in `assumptions`), CSV
    cells to fill (only empty ones), recipe keys appended to the notes (read by the MaxText recipe and
    recompute of `simulator.validation.public_rows_plan`), and a precise reason for a row that stays unusable
    (`gap`, replacing the generic one)."""

    evidence: str = ""
    cells: tuple[tuple[str, str], ...] = ()
    notes: str = ""
    gap: str = ""
    gap_if: tuple[tuple[str, str], ...] = ()  # CSV cells a row must show for `gap` to apply (all rows if empty)

    def gap_for(self, r: dict) -> str:
        """`gap` if it applies to CSV row `r`, else ''."""
        return self.gap if all(str(r[col]) == value for col, value in self.gap_if) else ""


_V4_HEADS = ("heads {h} (MHA): MaxText/configs/v4/{size}b.sh sets base_num_heads={h} (an early version, '{comment}'; "
             "base_num_query_heads={h} base_num_kv_heads={h} in AI-Hypercomputer/maxtext @{commit}); the key list "
             "transcribed from the .sh @76bd53b0f (maxtext_configs_at_76bd53b0f.txt) shows no heads key; with {h} "
             "heads of 256 the model has {params} parameters, the README's '{size}B' (base.yml's default 8 heads: "
             "{params8})")
_QWEN_PRIMUS = ("seq_len 4096: Primus default, examples/megatron/configs/MI355X/qwen3_235B_A22B-BF16-pretrain.yaml "
                "@05b350b3 (seq_length: ${PRIMUS_SEQ_LENGTH:4096}); the blog prints none. Cross-check: printed TFLOPS "
                "/ tokens/s = 148.0 GFLOP per token on every row = Megatron-LM's current num_floating_point_operations "
                "(core attention causal-halved) for Qwen3-235B-A22B at s = 4096 (148.03)")
_QWEN_TABLE = "Primus-pipeline experiments: Qwen 235B verification (MI355, 4 nodes, PP4, EP8)"
_TIERING = "Optimized models tiering: "
_MOE_DROPPED = ("; MaxText dropping MoE (sparse_matmul=False, megablox=False, capacity_factor=1.25): one-hot "
                "dispatch/combine einsums and expert GEMMs padded to 1.25x the routed tokens, not in the simulator's "
                "MoE cost")
SUPPLEMENTS: dict[tuple[str, str], Supplement] = {
    ("High Performance Model Configs on TPU v4: 22B model", "MaxText synthetic 22B"): Supplement(
        _V4_HEADS.format(size=22, h=24, comment="# 158TFLOP/s, 22B params", commit="232369cc",
                         params="21.9B", params8="17.1B"),
        cells=(("heads", "24"), ("kv_heads", "24"))),
    ("High Performance Model Configs on TPU v4: 52B model", "MaxText synthetic 52B"): Supplement(
        _V4_HEADS.format(size=52, h=32, comment="# achieves 162 TFLOP/s, 52B", commit="0a18c20f",
                         params="51.9B", params8="42.3B"),
        cells=(("heads", "32"), ("kv_heads", "32"))),
    (_TIERING + "TPU v6e (Trillium) Gold", "Llama 3.1 8B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Llama3.1-8B-MaxText/v6e-256/"
        "README.md @a9e09290 (llama3_1_8b_8192, MaxText tpu-recipes-v0.1.4): per_device_batch_size=4, "
        "ici_fsdp_parallelism=-1, remat_policy=custom with offload; its log line 'Tokens/s/device: 7207.336, "
        "total_weights: 8388608' (= 256 x 4 x 8192) matches the table's 7,207",
        notes="per_device_batch_size=4 ici_fsdp=-1 remat custom (offload)"),
    (_TIERING + "TPU v6e (Trillium) Silver", "Mixtral 8X7B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Mixtral-8x7B-MaxText/README.md "
        "@e008533b (mixtral_8x7b_dropped, MaxText tpu-recipes-v0.1.2): per_device_batch_size=12, "
        "ici_fsdp_parallelism=-1 (no expert parallelism), remat_policy=custom with offload; its sample log shows "
        "3,645 tokens/s/device (total_weights 12582912 = 256 x 12 x 4096), the table 3,899: same recipe, another "
        "software version" + _MOE_DROPPED,
        notes="per_device_batch_size=12 ici_fsdp=-1 remat custom (offload)"),
    (_TIERING + "TPU v6e (Trillium) Silver", "Mixtral 8X22B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Mixtral-8x22B-MaxText "
        "(README.md and cluster_toolkit/run_recipe.sh @03fb496c, mixtral_8x22b_dropped): per_device_batch_size=8, "
        "ici_fsdp_parallelism=64, ici_expert_parallelism=4, remat_policy=custom with offload; its log line "
        "'Tokens/s/device: 1326.307, total_weights: 8388608' (= 256 x 8 x 4096) matches the table's 1,326"
        + _MOE_DROPPED,
        notes="per_device_batch_size=8 ici_fsdp=64 ici_ep=4 remat custom (offload)"),
    ("Validation: Projected vs. Measured Results / MI325X - Dense Models (Llama 3.1)", "Llama 3.1 70B"): Supplement(
        "recompute full: Primus's own configurations for this model on this GPU, examples/torchtitan/configs/MI325X/"
        "llama3.1_70B-FP8-pretrain.yaml @8199829a and llama3.1_70B-BF16-pretrain.yaml @9b5a51e9, set "
        "activation_checkpoint: mode: full (their local_batch_size, 2 and 3, is not the table's batch, so the files "
        "are the stack's recipe, not the tabulated run's); without it the 8-GPU plans need 336 and 895 GB and the "
        "64-GPU FP8 plan 771 GB of the 275 GB",
        cells=(("recompute", "full (Primus torchtitan MI325X llama3.1_70B configs: activation_checkpoint mode full)"),),
        gap=("source inconsistent: the 1-node FP8 figure, 1,135 tokens/s per GPU, is the BF16 row's 1-node figure, "
             "34% below the same plan's 8-node measurement (1,726) at the same per-GPU batch, where the table's other "
             "pairs agree within 3% (8B FP8 16,224 / 16,186, 70B BF16 1,135 / 1,174) and the document's projection "
             "from it is 1,818: a copied cell"),
        gap_if=(("precision", "fp8"), ("devices", "8"))),
    (_TIERING + "TPU v6e (Trillium) Gold", "Llama 2 70B"): Supplement(gap=(
        "no plan: the linked recipe (tpu-recipes training/trillium/Llama2-70B-MaxText/README.md @9e458c71, "
        "llama2_70b_4096_sc) says per_device_batch_size=3 but its own log line has total_weights 2,097,152 "
        "= 256 x 2 x 4096 tokens per step; the batch of the tabulated run is not known")),
    (_TIERING + "TPU v5p Silver", "Mixtral 8X7B"): Supplement(gap=(
        "no plan: the linked recipe (tpu-recipes training/v5p/Mixtral-8X7B-Maxtext, cluster_toolkit/run_recipe.sh: "
        "per_device_batch_size=36, topology 4x4x4) is for 64 chips (v5p-128), the row for 256")),
    (_QWEN_TABLE, "Qwen3-235B-A22B"): Supplement(
        _QWEN_PRIMUS, cells=(("seq_len", "4096"),),
        gap=("no plan: micro-batch and global batch not stated (the Primus config's global_batch_size 8192 is "
             "marked '# 32nodes', this run used 4 nodes); with pp = 4 the pipeline bubble depends on them")),
    ("Validation: Projected vs. Measured Results / MI355X - MoE Models (Mixtral 8x22B)", "Mixtral 8x22B"): Supplement(
        gap=("no global batch: with pp = 4 the pipeline bubble depends on it; the table prints only Batch 2 (the "
             "micro-batch), and Primus's MI355X mixtral_8x22B_v0.1-BF16-pretrain.yaml (global_batch_size 128) is "
             "not stated to be the 8-node run's")),
    ("Primus-pipeline experiments: llama2 7B verification (MI300, 1 node, PP8)", "Llama2-7B"): Supplement(gap=(
        "no model shape: seq_len not stated, and the printed TFLOPS / tokens/s (23.4 GFLOP per token on every row) "
        "is below the 39.6 GFLOP per token the Megatron count gives the 32-layer Llama2-7B before any attention "
        "term: the run's model is not the one the row names")),
}


def supplemented(r: dict) -> tuple[dict, Supplement | None]:
    """The row with its `SUPPLEMENTS` entry applied (empty cells filled, recipe keys appended to notes)."""
    sup = SUPPLEMENTS.get((r["table"], r["model"]))
    if sup is None:
        return r, None
    r = dict(r)
    for col, value in sup.cells:
        if not r[col]:
            r[col] = value
    if sup.notes:
        r["notes"] = f"{r['notes']}; {sup.notes}"
    return r, sup
