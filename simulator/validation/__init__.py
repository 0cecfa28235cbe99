"""Validation: published training runs and the public throughput tables against the model."""
