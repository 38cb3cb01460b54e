"""Build stage: ModelSpec → torch.nn.Module named like the spec (builder), and → Python source (to_python)."""
