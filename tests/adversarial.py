"""The adversarial catalogue: hostile specs and command lines, each with the exit code and the one
line layerscope must answer with (tests/test_adversarial.py runs them; docs/security.md says what
each class of case holds layerscope to).

A case's spec is written to `s.yaml` in an empty directory, and `{spec}` in its arguments names it.
`message` is a regular expression the whole of stderr must match (one line); None for runs that
end in a report (stdout is then checked for what must not reach a terminal).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # names, text, numbers, budgets, reads, codegen, python
    spec: str | None
    args: tuple[str, ...] = ("inspect", "{spec}")
    code: int = 2
    message: str | None = None
    forbidden: tuple[str, ...] = field(default=())  # substrings stdout must not hold (raw escapes, markup)
    shown: tuple[str, ...] = field(default=())  # substrings stdout must hold (the text, shown literally)
    subprocess: bool = False  # run in a child process under resource limits (budgets)
    env: tuple[tuple[str, str], ...] = ()  # environment variables for the run


def model(layers: str, *, head: str = "name: m\ninput: {shape: [1, 4]}\n", extra: str = "") -> str:
    return head + extra + "layers:\n" + layers


LINEAR = "  - {op: Linear, out_features: 2}\n"


def layer_named(name: str) -> str:
    return model(f"  - {{op: Linear, out_features: 2, name: {name}}}\n")


# --- names: every name a layer may not take, refused at its position ---------------------------------
RESERVED = [
    "forward", "training", "_modules", "_parameters", "_buffers", "_forward_hooks", "__class__", "__init__",
    "__dict__", "__getattr__", "state_dict", "parameters", "type_name", "nodes", "input_names", "to", "cuda",
    "half", "register_buffer", "add_module", "call_super_init", "dump_patches", "__weakref__", "T_destination",
]  # fmt: skip
NAMES = (
    [
        Case(
            f"reserved layer name {n}",
            "names",
            layer_named(n),
            message=rf"s\.yaml:4:\d+: error: layer name '{n}' is reserved: an attribute every torch module has — pick another name",
        )
        for n in RESERVED
    ]
    + [
        Case(
            f"layer name {label}",
            "names",
            layer_named(text),
            message=r"s\.yaml:4:\d+: error: layer name .* must be letters, digits or _ — .*",
        )
        for label, text in [
            ("with a dot", "a.b"),
            ("with a space", "'a b'"),
            ("with a dash", "a-b"),
            ("non-ASCII", "ä"),
            ("empty", "''"),
            ("with a trailing newline", '"ab\\n"'),
            ("with a right-to-left override", '"ab\\u202e"'),
            ("with an escape sequence", '"\\e[31mred"'),
            ("with rich markup", "'[bold]x'"),
            ("with a format field", "'{0}'"),
            ("a list", "[a, b]"),
            ("a mapping", "{a: 1}"),
        ]
    ]
    + [
        Case(
            "a layer named like an input",
            "names",
            model("  - {op: Linear, out_features: 2, name: input}\n"),
            message=r"s\.yaml:4:\d+: error: layer name 'input' is reserved: an input's name — pick another name",
        ),
        Case(
            "a block named like a torch class",
            "names",
            model("  - {op: Linear, out_features: 2}\n", extra="blocks:\n  Linear:\n    layers:\n      - {op: relu}\n"),
            message=r"s\.yaml:4:3: error: block name 'Linear' is already an op — pick another name",
        ),
    ]
)

# --- text: untrusted text reaches the terminal and documents inert -----------------------------------
ESCAPES = ["\x1b", "\x07", "\x9b", "\u202e"]
HOSTILE_TEXT = [
    ("rich closing tag", "'[/]'", "[/]"),
    ("rich style markup", "'[bold red]loud[/bold red]'", "[bold red]loud[/bold red]"),
    ("rich link markup", "'[link=https://evil.example]click[/link]'", "[link=https://evil.example]click[/link]"),
    ("an SGR escape sequence", '"\\e[31mred\\e[0m"', "\\x1b[31mred\\x1b[0m"),
    ("an OSC 8 hyperlink", '"\\e]8;;https://evil.example\\e\\\\link\\e]8;;\\e\\\\"', "\\x1b]8;;https://evil.example"),
    ("a bell", '"ding\\a"', "ding\\x07"),
    ("a C1 control", '"a\\x9bb"', "a\\x9bb"),
    ("a right-to-left override", '"abc\\u202edef"', "abc\\u202edef"),
    ("a lone surrogate", '"bad\\udc80"', "bad\\udc80"),
    ("a newline", '"two\\nlines"', "two"),
    ("HTML", "'<script>alert(1)</script>'", "<script>alert(1)</script>"),
    ("pipes", "'a|b|c'", "a|b|c"),
]
TEXT = (
    [
        Case(
            f"model name holding {label} ({fmt})",
            "text",
            f"name: {yaml}\ninput: {{shape: [1, 4]}}\nlayers:\n{LINEAR}",
            args=("inspect", "{spec}", "--format", fmt),
            code=0,
            forbidden=(*ESCAPES, *(["<script>", "a|b|c"] if fmt == "markdown" else [])),
            shown=(shown,) if fmt == "table" else (),
        )
        for label, yaml, shown in HOSTILE_TEXT
        for fmt in ("table", "markdown")
    ]
    + [
        Case(
            f"model name holding {label} (csv)",
            "text",
            f"name: {yaml}\ninput: {{shape: [1, 4]}}\nlayers:\n{LINEAR}",
            args=("inspect", "{spec}", "--format", "csv"),
            code=0,
            forbidden=tuple(ESCAPES),
        )
        for label, yaml, _ in HOSTILE_TEXT[3:9]
    ]
    + [
        Case(
            f"a spreadsheet formula as the model name ({formula[0]})",
            "text",
            f"name: '{formula}'\ninput: {{shape: [1, 4]}}\nlayers:\n{LINEAR}",
            args=("inspect", "{spec}", "--format", "csv"),
            code=0,
            shown=(f"'{formula},",),
        )
        for formula in ("=HYPERLINK(A1)", "+1+cmd|calc", "-2+3", "@SUM(A1)")
    ]
    + [
        Case(
            f"description holding {label}",
            "text",
            f"name: m\ndescription: {yaml}\ninput: {{shape: [1, 4]}}\nlayers:\n{LINEAR}",
            args=("list",),
            code=0,
            forbidden=tuple(ESCAPES),
        )
        for label, yaml, _ in HOSTILE_TEXT[:4]
    ]
    + [
        Case(
            f"an error message quoting {label}",
            "text",
            model(f"  - {{op: {yaml}}}\n"),
            message=r"s\.yaml:4:\d+: error: unknown op .*",
        )
        for label, yaml, _ in HOSTILE_TEXT
        if label not in ("a newline",)
    ]
    + [
        Case(
            "an error message quoting a newline",
            "text",
            model('  - {op: "Lin\\near"}\n'),
            message=r"s\.yaml:4:\d+: error: unknown op 'Lin\\near' — .*",
        ),
    ]
)

# --- numbers at the edges ---------------------------------------------------------------------------
BIG = "99999999999999999999999999999999999999999999999999"
NUMBERS = [
    Case(
        "out_features past int64",
        "numbers",
        model(f"  - {{op: Linear, out_features: {BIG}}}\n"),
        message=rf"s\.yaml:4:\d+: error: Linear out_features: {BIG} does not fit in a 64-bit integer",
    ),
    Case(
        "a kernel size past int64 in a list",
        "numbers",
        model(
            f"  - {{op: Conv1d, out_channels: 2, kernel_size: [{BIG}]}}\n", head="name: m\ninput: {shape: [1, 4, 8]}\n"
        ),
        message=r"s\.yaml:4:\d+: error: Conv1d kernel_size: \d+ does not fit in a 64-bit integer",
    ),
    Case(
        "an input size past int64",
        "numbers",
        f"name: m\ninput: {{shape: [1, {BIG}]}}\nlayers:\n{LINEAR}",
        message=r"s\.yaml:2:\d+: error: shape 1x\d+ has [\d.e+]+ elements — the limit is [\d,]+ elements; set LAYERSCOPE_MAX_INPUT_ELEMENTS to change it",
    ),
    Case(
        "--input past int64",
        "numbers",
        model(LINEAR),
        args=("inspect", "{spec}", "--input", f"1x{BIG}"),
        message=r"layerscope: error: --input '1x\d+' has [\d.e+]+ elements — the limit .*LAYERSCOPE_MAX_INPUT_ELEMENTS.*",
    ),
    Case(
        "a range past int64",
        "numbers",
        f"name: m\ninput: {{shape: [1, 4], dtype: int64, range: [0, {BIG}]}}\nlayers:\n  - {{op: Embedding, num_embeddings: 10, embedding_dim: 2}}\n",
        message=r"s\.yaml:2:\d+: error: range: must be \[low, high\) with integers low < high",
    ),
    Case(
        "an expression past int64",
        "numbers",
        model("  - {op: Linear, out_features: '${2**63}'}\n"),
        message=r"s\.yaml:4:\d+: error: \$\{2\*\*63\} is out of range — results must fit in a 64-bit integer",
    ),
    Case(
        "a huge exponent",
        "numbers",
        model("  - {op: Linear, out_features: '${9**9**9}'}\n"),
        message=r"s\.yaml:4:\d+: error: exponent \d+ too large in .* — exponents are capped at 256",
    ),
    Case(
        "an infinite size",
        "numbers",
        model("  - {op: Linear, out_features: .inf}\n"),
        message=r"s\.yaml:4:\d+: error: Linear out_features must be a positive whole number, got inf",
    ),
    Case(
        "a NaN size",
        "numbers",
        model("  - {op: Linear, out_features: .nan}\n"),
        message=r"s\.yaml:4:\d+: error: Linear out_features must be a positive whole number, got nan",
    ),
    Case(
        "a zero size",
        "numbers",
        model("  - {op: Linear, out_features: 0}\n"),
        message=r"s\.yaml:4:\d+: error: Linear out_features must be a positive whole number, got 0",
    ),
    Case(
        "a negative input size",
        "numbers",
        f"name: m\ninput: {{shape: [1, -4]}}\nlayers:\n{LINEAR}",
        message=r"s\.yaml:2:\d+: error: shape \[1, -4\] has -4; every size must be a positive integer",
    ),
    Case(
        "--set past int64",
        "numbers",
        model("  - {op: Linear, out_features: '${n}'}\n", extra="vars:\n  n: 2\n"),
        args=("inspect", "{spec}", "--set", f"n={BIG}"),
        message=r"s\.yaml:6:\d+: error: Linear out_features: \d+ does not fit in a 64-bit integer",
    ),
    Case(
        "a float too large for a float",
        "numbers",
        model("  - {op: Dropout, p: 1e999}\n"),
        message=r"s\.yaml:4:\d+: error: Dropout p: '1e999' is text, not a number — .*",
    ),
    Case(
        "the largest int64 as a size, on meta",
        "numbers",
        model(f"  - {{op: Linear, out_features: {2**63 - 1}}}\n"),
        args=("inspect", "{spec}", "--device", "meta"),
        message=r"s\.yaml:4:\d+: error: Linear: .*",
    ),
]


# --- budgets: every unbounded piece of work stops before it starts (run in a child process) -----------
def _doubling(levels: int) -> str:
    lines = ["name: bomb", "vars:", "  v0: xxxxxxxxxxxxxxxx"]
    lines += [f"  v{i}: '{''.join('${v' + str(i - 1) + '}' for _ in range(8))}'" for i in range(1, levels)]
    return "\n".join(lines) + "\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR


def _fan(levels: int, width: int = 2) -> str:
    lines = ["name: fan", "input: {shape: [1, 4]}", "blocks:", "  b0:", "    layers:", "      - {op: relu}"]
    for i in range(1, levels + 1):
        lines += [f"  b{i}:", "    layers:", *[f"      - {{op: b{i - 1}}}"] * width]
    return "\n".join(lines) + f"\nlayers:\n  - {{op: b{levels}}}\n"


def _var_chain(n: int) -> str:  # v0 needs v1 needs v2 ...: evaluated depth-first
    lines = ["name: chain", "vars:"] + [f"  v{i}: '${{v{i + 1}}}'" for i in range(n)] + [f"  v{n}: 3"]
    return "\n".join(lines) + "\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: '${v0}'}\n"


BUDGET = dict(kind="budgets", subprocess=True)
BUDGETS = [
    Case(
        "vars doubling a string",
        spec=_doubling(8),
        message=r"s\.yaml:\d+:\d+: error: this string would be [\d,]+ characters long — the limit is 4,096 characters; set LAYERSCOPE_MAX_STRING to change it",
        **BUDGET,
    ),
    Case(
        "repeat: a billion",
        spec=model("  - {op: Linear, out_features: 4, repeat: 1000000000}\n"),
        message=r"s\.yaml:4:\d+: error: repeat: 1,000,000,000 expands the spec to more than 20,000 layers — .*LAYERSCOPE_MAX_LAYERS.*",
        **BUDGET,
    ),
    Case(
        "repeats nested in repeats",
        spec=model("  - repeat: 1000\n    layers:\n      - {op: relu, repeat: 1000}\n"),
        message=r"s\.yaml:\d+:\d+: error: repeat: 1,000 expands the spec to more than 20,000 layers — .*",
        **BUDGET,
    ),
    Case(
        "30,000 layers written out",
        spec=model("  - {op: relu}\n" * 30000),
        message=r"s\.yaml:4:3: error: this list takes the spec past 20,000 layers — .*LAYERSCOPE_MAX_LAYERS.*",
        **BUDGET,
    ),
    Case(
        "blocks fanning out 20 levels",
        spec=_fan(20),
        message=r"s\.yaml:\d+:\d+: error: the spec expands to more than 20,000 layers — .*LAYERSCOPE_MAX_LAYERS.*",
        **BUDGET,
    ),
    Case(
        "blocks fanning out 40 levels",
        spec=_fan(40),
        message=r"s\.yaml:\d+:\d+: error: layers nest more than 32 levels deep — .*LAYERSCOPE_MAX_NESTING.*",
        **BUDGET,
    ),
    Case(
        "400 blocks nested",
        spec=_fan(400, width=1),
        message=r"s\.yaml:\d+:\d+: error: layers nest more than 32 levels deep — .*",
        **BUDGET,
    ),
    Case(
        "30,000 nested flow lists",
        spec="name: x\ninput: {shape: [1, 4]}\nlayers: " + "[" * 30000 + "]" * 30000 + "\n",
        message=r"s\.yaml:3:\d+: error: YAML nested more than 100 levels deep — the limit is 100 levels; set LAYERSCOPE_MAX_YAML_DEPTH to change it",
        **BUDGET,
    ),
    Case(
        "30,000 nested flow mappings",
        spec="name: x\ninput: {shape: [1, 4]}\nlayers: " + "{a: " * 30000 + "1" + "}" * 30000 + "\n",
        message=r"s\.yaml:3:\d+: error: YAML nested more than 100 levels deep — .*",
        **BUDGET,
    ),
    Case(
        "30,000 nested block lists",
        spec="name: x\ninput: {shape: [1, 4]}\nlayers:\n" + "- " * 30000 + "x\n",
        message=r"s\.yaml:4:\d+: error: YAML nested more than 100 levels deep — .*",
        **BUDGET,
    ),
    Case(
        "1,000 indented mappings",
        spec="name: x\ninput: {shape: [1, 4]}\nlayers:\n" + "\n".join(" " * i + "a:" for i in range(1000)) + " 1\n",
        message=r"s\.yaml:\d+:\d+: error: YAML nested more than 100 levels deep — .*",
        **BUDGET,
    ),
    Case(
        "a var chain 1,000 deep",
        spec=_var_chain(1000),
        message=r"s\.yaml:\d+:\d+: error: var 'v\d+' is defined through more than 32 other vars in a chain — .*LAYERSCOPE_MAX_VAR_DEPTH.*",
        **BUDGET,
    ),
    Case(
        "a 2 MB spec",
        spec="# " + "x" * (2 << 20) + "\n",
        message=r"s\.yaml:1:1: error: the file is over 1,048,576 bytes — .*LAYERSCOPE_MAX_SPEC_BYTES.*",
        **BUDGET,
    ),
    Case(
        "an input of 3e10 elements",
        spec=model(LINEAR),
        args=("inspect", "{spec}", "--input", "1x3x100000x100000"),
        message=r"layerscope: error: --input '1x3x100000x100000' has 3e\+10 elements — .*",
        **BUDGET,
    ),
    Case(
        "LazyLinear(10**9) under auto runs on meta",
        spec=model("  - {op: LazyLinear, out_features: 1000000000}\n", head="name: m\ninput: {shape: [1, 64]}\n"),
        code=0,
        **BUDGET,
    ),
    Case(
        "Linear(10**9) on a named CPU",
        spec=model("  - {op: Linear, out_features: 1000000000}\n", head="name: m\ninput: {shape: [1, 64]}\n"),
        args=("inspect", "{spec}", "--device", "cpu"),
        message=r"layerscope: error: the model's tensors on the CPU would pass 8 GiB — use --device meta.*LAYERSCOPE_MAX_CPU_BYTES.*",
        **BUDGET,
    ),
    Case(
        "a 10 GB input on a named CPU",
        spec=model(LINEAR, head="name: m\ninput: {shape: [1, 4]}\n"),
        args=("inspect", "{spec}", "--input", "2500000000x1", "--device", "cpu"),
        message=r"layerscope: error: the model's tensors on the CPU would pass 8 GiB — .*",
        **BUDGET,
    ),
    Case(
        "a long expression",
        spec=model("  - {op: Linear, out_features: '${" + "1+" * 5000 + "1}'}\n"),
        message=r"s\.yaml:4:\d+: error: expression of \d+ characters is too long — .*",
        **BUDGET,
    ),
    Case(
        "an export past its size cap",
        spec=model("  - {op: Linear, out_features: 4, repeat: 100}\n"),
        args=("export", "{spec}"),
        env=(("LAYERSCOPE_MAX_EXPORT_BYTES", "2000"),),
        message=r"layerscope: error: the exported file would pass 2,000 bytes — the limit is 2,000 bytes; set LAYERSCOPE_MAX_EXPORT_BYTES to change it",
        **BUDGET,
    ),
]

# --- reads: only a regular file is read, never blocking ---------------------------------------------
READS = [  # the spec file itself is made by the test (see test_adversarial.READERS)
    ("a directory", r"{path}:1:1: error: is a directory, not a spec file — name a \.yaml file inside it"),
    ("a FIFO", r"{path}:1:1: error: is a FIFO \(named pipe\), not a regular file"),
    ("a symlink to a FIFO", r"{path}:1:1: error: is a FIFO \(named pipe\), not a regular file"),
    ("/dev/zero", r"/dev/zero:1:1: error: is a device, not a regular file"),
    ("/dev/null", r"/dev/null:1:1: error: is a device, not a regular file"),
    ("a missing file", r"layerscope: error: missing\.yaml: no such file — `layerscope list` shows the bundled specs"),
    ("bytes that are not UTF-8", r"{path}:1:1: error: not UTF-8 text \(byte 6\) — save the file as UTF-8"),
    ("an empty file", r"{path}:1:1: error: .*"),
    ("a NUL byte", r"{path}:\d+:\d+: error: invalid YAML: .*"),
    ("a file of only a comment", r"{path}:1:1: error: .*"),
]

# --- codegen: specs whose names and values try to get out of the exported file ----------------------
CODEGEN = [
    (
        "a model name with format fields",
        'name: "{0} {name.__doc__[11]} {self}"\ninput: {shape: [1, 4]}\nlayers:\n' + LINEAR,
    ),
    (
        "a model name closing the docstring",
        'name: "x\\"\\"\\" ; import os; os.system(\'echo pwned\') #"\ninput: {shape: [1, 4]}\nlayers:\n' + LINEAR,
    ),
    (
        "a model name with a newline and code",
        "name: \"m\\nimport os\\nos.system('echo pwned')\"\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR,
    ),
    ("a model name with backslashes", 'name: "a\\\\b\\\\"\ninput: {shape: [1, 4]}\nlayers:\n' + LINEAR),
    ("a model name that is a keyword", "name: class\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR),
    ("a model name that is torch", "name: torch\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR),
    ("a model name that is make_model", "name: make_model\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR),
    ("a model name starting with a digit", "name: '3net'\ninput: {shape: [1, 4]}\nlayers:\n" + LINEAR),
    (
        "inputs named self, torch and add",
        "name: m\ninput:\n  - {name: self, shape: [1, 4]}\n  - {name: torch, shape: [1, 4]}\n  - {name: add, shape: [1, 4]}\nlayers:\n  - {op: add, from: [self, torch, add], name: total}\n  - {op: Linear, out_features: 2}\n",
    ),
    (
        "inputs named x_linear and F",
        "name: m\ninput:\n  - {name: x_linear, shape: [1, 4]}\n  - {name: F, shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, from: x_linear}\n  - {op: add, from: [linear, F], name: total}\n",
    ),
    (
        "blocks named nn, F, tuple and make_model",
        "name: m\ninput: {shape: [1, 4]}\nblocks:\n  nn:\n    layers:\n      - {op: Linear, out_features: 4}\n  F:\n    layers:\n      - {op: relu}\n  tuple:\n    layers:\n      - {op: nn}\n  make_model:\n    layers:\n      - {op: F}\nlayers:\n  - {op: tuple}\n  - {op: make_model}\n",
    ),
    (
        "a block named Tensor with an input named self",
        "name: m\ninput: {shape: [1, 4]}\nblocks:\n  Tensor:\n    inputs: [self]\n    layers:\n      - {op: Linear, out_features: 4, from: self}\nlayers:\n  - {op: Tensor}\n",
    ),
    (
        "numeric layer names",
        "name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, name: '0'}\n  - {op: relu, name: '1'}\n  - {op: Linear, out_features: 2, name: '2'}\n",
    ),
    (
        "layer names colliding with locals",
        "name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, name: x_linear}\n  - {op: Linear, out_features: 4, name: linear}\n  - {op: add, from: [x_linear, linear]}\n",
    ),
    (
        "layer names that are Python keywords",
        "name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, name: class}\n  - {op: Linear, out_features: 4, name: def}\n  - {op: relu, name: lambda}\n",
    ),
    (
        "layer names that are builtins",
        "name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, name: print}\n  - {op: Linear, out_features: 4, name: exec}\n  - {op: relu, name: open}\n",
    ),
    ("infinite float arguments", model("  - {op: Hardtanh, min_val: -.inf, max_val: .inf}\n")),
    ("a string argument with quotes", model("  - {op: GELU, approximate: none}\n  - {op: Linear, out_features: 2}\n")),
    (
        "a use: of a layer named like an attribute",
        "name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 4, name: weight}\n  - {use: weight}\n",
    ),
    (
        "a repeat of a block with an index in its name",
        "name: m\ninput: {shape: [1, 4]}\nblocks:\n  b:\n    params: {k: 1}\n    layers:\n      - {op: Linear, out_features: 4}\nlayers:\n  - {op: b, k: '${i}', repeat: 3}\n",
    ),
]

# --- python: what a Python model's own code does is reported, never a traceback ---------------------
PYTHON_MODELS = """
import sys

import torch
from torch import nn


class Exits(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        sys.exit(0)


class ExitsWithText(Exits):
    def forward(self, x):
        sys.exit("bye")


class Interrupts(Exits):
    def forward(self, x):
        raise KeyboardInterrupt


class Recurses(Exits):
    def forward(self, x):
        return self.forward(x)


class RaisesGeneratorExit(Exits):
    def forward(self, x):
        raise GeneratorExit


class RaisesBaseException(Exits):
    def forward(self, x):
        class Odd(BaseException):
            pass

        raise Odd("not an Exception")


class ExitsInInit(nn.Module):
    def __init__(self):
        super().__init__()
        sys.exit(3)


class Sleeps(Exits):
    def forward(self, x):
        import pathlib
        import time

        pathlib.Path("started").touch()
        time.sleep(60)


def scripted():
    return torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.c(x)
"""
PYTHON = [
    Case(
        "forward calls sys.exit(0)",
        "python",
        None,
        ("inspect", "{module}:Exits", "--allow-import", "--input", "1x4"),
        1,
        r"layerscope: error: the inspected code called sys\.exit\(0\) — it cannot be inspected past that",
    ),
    Case(
        "forward calls sys.exit with text",
        "python",
        None,
        ("inspect", "{module}:ExitsWithText", "--allow-import", "--input", "1x4"),
        1,
        r"layerscope: error: the inspected code called sys\.exit\('bye'\) — .*",
    ),
    Case(
        "forward raises KeyboardInterrupt",
        "python",
        None,
        ("inspect", "{module}:Interrupts", "--allow-import", "--input", "1x4"),
        130,
        r"layerscope: interrupted",
    ),
    Case(
        "forward recurses forever",
        "python",
        None,
        ("inspect", "{module}:Recurses", "--allow-import", "--input", "1x4"),
        1,
        None,
    ),
    Case(
        "forward raises GeneratorExit",
        "python",
        None,
        ("inspect", "{module}:RaisesGeneratorExit", "--allow-import", "--input", "1x4"),
        1,
        None,
    ),
    Case(
        "forward raises a BaseException of its own",
        "python",
        None,
        ("inspect", "{module}:RaisesBaseException", "--allow-import", "--input", "1x4"),
        1,
        None,
    ),
    Case(
        "a TorchScript module: layers",
        "python",
        None,
        ("inspect", "{module}:scripted", "--allow-import", "--input", "1x4"),
        0,
        None,
    ),
    Case(
        "the constructor calls sys.exit",
        "python",
        None,
        ("inspect", "{module}:ExitsInInit", "--allow-import", "--input", "1x4"),
        1,
        r"layerscope: error: the inspected code called sys\.exit\(3\) — .*",
    ),
    Case(
        "a TorchScript module",
        "python",
        None,
        ("params", "{module}:scripted", "--allow-import", "--input", "1x4"),
        0,
        None,
    ),
    Case(
        "a 30000x30000 input on meta",
        "python",
        None,
        ("inspect", "{module}:Conv", "--allow-import", "--input", "1x1x30000x30000", "--device", "meta"),
        0,
        None,
        subprocess=True,
    ),
    Case(
        "a 30000x30000 input under auto",
        "python",
        None,
        ("inspect", "{module}:Conv", "--allow-import", "--input", "1x1x30000x30000"),
        0,
        None,
        subprocess=True,
    ),
]

SPEC_CASES = NAMES + TEXT + NUMBERS + BUDGETS
