"""Spec stage: a YAML spec (untrusted text) → validated ModelSpec dataclasses that remember file:line:col.

Nothing here runs code from a spec. source (YAML with positions) → model (ModelSpec, load_spec) →
layers (layer lists, repeat, when, use), with layer_spec (LayerSpec and shared checks), blocks
(blocks: and their params), op_layers (an op's arguments and ties), expr (${...}), catalog (op
names and signatures) and ops (functional ops); shapes (shape and dtype text), schema (JSON
Schema), bundled (bundled specs).
"""
