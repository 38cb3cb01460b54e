"""The error catalogue: every bad spec gets one line, `file:line:col: error: message — hint`, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

SPECS = [
    (
        "from_misspelt_layer",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: fc1, op: Linear, out_features: 3}\n  - {op: add, from: [fcc1, input]}\n",
        "bad.yaml:4:21: error: from: refers to unknown layer 'fcc1' — did you mean 'fc1'?",
    ),
    (
        "from_misspelt_input",
        "input: {name: image, shape: [1, 3]}\nlayers:\n  - {op: relu, from: imgae}\n",
        "bad.yaml:3:22: error: from: refers to unknown layer 'imgae' — did you mean 'image'?",
    ),
    (
        "op_with_module_path",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: torch.nn.Linear, out_features: 4}\n",
        "bad.yaml:3:10: error: unknown op 'torch.nn.Linear' — did you mean 'Linear'? a spec names ops without a module path and imports nothing",
    ),
    (
        "op_importing_code",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: os.system, args: [echo hi]}\n",
        "bad.yaml:3:10: error: unknown op 'os.system' — a spec imports nothing: ops are torch.nn class names or functional ops",
    ),
    (
        "op_named_use",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: a, op: use, hidden_size: 4}\n",
        "bad.yaml:3:19: error: unknown op 'use' — ops are torch.nn class names or functional ops (docs/spec.md, \"Functional ops\")",
    ),
    (
        "unknown_op",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Conv2D, out_channels: 3}\n",
        "bad.yaml:3:10: error: unknown op 'Conv2D' — did you mean 'Conv2d'? ops are torch.nn class names or functional ops (docs/spec.md, \"Functional ops\")",
    ),
    (
        "unknown_op_far",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Frobnicate}\n",
        "bad.yaml:3:10: error: unknown op 'Frobnicate' — ops are torch.nn class names or functional ops (docs/spec.md, \"Functional ops\")",
    ),
    (
        "unknown_argument",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_feature: 10}\n",
        "bad.yaml:3:18: error: Linear has no argument 'out_feature' — did you mean 'out_features' or 'in_features'?",
    ),
    (
        "duplicate_key",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 10, out_features: 5}\n",
        "bad.yaml:3:36: error: duplicate key 'out_features' (first at line 3) — YAML would silently keep only the last one; remove one of them",
    ),
    (
        "duplicate_layer_name",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: fc, op: Linear, out_features: 10}\n  - {name: fc, op: Linear, out_features: 5}\n",
        "bad.yaml:4:12: error: duplicate layer name 'fc' (first at line 3)",
    ),
    (
        "from_unknown",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: fc1, op: Linear, out_features: 10}\n  - {op: add, from: [fc1, fc_2]}\n",
        "bad.yaml:4:21: error: from: refers to unknown layer 'fc_2' — layers may only take inputs from layers above them",
    ),
    (
        "from_later_layer",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: a, op: relu, from: b}\n  - {name: b, op: relu}\n",
        "bad.yaml:3:31: error: from: refers to 'b', which is defined below it (line 4) — layers run in file order; move it above",
    ),
    (
        "alias",
        "vars: &v {n: 3}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: *v}\n",
        "bad.yaml:4:32: error: YAML aliases (*name) are not supported in specs — write the value out, or use vars: and ${name}",
    ),
    (
        "python_tag",
        "input: {shape: [1, 3]}\nlayers:\n  - !!python/object/apply:os.system [echo hi]\n",
        "bad.yaml:3:5: error: YAML tag '!!python/object/apply:os.system' is not allowed in a spec — specs hold plain data only: mappings, lists, numbers, strings",
    ),
    (
        "yaml_syntax",
        "input: {shape: [1, 3]\nlayers:\n  - {op: relu}\n",
        "bad.yaml:2:1: error: invalid YAML: expected ',' or '}', but got '<scalar>'",
    ),
    ("empty_file", "", "bad.yaml:1:1: error: the file holds no model — see configs/lenet.yaml for an example"),
    (
        "only_comment",
        "# nothing here\n",
        "bad.yaml:1:1: error: the file holds no model — see configs/lenet.yaml for an example",
    ),
    (
        "unknown_var",
        "vars: {classes: 10}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${clases}'}\n",
        "bad.yaml:4:32: error: unknown var 'clases' — did you mean 'classes'?",
    ),
    (
        "expression_call",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: \"${__import__('os')}\"}\n",
        "bad.yaml:3:32: error: call is not allowed in ${__import__('os')} — expressions take numbers, true/false, vars, + - * / // % **, min()/max(), comparisons, and/or/not, a if cond else b",
    ),
    (
        "expression_attribute",
        "vars: {n: 3}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${n.real}'}\n",
        "bad.yaml:4:32: error: attribute is not allowed in ${n.real} — expressions take numbers, true/false, vars, + - * / // % **, min()/max(), comparisons, and/or/not, a if cond else b",
    ),
    (
        "expression_syntax",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${3 +}'}\n",
        "bad.yaml:3:32: error: cannot parse expression ${3 +} — use numbers, true/false, vars, + - * / // % **, min()/max(), comparisons, and/or/not, a if cond else b",
    ),
    (
        "huge_exponent",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${10 ** 10000}'}\n",
        "bad.yaml:3:32: error: exponent 10000 too large in ${10 ** 10000} — exponents are capped at 256",
    ),
    (
        "var_cycle",
        "vars: {a: '${b}', b: '${a}'}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${a}'}\n",
        "bad.yaml:1:11: error: vars refer to each other in a cycle: a -> b -> a",
    ),
    (
        "missing_required_argument",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: head, op: Linear}\n",
        "bad.yaml:3:5: error: Linear: missing a required argument: 'out_features' — Linear(in_features, out_features, bias=True)",
    ),
    (
        "too_many_positional",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: ReLU, args: [true, 2]}\n",
        "bad.yaml:3:22: error: ReLU: too many positional arguments — ReLU(inplace=False)",
    ),
    (
        "args_not_a_list",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, args: 10}\n",
        "bad.yaml:3:24: error: args: must be a list of positional arguments — e.g. args: [1, 6, 5]",
    ),
    (
        "two_models_no_choice",
        "name: A\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n---\nname: B\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n",
        "bad.yaml:5:1: error: the file holds 2 models: A, B — pick one with --model NAME",
    ),
    (
        "unknown_model_key",
        "input: {shape: [1, 3]}\nlayer:\n  - {op: relu}\n",
        "bad.yaml:2:1: error: unknown model key 'layer' — did you mean 'layers'?",
    ),
    (
        "zero_in_shape",
        "input: {shape: [1, 0]}\nlayers:\n  - {op: relu}\n",
        "bad.yaml:1:16: error: shape [1, 0] has 0; every size must be a positive integer",
    ),
    (
        "shape_not_a_list",
        "input: {shape: 1x3}\nlayers:\n  - {op: relu}\n",
        "bad.yaml:1:16: error: shape must be a non-empty list of sizes, not '1x3' — e.g. [1, 3, 32, 32]",
    ),
    (
        "unknown_dtype",
        "input: {shape: [5], dtype: long}\nlayers:\n  - {op: relu}\n",
        "bad.yaml:1:28: error: unknown dtype 'long' — did you mean 'int64'?",
    ),
    (
        "bad_range",
        "input: {shape: [5], dtype: int64, range: [9, 0]}\nlayers:\n  - {op: relu}\n",
        "bad.yaml:1:42: error: range: must be [low, high) with integers low < high",
    ),
    (
        "no_layers",
        "input: {shape: [1, 3]}\n",
        "bad.yaml:1:1: error: the model has no layers: — add a list of layers, e.g. - {op: Linear, out_features: 10}",
    ),
    (
        "layers_not_a_list",
        "input: {shape: [1, 3]}\nlayers: {op: relu}\n",
        "bad.yaml:2:9: error: layers: must be a non-empty list",
    ),
    (
        "spec_is_a_list",
        "- {op: relu}\n",
        "bad.yaml:1:1: error: a spec must be a mapping with name:, input: and layers:",
    ),
    (
        "reserved_layer_name",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: forward, op: relu}\n",
        "bad.yaml:3:12: error: layer name 'forward' is reserved: an attribute every torch module has — pick another name",
    ),
    (
        "dotted_layer_name",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: a.b, op: relu}\n",
        "bad.yaml:3:12: error: layer name 'a.b' must be letters, digits or _ — dots are added by nesting",
    ),
    (
        "device_argument",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 3, device: cuda}\n",
        "bad.yaml:3:35: error: Linear argument 'device' is set by layerscope — use --device / --dtype on the command line",
    ),
    (
        "functional_missing_argument",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: softmax}\n",
        "bad.yaml:3:5: error: softmax: missing a required argument: 'dim' — softmax(dim)",
    ),
    (
        "use_unknown_layer",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: fc, op: Linear, out_features: 3}\n  - {use: fcc}\n",
        "bad.yaml:4:5: error: use: refers to unknown layer 'fcc' — did you mean 'fc'?",
    ),
    (
        "use_with_arguments",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: fc, op: Linear, out_features: 3}\n  - {use: fc, out_features: 4}\n",
        "bad.yaml:4:15: error: a `use:` layer takes only name: and from:, not out_features: — `use:` calls an existing layer again with its own arguments",
    ),
    (
        "cannot_infer_channels",
        "input: {shape: [3]}\nlayers:\n  - {op: Conv2d, out_channels: 4, kernel_size: 3}\n",
        "bad.yaml:3:5: error: cannot infer Conv2d.in_channels (the input's channel dim) from an input of shape 3 — its input has too few dims; write in_channels: explicitly or reshape first",
    ),
    (
        "torch_rejects_argument",
        "input: {shape: [1, 3, 8, 8]}\nlayers:\n  - {op: Conv2d, out_channels: 4, kernel_size: 3, groups: 2}\n",
        "bad.yaml:3:5: error: Conv2d: in_channels must be divisible by groups",
    ),
    (
        "layers_on_non_sequential",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 3, layers: [{op: relu}]}\n",
        "bad.yaml:3:35: error: layers: goes with op: Sequential, not Linear",
    ),
    (
        "two_inputs_to_relu",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: a, op: relu}\n  - {op: relu, from: [a, input]}\n",
        "bad.yaml:4:22: error: relu takes one input, but from: names 2 — merge first with add, mul or cat",
    ),
    (
        "no_op",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: nothing}\n",
        "bad.yaml:3:5: error: layer has no op: — e.g. op: Linear, op: relu, or use: other_layer",
    ),
    (
        "layer_not_mapping",
        "input: {shape: [1, 3]}\nlayers:\n  - relu\n",
        "bad.yaml:3:5: error: each layer must be a mapping like {op: Linear, out_features: 10}",
    ),
    (
        "no_input",
        "layers:\n  - {op: relu}\n",
        "bad.yaml:1:1: error: bad declares no input: and none was given — add input: {shape: [...]} or pass --input, e.g. --input 1x3x32x32",
    ),
    (
        "non_string_key",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: relu, 1: 2}\n",
        "bad.yaml:3:16: error: mapping key 1 is not a string — quote it",
    ),
    (
        "yaml_exponent_as_text",
        "input: {shape: [1, 3, 4, 4]}\nlayers:\n  - {op: BatchNorm2d, eps: 1e-5}\n",
        "bad.yaml:3:28: error: BatchNorm2d eps: '1e-5' is text, not a number — it is text: drop the quotes, and write exponents with a dot (1.0e-3), which YAML 1.1 needs to read a number",
    ),
    (
        "yaml_exponent_positional",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, args: [3, 1e1]}\n",
        "bad.yaml:3:28: error: Linear out_features: '1e1' is text, not a number — it is text: drop the quotes, and write exponents with a dot (1.0e-3), which YAML 1.1 needs to read a number",
    ),
    (
        "yaml_no_as_false_name",
        "input: {shape: [1, 3]}\nlayers:\n  - {name: no, op: relu}\n",
        "bad.yaml:3:12: error: layer name False must be letters, digits or _ — YAML 1.1 reads yes/no/on/off/true/false as booleans; quote it to keep it as text",
    ),
    (
        "yaml_off_as_false_text_argument",
        "input: {shape: [5, 1, 3]}\nlayers:\n  - {op: RNN, hidden_size: 4, nonlinearity: off}\n",
        "bad.yaml:3:45: error: RNN nonlinearity: False is a boolean, not text — YAML 1.1 reads yes/no/on/off/true/false as booleans; quote it to keep it as text",
    ),
    (
        "yaml_date",
        "name: 2024-01-01\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n",
        "bad.yaml:1:7: error: YAML reads '2024-01-01' as a date — quote it to keep it as text",
    ),
    (
        "yaml_binary",
        "name: !!binary aGVsbG8=\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n",
        "bad.yaml:1:7: error: YAML !!binary values are not allowed in a spec — specs hold mappings, lists, numbers, strings and booleans",
    ),
    (
        "negative_dim",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: -3}\n",
        "bad.yaml:3:32: error: Linear out_features must be a positive whole number, got -3",
    ),
    (
        "zero_dim",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 0}\n",
        "bad.yaml:3:32: error: Linear out_features must be a positive whole number, got 0",
    ),
    (
        "fractional_dim",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 2.5}\n",
        "bad.yaml:3:32: error: Linear out_features must be a positive whole number, got 2.5",
    ),
    (
        "quoted_dim",
        "input: {shape: [5, 1, 3]}\nlayers:\n  - {op: LSTM, hidden_size: '8'}\n",
        "bad.yaml:3:29: error: LSTM hidden_size must be a positive whole number, got '8' — it is text: drop the quotes, and write exponents with a dot (1.0e-3), which YAML 1.1 needs to read a number",
    ),
    (
        "zero_in_kernel",
        "input: {shape: [1, 3, 8, 8]}\nlayers:\n  - {op: Conv2d, out_channels: 4, kernel_size: [3, 0]}\n",
        "bad.yaml:3:48: error: Conv2d kernel_size must be positive whole numbers, got [3, 0]",
    ),
    (
        "fractional_input_dim",
        "input: {shape: [1, 3e2]}\nlayers:\n  - {op: relu}\n",
        "bad.yaml:1:16: error: shape [1, '3e2'] has '3e2'; every size must be a positive integer — it is text: drop the quotes, and write exponents with a dot (1.0e-3), which YAML 1.1 needs to read a number",
    ),
    (
        "infinite_expression",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${1e308 * 10}'}\n",
        "bad.yaml:3:32: error: ${1e308 * 10} is not a finite number",
    ),
    (
        "huge_integer_expression",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${10 ** 200}'}\n",
        "bad.yaml:3:32: error: ${10 ** 200} is out of range — results must fit in a 64-bit integer",
    ),
    (
        "long_expression",
        "input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1}'}\n",
        "bad.yaml:3:32: error: expression of 219 characters is too long — keep ${...} under 200 characters; use vars: for parts",
    ),
    (
        "expression_subscript",
        "vars: {n: 3}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${n[0]}'}\n",
        "bad.yaml:4:32: error: subscript is not allowed in ${n[0]} — expressions take numbers, true/false, vars, + - * / // % **, min()/max(), comparisons, and/or/not, a if cond else b",
    ),
    (
        "expression_string_var",
        "vars: {n: abc}\ninput: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: '${n * 2}'}\n",
        "bad.yaml:4:32: error: ${n * 2} uses 'abc', which is not a number",
    ),
    # blocks, repeat, when, tie
    (
        "all_off",
        "input: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, when: false}\n",
        "bad.yaml:3:3: error: every layer of this list is switched off by when:",
    ),
    (
        "block_args",
        "input: {shape: [1, 4]}\nblocks:\n  B: {layers: [{op: relu}]}\nlayers:\n  - {op: B, args: [1]}\n",
        "bad.yaml:5:13: error: block B takes named params, not args:",
    ),
    (
        "block_is_op",
        "input: {shape: [1, 4]}\nblocks:\n  Linear: {layers: [{op: relu}]}\nlayers:\n  - {op: Linear, out_features: 3}\n",
        "bad.yaml:3:3: error: block name 'Linear' is already an op — pick another name",
    ),
    (
        "block_key",
        "input: {shape: [1, 4]}\nblocks:\n  B: {layer: [{op: relu}]}\nlayers:\n  - {op: B}\n",
        "bad.yaml:3:7: error: unknown block key 'layer' — did you mean 'layers'?",
    ),
    (
        "block_nolayers",
        "input: {shape: [1, 4]}\nblocks:\n  B: {params: {}}\nlayers:\n  - {op: B}\n",
        "bad.yaml:3:6: error: block B needs a non-empty layers: list",
    ),
    (
        "cond_text",
        'vars: {n: 2}\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: "${4 if n else 2}"}\n',
        "bad.yaml:4:32: error: ${4 if n else 2} uses 2 as a condition — conditions are comparisons or true/false",
    ),
    (
        "inputs_count",
        "input: {shape: [1, 4]}\nblocks:\n  Pair: {inputs: [a, b], layers: [{op: add, from: [a, b]}]}\nlayers:\n  - {op: Pair}\n",
        "bad.yaml:5:5: error: block Pair takes 2 input(s) (a, b), but gets 1 — name them with from: [a, b]",
    ),
    (
        "missing_param",
        'input: {shape: [1, 4]}\nblocks:\n  B: {params: {width: null}, layers: [{op: Linear, out_features: "${width}"}]}\nlayers:\n  - {op: B}\n',
        "bad.yaml:5:5: error: block B needs width: — B params: width",
    ),
    (
        "off_two",
        "input: {shape: [1, 4]}\nlayers:\n  - {name: a, op: Linear, out_features: 4}\n  - {name: b, op: add, from: [a, input], when: false}\n",
        "bad.yaml:4:30: error: a layer switched off by when: passes its input on, so it takes one input",
    ),
    (
        "recursion",
        "input: {shape: [1, 4]}\nblocks:\n  A: {layers: [{op: B}]}\n  B: {layers: [{op: A}]}\nlayers:\n  - {op: A}\n",
        "bad.yaml:4:21: error: block A contains itself: A -> B -> A",
    ),
    (
        "repeat_zero",
        "input: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, repeat: 0}\n",
        "bad.yaml:3:43: error: repeat: must be a positive whole number, got 0",
    ),
    (
        "tie_param",
        "input: {shape: [1, 4]}\nlayers:\n  - {name: a, op: Linear, out_features: 4}\n  - {name: b, op: Linear, out_features: 4, tie: {weigth: a.weight}}\n",
        "bad.yaml:4:58: error: tie: Linear has no parameter 'weigth' — did you mean 'weight'?",
    ),
    (
        "tie_relu",
        "input: {shape: [1, 4]}\nlayers:\n  - {op: relu, tie: {weight: x.weight}}\n",
        "bad.yaml:3:21: error: tie: cannot tie relu: relu has no parameters — tie a layer with fixed sizes",
    ),
    (
        "tie_shape",
        "input: {shape: [1, 4]}\nlayers:\n  - {name: a, op: Linear, out_features: 8}\n  - {name: b, op: Linear, out_features: 4, tie: {weight: a.weight}}\n",
        "bad.yaml:4:58: error: tie: a.weight is 8x4 but b.weight is 4x8 — tied parameters must have the same shape",
    ),
    (
        "tie_target",
        "input: {shape: [1, 4]}\nlayers:\n  - {name: a, op: Linear, out_features: 4}\n  - {name: b, op: Linear, out_features: 4, tie: {weight: a.wieght}}\n",
        "bad.yaml:4:58: error: tie: no parameter 'a.wieght' is defined above — did you mean 'a.weight'?",
    ),
    (
        "unknown_i",
        'input: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: "${i + 1}"}\n',
        "bad.yaml:3:32: error: unknown var 'i' — i is the index of a repeat: and exists only in a repeated layer",
    ),
    (
        "unknown_param",
        'input: {shape: [1, 4]}\nblocks:\n  B: {params: {width: null}, layers: [{op: Linear, out_features: "${width}"}]}\nlayers:\n  - {op: B, widht: 3}\n',
        "bad.yaml:5:13: error: block B has no param 'widht' — did you mean 'width'?",
    ),
    (
        "when_number",
        "input: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, when: 3}\n",
        'bad.yaml:3:41: error: when: must be true or false, got 3 — a condition such as "${i == 0}" or "${down}"',
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), SPECS, ids=[s[0] for s in SPECS])
def test_bad_spec_gets_one_positioned_line(cli, tmp_path: Path, case: str, text: str, expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    run = cli("inspect", "bad.yaml", cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr == expected + "\n"


def test_billion_laughs_fails_fast(cli, tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)
    ]
    (tmp_path / "bad.yaml").write_text("\n".join(lines) + "\n")
    run = cli("inspect", "bad.yaml", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (
        2,
        "bad.yaml:2:8: error: YAML aliases (*name) are not supported in specs — write the value out, or use vars: and ${name}\n",
    )


def test_oversized_file(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("# " + "x" * (1 << 20) + "\n")
    run = cli("inspect", "bad.yaml", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (
        2,
        "bad.yaml:1:1: error: the file is over 1,048,576 bytes"
        " — the limit is 1,048,576 bytes; set LAYERSCOPE_MAX_SPEC_BYTES to change it\n",
    )


def test_non_utf8_file(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"name: \xff\xfe\n")
    run = cli("inspect", "bad.yaml", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (2, "bad.yaml:1:1: error: not UTF-8 text (byte 6) — save the file as UTF-8\n")


def test_directory_as_spec(cli, tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    run = cli("shapes", "specs", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (
        2,
        "specs:1:1: error: is a directory, not a spec file — name a .yaml file inside it\n",
    )


ARGUMENT_ERRORS = [
    (
        ["inspect", "missing.yaml"],
        "layerscope: error: missing.yaml: no such file — `layerscope list` shows the bundled specs",
    ),
    (["inspect", "lenett.yml"], "layerscope: error: lenett.yml: no such file — did you mean 'lenet' or 'alexnet'?"),
    (
        ["inspect", "lenett"],
        "layerscope: error: 'lenett' is neither a file nor a bundled spec — did you mean 'lenet' or 'alexnet'?",
    ),
    (
        ["inspect", "lenet", "--input", "1xa"],
        "layerscope: error: --input '1xa': not a shape — write sizes joined by x, e.g. --input 1x3x32x32 or --input 5:int64",
    ),
    (
        ["inspect", "lenet", "--input", "1x0x32x32"],
        "layerscope: error: --input '1x0x32x32': every size must be a positive integer — write sizes joined by x, e.g. --input 1x3x32x32 or --input 5:int64",
    ),
    (
        ["shapes", "lenet", "--input", "5:int46"],
        "layerscope: error: --input '5:int46': unknown dtype 'int46' — did you mean 'int64' or 'int16' or 'int8'?",
    ),
    (
        ["inspect", "lenet", "--set", "clases=3"],
        "layerscope: error: --set clases: the model has no var 'clases' — did you mean 'classes'?",
    ),
    (
        ["inspect", "lenet", "--set", "classes"],
        "layerscope: error: --set 'classes': expected NAME=VALUE — e.g. --set classes=100",
    ),
    (
        ["inspect", "lenet", "--dtype", "int8"],
        "layerscope: error: --dtype 'int8' is not a floating dtype, as parameters need — float32, float64, float16, bfloat16 (or fp32, fp16, bf16, half)",
    ),
    (
        ["params", "lenet", "--device", "tpu"],
        "layerscope: error: unknown device 'tpu' — use auto, cpu or meta (or cuda where there is a GPU)",
    ),
]


@pytest.mark.parametrize(("args", "expected"), ARGUMENT_ERRORS, ids=[" ".join(a) for a, _ in ARGUMENT_ERRORS])
def test_bad_arguments_get_one_line(cli, tmp_path: Path, args: list[str], expected: str) -> None:
    run = cli(*args, cwd=tmp_path)
    assert (run.exit_code, run.stdout, run.stderr) == (2, "", expected + "\n")


def test_unknown_model_names_the_file(cli, tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text(
        "name: A\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n---\nname: B\ninput: {shape: [1, 3]}\nlayers: [{op: relu}]\n"
    )
    run = cli("inspect", "two.yaml", "--model", "C", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (2, "two.yaml:1:1: error: no model named 'C' — models here: A, B\n")
    picked = cli("inspect", "two.yaml", "--model", "B", cwd=tmp_path)
    assert picked.exit_code == 0 and "B — layers" in picked.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("layers: [{op: Frobnicate}]\n")
    from typer.testing import CliRunner

    from layerscope.cli import app

    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "bad.yaml"), "--debug"])
    assert type(result.exception).__name__ == "SpecError"


def test_yaml_bool_surprise_is_read_as_yaml_says(cli, tmp_path: Path) -> None:
    # YAML 1.1 reads `no` as false, which is what bias: wants; it builds without complaint
    (tmp_path / "ok.yaml").write_text("input: {shape: [1, 3]}\nlayers:\n  - {op: Linear, out_features: 3, bias: no}\n")
    run = cli("params", "ok.yaml", "--format", "json", cwd=tmp_path)
    assert run.exit_code == 0 and '"weight"' not in run.stdout and "linear.bias" not in run.stdout
