"""The system: per-accelerator performance priors and the power model (the hardware catalog holds the data)."""
