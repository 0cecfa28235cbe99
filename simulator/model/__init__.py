"""The model: shapes and presets, FLOPs per token (PaLM convention), scaling laws, what fine-tuning trains."""
