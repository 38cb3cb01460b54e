"""Spec stage: a YAML spec (untrusted text) → validated ModelSpec dataclasses that remember file:line:col.

Nothing here runs code from a spec. Modules: source (YAML with positions), model (ModelSpec, load_spec),
layers (layer lists, blocks, repeat, when), expr (${...}), catalog (op names and signatures), ops
(functional ops), shapes (shape and dtype text), schema (JSON Schema), bundled (bundled specs).
"""
