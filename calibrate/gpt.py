"""The calibration workload's GPT as `torch.nn.Module`s (imported by `calibrate.workload.build_model`
only, so that importing the workload needs no torch).

Llama-style decoder in nanoGPT-style code (Karpathy's nanoGPT `model.py`, Touvron et al. 2023):
token embedding -> L x [RMSNorm -> causal self-attention (GQA, rotary positions, SDPA) -> residual,
RMSNorm -> SwiGLU MLP (or GELU MLP) -> residual] -> RMSNorm -> lm_head (optionally tied). No biases,
no learned positions: `WorkloadConfig.model_spec().params_total()` counts exactly these parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _rotary(x, cos, sin):
    """Rotary position embedding, rotate-half form (Su et al. 2021, RoFormer eq. 34; GPT-NeoX layout).

    x: (B, H, T, hd); cos, sin: (T, hd/2). Pairs (x_i, x_{i+hd/2}) are rotated by angle t * theta_i.
    """
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def _rope_angles(config):
    """RoPE angles t * 10000^(-2i/hd) for positions t < seq_len and i < hd/2 (RoFormer sec. 3.4.2)."""
    inv_freq = 10000.0 ** (-torch.arange(0, config.head_dim, 2, dtype=torch.float32) / config.head_dim)
    return torch.outer(torch.arange(config.seq_len, dtype=torch.float32), inv_freq)


def _init_weights(model, layers: int) -> None:
    """N(0, 0.02) on every matrix; residual output projections scaled by 1/sqrt(2L) (GPT-2, Radford et al. 2019)."""
    for name, p in model.named_parameters():
        if p.dim() == 2:
            std = 0.02 / math.sqrt(2 * layers) if name.endswith((".o.weight", ".down.weight")) else 0.02
            nn.init.normal_(p, mean=0.0, std=std)



class Attention(nn.Module):
    """Causal self-attention with grouped-query heads and rotary positions."""

    def __init__(self, c) -> None:
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.q = nn.Linear(c.d_model, c.heads * hd, bias=False)
        self.k = nn.Linear(c.d_model, c.kv_heads * hd, bias=False)
        self.v = nn.Linear(c.d_model, c.kv_heads * hd, bias=False)
        self.o = nn.Linear(c.heads * hd, c.d_model, bias=False)

    def forward(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        q = self.q(x).view(B, T, c.heads, c.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = _rotary(q, cos, sin), _rotary(k, cos, sin)
        # GQA (Ainslie et al. 2023): SDPA repeats each kv head heads/kv_heads times.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=c.kv_heads != c.heads)
        return self.o(y.transpose(1, 2).reshape(B, T, c.d_model))


class MLP(nn.Module):
    """SwiGLU: W2 (silu(W1 x) * W3 x) (Shazeer 2020, eq. 6); else W2 gelu(W1 x) (GPT-2)."""

    def __init__(self, c) -> None:
        super().__init__()
        self.up = nn.Linear(c.d_model, c.ffn_dim, bias=False)
        self.gate = nn.Linear(c.d_model, c.ffn_dim, bias=False) if c.gated_mlp else None
        self.down = nn.Linear(c.ffn_dim, c.d_model, bias=False)

    def forward(self, x):
        h = F.silu(self.gate(x)) * self.up(x) if self.gate is not None else F.gelu(self.up(x))
        return self.down(h)


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, c) -> None:
        super().__init__()
        self.norm1, self.attn = nn.RMSNorm(c.d_model, eps=1e-5), Attention(c)
        self.norm2, self.mlp = nn.RMSNorm(c.d_model, eps=1e-5), MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """The decoder for a `calibrate.workload.WorkloadConfig` (module docstring)."""

    def __init__(self, c) -> None:
        super().__init__()
        self.vocab = c.vocab
        self.embed = nn.Embedding(c.vocab, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.RMSNorm(c.d_model, eps=1e-5)
        self.lm_head = nn.Linear(c.d_model, c.vocab, bias=False)
        if c.tied_embeddings:
            self.lm_head.weight = self.embed.weight  # Press & Wolf 2017
        angles = _rope_angles(c)  # buffers, not parameters
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        _init_weights(self, c.layers)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, self.cos[:T], self.sin[:T])
        logits = self.lm_head(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, self.vocab), targets.reshape(-1))
