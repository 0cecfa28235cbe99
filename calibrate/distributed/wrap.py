"""Wrapping the calibration workload for data parallelism: DDP, or FSDP2 (`fully_shard`) per block."""

from __future__ import annotations

from typing import Any

from calibrate.errors import MeasurementError

PARALLEL = ("ddp", "fsdp")


def _fully_shard():
    """(fully_shard, MixedPrecisionPolicy) of FSDP2; a MeasurementError when this torch lacks them."""
    try:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    except ImportError as exc:
        import torch

        raise MeasurementError(f"--parallel fsdp needs FSDP2 (torch.distributed.fsdp.fully_shard, torch >= 2.6); "
                               f"torch {torch.__version__} lacks it ({exc}); use --parallel ddp") from None
    return fully_shard, MixedPrecisionPolicy


def _wrap_ddp(work, device, local_rank: int) -> dict[str, Any]:
    """Wrap `work.model` with DDP (buffers not broadcast); returns the options used."""
    import inspect

    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [local_rank] if device.type == "cuda" else None
    # The only buffers are the constant RoPE tables: no need to broadcast them every step
    # (`forward_sync_buffers` replaces `broadcast_buffers` in recent torch).
    key = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters \
        else "broadcast_buffers"
    model = DDP(work.module, device_ids=ids, **{key: False})
    work.model = torch.compile(model) if work.config.compile else model
    return {"bucket_cap_mb": 25, key: False}


def _wrap_fsdp(work) -> dict[str, Any]:
    """Shard every transformer block, then the root, with FSDP2; rebuild the optimizer on the
    sharded parameters; returns the options used."""
    import torch

    fully_shard, MixedPrecisionPolicy = _fully_shard()
    mp = None
    if work.autocast_dtype is not None:  # bf16: gather parameters in bf16, reduce gradients in fp32
        mp = MixedPrecisionPolicy(param_dtype=work.autocast_dtype, reduce_dtype=torch.float32)
    kw = {"mp_policy": mp} if mp is not None else {}
    module = work.module
    for block in module.blocks:
        fully_shard(block, **kw)
    fully_shard(module, **kw)
    old = work.optimizer  # holds the unsharded parameters: rebuild it on the DTensor ones
    params = list(module.parameters())
    wd = max(g["weight_decay"] for g in old.param_groups)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": wd},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    d = old.defaults
    work.optimizer = type(old)(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], fused=d.get("fused"))
    work.model = torch.compile(module) if work.config.compile else module
    return {"reshard_after_forward": True, "param_dtype": "bf16" if mp is not None else "fp32",
            "reduce_dtype": "fp32", "sharded": "per block + root"}


def wrap_workload(work, parallel: str, device, local_rank: int) -> dict[str, Any]:
    """Wrap `work.model` with DDP or FSDP2 in place (optimizer rebuilt for FSDP2); returns the options used."""
    if parallel == "ddp":
        return _wrap_ddp(work, device, local_rank)
    if parallel != "fsdp":
        raise MeasurementError(f"--parallel: expected one of {', '.join(PARALLEL)}, got {parallel!r}")
    return _wrap_fsdp(work)
