"""The calibration workload: a GPT-style decoder in plain PyTorch, trained on synthetic tokens.

Architecture (Llama-style, nanoGPT-style code; Karpathy's nanoGPT `model.py`, Touvron et al. 2023):
token embedding -> L x [RMSNorm -> causal self-attention (GQA, rotary positions, SDPA) -> residual,
RMSNorm -> SwiGLU MLP (or GELU MLP) -> residual] -> RMSNorm -> lm_head (optionally tied).
No biases, no learned positions, so `WorkloadConfig.model_spec().params_total()` is exactly the
number of parameters of the torch model (the modules are in `calibrate/gpt.py`).

FLOPs come from `simulator.model.flops` only (docs/design.md section 2: one convention, PaLM Appendix B). Nothing
here touches torch or a device at import; torch is imported lazily by the functions that need it.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from simulator.model.flops import hardware_flops_per_token, model_flops_per_token
from simulator.model.shapes import ModelSpec

DTYPES = ("bf16", "fp32")


@dataclass(frozen=True)
class WorkloadConfig:
    """One benchmark configuration: the model shape plus micro-batch, precision and run options.

    `batch_size` is the micro-batch in sequences; tokens per step = batch_size * seq_len.
    `dtype="bf16"` trains under `torch.autocast(bfloat16)` (CUDA or CPU) with fp32 weights;
    `"fp32"` runs in fp32 (TF32 matmuls on CUDA, set by `build`).
    """

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    ffn_dim: int
    vocab: int
    seq_len: int
    batch_size: int
    gated_mlp: bool = True
    tied_embeddings: bool = False
    dtype: str = "bf16"
    compile: bool = False
    fused_adamw: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"workload.name: expected a non-empty string, got {self.name!r}")
        for f in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "seq_len", "batch_size"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"workload.{f}: expected a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"workload.seed: expected a non-negative integer, got {self.seed!r}")
        for f in ("gated_mlp", "tied_embeddings", "compile", "fused_adamw"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"workload.{f}: expected true or false, got {getattr(self, f)!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"workload.dtype: expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.d_model % self.heads:
            raise ValueError(f"workload.heads: expected a divisor of d_model ({self.d_model}), got {self.heads}")
        if self.heads % self.kv_heads:
            raise ValueError(f"workload.kv_heads: expected a divisor of heads ({self.heads}), got {self.kv_heads}")
        if (self.d_model // self.heads) % 2:
            raise ValueError(f"workload.heads: head_dim d_model/heads = {self.d_model // self.heads} must be even "
                             "(rotary embeddings rotate pairs)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def model_spec(self) -> ModelSpec:
        """The simulator's shape of this model (RMSNorm, no biases, rotary positions)."""
        return ModelSpec(name=self.name, layers=self.layers, d_model=self.d_model, heads=self.heads,
                         kv_heads=self.kv_heads, ffn_dim=self.ffn_dim, vocab=self.vocab, seq_len=self.seq_len,
                         gated_mlp=self.gated_mlp, tied_embeddings=self.tied_embeddings,
                         learned_positions=False, bias=False, layernorm=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"workload.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        return cls(**data)

    @classmethod
    def from_params(cls, n_params: float, seq_len: int, batch_size: int, vocab: int = 32000,
                    **options: Any) -> WorkloadConfig:
        """A config near `n_params` total parameters (shape from `ModelSpec.from_params`)."""
        for f, v in (("params", n_params), ("seq_len", seq_len), ("vocab", vocab)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ValueError(f"workload.{f}: expected a positive number, got {v!r}")
        s = ModelSpec.from_params(n_params, seq_len=seq_len, vocab=vocab)
        return cls(name=f"gpt-{n_params / 1e6:.4g}m", layers=s.layers, d_model=s.d_model, heads=s.heads,
                   kv_heads=s.kv_heads, ffn_dim=s.ffn_dim, vocab=vocab, seq_len=seq_len, batch_size=batch_size,
                   gated_mlp=s.gated_mlp, **options)


def _size(name: str, layers: int, d: int, heads: int, ffn: int, vocab: int, seq: int, batch: int) -> WorkloadConfig:
    return WorkloadConfig(name, layers, d, heads, heads, ffn, vocab, seq, batch)


# Named sizes (total parameters from `model_spec().params_total()`). SwiGLU ffn ~ 8/3 d rounded to
# 256 (Shazeer 2020); the big shapes follow GPT-3 Table 2.1 (Brown et al. 2020) in layers x d_model.
SIZES: dict[str, WorkloadConfig] = {
    "tiny": _size("tiny", 6, 128, 4, 384, 512, 128, 8),  # 1.41M, CPU tests
    "mini": _size("mini", 4, 256, 4, 768, 4096, 256, 8),  # 5.5M, CPU calibration
    "small": _size("small", 6, 384, 6, 1024, 32000, 512, 16),  # 35M
    "125m": _size("125m", 12, 768, 12, 2048, 32000, 1024, 16),  # 134M
    "350m": _size("350m", 24, 1024, 16, 2816, 32000, 1024, 8),  # 374M
    "760m": _size("760m", 24, 1536, 16, 4096, 32000, 1024, 8),  # 777M
    "1.3b": _size("1.3b", 24, 2048, 16, 5632, 32000, 1024, 4),  # 1.36B
}


# --- FLOPs and traffic: the simulator's formula, never a second one ---------------------------------
def model_flops_per_step(config: WorkloadConfig) -> float:
    """Model FLOPs per optimizer step = model_flops_per_token (PaLM App. B, docs/design.md section 2) x B x T."""
    return model_flops_per_token(config.model_spec()) * config.tokens_per_step


def hardware_flops_per_step(config: WorkloadConfig) -> float:
    """Hardware FLOPs per step (docs/design.md section 2): no recomputation, and the causal attention kernel
    (SDPA with is_causal, FlashAttention on GPUs) runs half of the attention term, as the simulator
    counts it for the power model."""
    return hardware_flops_per_token(config.model_spec(), "none", causal_skip=True) * config.tokens_per_step


def activation_elements_per_step(config: WorkloadConfig) -> float:
    """A = B * T * d_model * L: proxy for memory-bound elementwise traffic (measurement.md sec. 5.4)."""
    return float(config.batch_size * config.seq_len * config.d_model * config.layers)


# --- the model -------------------------------------------------------------------------------------
def build_model(config: WorkloadConfig, device: Any = "cpu"):
    """The uncompiled GPT module for `config` on `device` ("meta" for shapes only), seeded by `config.seed`."""
    import torch

    device = torch.device(device)
    # Initialise on the device itself (fast for 1B parameters), without disturbing the caller's RNG.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), device:
        torch.manual_seed(config.seed)
        from calibrate.gpt import GPT

        return GPT(config)


# --- data and training -------------------------------------------------------------------------------
def synthetic_batch(config: WorkloadConfig, device: Any = "cpu", generator=None):
    """(idx, targets), each (batch_size, seq_len) int64: uniform random tokens made on `device`.

    targets are idx shifted by one (next-token prediction). `generator` must live on `device`;
    None -> a fresh one seeded with `config.seed`. Nothing is downloaded (measurement.md sec. 5.2).
    """
    import torch

    if generator is None:
        generator = torch.Generator(device=device).manual_seed(config.seed)
    tokens = torch.randint(0, config.vocab, (config.batch_size, config.seq_len + 1), generator=generator,
                           device=device)
    return tokens[:, :-1], tokens[:, 1:]


@dataclass
class Workload:
    """A built workload: `module` (uncompiled, for counting), `model` (maybe compiled), optimizer."""

    config: WorkloadConfig
    device: Any
    module: Any
    model: Any
    optimizer: Any
    autocast_dtype: Any = None  # torch.bfloat16 for dtype="bf16", None for fp32
    steps: int = field(default=0)

    def autocast(self):
        """A fresh autocast context (bf16) or a no-op one (fp32)."""
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def step(self, batch):
        """One training step without a host sync: returns the detached loss tensor."""
        idx, targets = batch
        with self.autocast():
            loss = self.model(idx, targets)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return loss.detach()

    def train_step(self, batch) -> float:
        """Forward, backward, AdamW step, zero_grad; returns the loss (a host sync on GPU)."""
        return float(self.step(batch))


def build(config: WorkloadConfig, device: Any = "cpu", lr: float = 3e-4, weight_decay: float = 0.1) -> Workload:
    """Model, AdamW (fused on CUDA when `config.fused_adamw`) and precision context for `config`.

    Weight decay on matrices only (nanoGPT `configure_optimizers`). On CUDA with dtype "fp32" this
    enables TF32 matmuls (process-wide; measurement.md sec. 5.2).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda" and config.dtype == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    module = build_model(config, device)
    params = list(module.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = config.fused_adamw and device.type == "cuda"
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=fused or None)
    model = torch.compile(module) if config.compile else module
    return Workload(config=config, device=device, module=module, model=model, optimizer=optimizer,
                    autocast_dtype=torch.bfloat16 if config.dtype == "bf16" else None)
