"""Build stage: ModelSpec → torch.nn.Module named like the spec, and → Python source.

builder (build, spec_probe: the walk over the spec's layers) uses construct (one module from a
layer), ties (use: and tie:), budget (the CPU budgets), inputs (example tensors) and modules
(SpecModule, Built); to_python writes the built model as a standalone file.
"""
