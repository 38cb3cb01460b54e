"""The adversarial catalogue (tests/adversarial.py): hostile specs, files and command lines.

Every case asserts its exit code and, for an error, that stderr is exactly one line of the
expected form. Budget cases run in a child process under resource limits (CPU seconds and address
space: a runaway would be killed, and fail) and assert the child's peak memory stays within 300 MB
of an ordinary run's. Their times are measured by benchmarks/budgets.py, not here.
"""

from __future__ import annotations

import ast
import io
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import torch
from adversarial import CODEGEN, PYTHON, PYTHON_MODELS, READS, SPEC_CASES, Case

from layerscope.builder.builder import build
from layerscope.render.files import write_whole
from layerscope.report.assemble import run_and_report
from layerscope.spec.model import load_spec

from conftest import ROOT

CPU_SECONDS = 60  # a hard stop for a child that runs away; the budgets stop every case long before
ADDRESS_SPACE = 6 << 30  # torch maps ~0.8 GB of address space on import
MEMORY_MARGIN = 300 << 20  # a budget case's peak memory over an ordinary run's


def one_line(stderr: str, pattern: str) -> None:
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    assert re.fullmatch(pattern, stderr.rstrip("\n")), f"{stderr.rstrip()!r}\n does not match\n{pattern!r}"


def no_crash(stderr: str) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr


def child(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, stdout: Any = subprocess.PIPE
) -> tuple[int, str, str]:
    """Run `layerscope ARGS` in a child process under resource limits: exit code, stdout, stderr."""
    p = subprocess.run(
        [sys.executable, "-m", "layerscope", *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(env or {})},
        preexec_fn=_limit,
    )
    out = p.stdout.decode("utf-8", "backslashreplace") if p.stdout else ""
    return p.returncode, out, p.stderr.decode("utf-8", "backslashreplace")


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _measured(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str, int]:
    """Run a child and return its own peak RSS (RUSAGE_CHILDREN keeps the maximum over all children,
    so each measured run is a grandchild whose rusage its own parent reports)."""
    probe = (
        "import os, resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(p.returncode)\n"
    )

    p = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "layerscope", *args],
        cwd=cwd,
        capture_output=True,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(env or {})},
        preexec_fn=_limit,
    )
    err = p.stderr.decode("utf-8", "backslashreplace")
    err, _, peak = err.rstrip("\n").rpartition("\n")
    return p.returncode, p.stdout.decode("utf-8", "backslashreplace"), err + "\n" if err else "", int(peak) * 1024


@pytest.fixture(scope="session")
def baseline_peak(tmp_path_factory: pytest.TempPathFactory) -> int:
    code, _, err, peak = _measured(["inspect", "lenet"], tmp_path_factory.mktemp("baseline"))
    assert code == 0, err
    return peak


def checked(case: Case, args: list[str], cwd: Path, cli: Any, request: pytest.FixtureRequest) -> str:
    """Run a case (in a measured child process for a budget) and check its exit code and stderr; its stdout."""
    if case.subprocess:
        baseline = request.getfixturevalue("baseline_peak")
        code, stdout, stderr, peak = _measured(args, cwd, dict(case.env))
        assert peak <= baseline + MEMORY_MARGIN, f"peak {peak >> 20} MB against {baseline >> 20} MB"
    else:
        run = cli(*args, cwd=cwd)
        code, stdout, stderr = run.exit_code, run.stdout, run.stderr
    assert code == case.code, (stdout[-2000:], stderr)
    if case.message is not None:
        one_line(stderr, case.message)
    else:
        no_crash(stderr)
    return stdout


def _args(case: Case, spec: Path) -> list[str]:
    return [a.replace("{spec}", spec.name) for a in case.args]


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda c: f"{c.kind}: {c.name}")
def test_spec_case(
    case: Case, cli, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    spec = tmp_path / "s.yaml"
    spec.write_text(case.spec or "", encoding="utf-8")
    stdout = checked(case, _args(case, spec), tmp_path, cli, request)
    for text in case.forbidden:
        assert text not in stdout, f"{text!r} reached the output"
    for text in case.shown:
        assert text in stdout, f"{text!r} is not shown"


# --- reads ----------------------------------------------------------------------------------------


def _read_target(name: str, tmp_path: Path) -> str:
    if name == "a directory":
        (tmp_path / "d.yaml").mkdir()
        return "d.yaml"
    if name == "a FIFO":
        os.mkfifo(tmp_path / "f.yaml")
        return "f.yaml"
    if name == "a symlink to a FIFO":
        os.mkfifo(tmp_path / "f")
        (tmp_path / "l.yaml").symlink_to("f")
        return "l.yaml"
    if name.startswith("/dev/"):
        return name
    if name == "a missing file":
        return "missing.yaml"
    contents = {
        "bytes that are not UTF-8": b"name: \xff\xfe\n",
        "an empty file": b"",
        "a NUL byte": b"name: m\x00\ninput: {shape: [1, 4]}\n",
        "a file of only a comment": b"# nothing here\n",
    }
    (tmp_path / "r.yaml").write_bytes(contents[name])
    return "r.yaml"


@pytest.mark.parametrize(("name", "pattern"), READS, ids=[r[0] for r in READS])
def test_only_a_regular_file_is_read_and_nothing_blocks(name: str, pattern: str, cli, tmp_path: Path) -> None:
    path = _read_target(name, tmp_path)
    run = cli("inspect", path, cwd=tmp_path)  # a FIFO read would block here forever
    assert run.exit_code == 2
    one_line(run.stderr, pattern.replace("{path}", re.escape(path)))


# --- writes ---------------------------------------------------------------------------------------


def _snapshot(path: Path) -> tuple[Any, ...]:
    info = os.lstat(path)
    body = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    return stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), body, link


WRITES = [  # (case, how to make the target, exit code, stderr pattern or None)
    ("absent", None, 0, None),
    ("a regular file", "file", 0, None),
    ("a symlink to a regular file", "link", 0, None),
    (
        "a dangling symlink",
        "dangling",
        2,
        r"layerscope: error: out\.py is a symlink to .*, which does not exist — name the file itself",
    ),
    ("a read-only file", "readonly", 2, r"layerscope: error: out\.py is read-only; it was left as it is — .*"),
    ("a directory", "dir", 2, r"layerscope: error: out\.py is a directory; it was left as it is — name a file"),
    ("a FIFO", "fifo", 2, r"layerscope: error: out\.py is a FIFO \(named pipe\); it was left as it is — name a file"),
    ("a missing directory", "nodir", 2, r"layerscope: error: cannot write nodir/out\.py: no directory nodir"),
]


def _make_target(how: str | None, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    if how in ("file", "readonly"):
        target.write_text("old\n")
        target.chmod(0o640 if how == "file" else 0o444)
    elif how == "link":
        (tmp_path / f"real{target.suffix}").write_text("old\n")
        target.symlink_to(f"real{target.suffix}")
    elif how == "dangling":
        target.symlink_to("nowhere")
    elif how == "dir":
        target.mkdir()
    elif how == "fifo":
        os.mkfifo(target)
    elif how == "nodir":
        return tmp_path / "nodir" / name
    return target


_WRITERS = {  # option → the file name it writes, and the command line writing `{}`
    "export -o": ("out.py", ["export", "lenet", "-o", "{}"]),
    "inspect --export": ("out.svg", ["inspect", "lenet", "--export", "{}"]),
    "graph --export": ("out.mmd", ["graph", "lenet", "--export", "{}"]),
    "import -o": (
        "out.yaml",
        ["import", "tests.reference_models:LeNet", "--allow-import", "-i", "1x1x32x32", "-o", "{}"],
    ),
}


@pytest.mark.parametrize("option", list(_WRITERS))
@pytest.mark.parametrize(("name", "how", "code", "pattern"), WRITES, ids=[w[0] for w in WRITES])
def test_writes_replace_nothing_but_a_regular_file(
    option: str,
    name: str,
    how: str | None,
    code: int,
    pattern: str | None,
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file_name, command = _WRITERS[option]
    target = _make_target(how, tmp_path, file_name)
    before = _snapshot(target) if target.exists() or target.is_symlink() else None
    relative = str(target.relative_to(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT))  # tests.reference_models, from another directory
    run = cli(*[relative if a == "{}" else a for a in command], cwd=tmp_path)
    assert run.exit_code == code, run.stderr
    if pattern is not None:
        one_line(run.stderr, pattern.replace("out\\.py", re.escape(file_name)))
        if before is not None:
            assert _snapshot(target) == before  # left exactly as it was
    else:
        written = target.resolve()
        assert written.is_file() and written.stat().st_size > 100
        if how == "link":
            assert target.is_symlink() and os.readlink(target) == f"real{target.suffix}"  # written through, kept
        if how == "file":
            assert stat.S_IMODE(written.stat().st_mode) == 0o640  # the replaced file's mode kept
    assert not list(tmp_path.rglob("*.part")), "a temporary file was left behind"


@pytest.mark.parametrize(
    ("option", "suffix"), [("graph --export", ".mmd"), ("import -o", ".yaml"), ("inspect --export", ".svg")]
)
def test_no_write_replaces_the_code_of_a_loaded_module(option: str, suffix: str, cli, tmp_path: Path) -> None:
    """The Python model's file, or a module it imports, named directly or through a symlink with the
    output's suffix: refused, left as it was (a tester's `-o mm.py` through a wrapper module lost its code)."""
    (tmp_path / "mm.py").write_text("from torch import nn\n\n\ndef MLP():\n    return nn.Sequential(nn.Linear(4, 2))\n")
    (tmp_path / "wrap.py").write_text("from mm import MLP\n")
    (tmp_path / f"link{suffix}").symlink_to("mm.py")
    before = (tmp_path / "mm.py").read_bytes()
    command, flag = option.split()
    for target in ("mm.py", f"link{suffix}"):
        run = cli(command, "wrap.py:MLP", "--allow-import", "-i", "1x4", flag, target, cwd=tmp_path)
        assert run.exit_code == 2, run.stderr
        if target != "mm.py":  # by its own name, a .py is refused sooner (not a .svg; the model's own code)
            one_line(
                run.stderr, r"layerscope: error: .*is the code of the imported module 'mm'; it was left as it is — .*"
            )
    assert (tmp_path / "mm.py").read_bytes() == before


def test_export_never_replaces_the_spec_it_reads(cli, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: m\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 2}\n")
    before = spec.read_bytes()
    for target in ("s.yaml", "./s.yaml", str(spec)):
        run = cli("export", "s.yaml", "-o", target, cwd=tmp_path)
        assert run.exit_code == 2
        one_line(
            run.stderr, r"layerscope: error: .*s\.yaml is the spec being exported — write the Python to another file"
        )
    assert spec.read_bytes() == before


@pytest.mark.parametrize("stage", ["write", "chmod", "replace"])
def test_an_interrupted_write_leaves_no_temporary_file_and_the_target_as_it_was(
    stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.py"
    target.write_text("old\n")

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    if stage == "write":
        opened = os.fdopen

        class Interrupted:  # a file whose write is interrupted half-way
            def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
                self.file = opened(fd, *args, **kwargs)

            def __enter__(self) -> Interrupted:
                return self

            def __exit__(self, *exc: object) -> None:
                self.file.close()

            def write(self, text: str) -> None:
                self.file.write(text[:1])
                raise KeyboardInterrupt

        monkeypatch.setattr(os, "fdopen", Interrupted)
    else:
        monkeypatch.setattr(os, stage, interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_whole(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.py"]


# --- codegen --------------------------------------------------------------------------------------

_ALLOWED_IMPORTS = {"__future__", "collections.abc", "typing", "torch", "torch.nn.functional"}


def assert_inert(source: str) -> None:
    """Importing `source` only defines things: a docstring, imports of torch and the standard
    typing modules, functions, and classes whose bodies are methods."""
    tree = ast.parse(source)
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr) and i == 0 and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.module in _ALLOWED_IMPORTS, ast.dump(node)
        elif isinstance(node, ast.Import):
            assert all(a.name in _ALLOWED_IMPORTS for a in node.names), ast.dump(node)
        elif isinstance(node, ast.FunctionDef):
            assert not node.decorator_list and all(_literal(d) for d in [*node.args.defaults, *node.args.kw_defaults])
        elif isinstance(node, ast.ClassDef):
            assert not node.decorator_list and not node.keywords
            assert all(isinstance(item, ast.FunctionDef) and not item.decorator_list for item in node.body)
        else:
            raise AssertionError(f"runs at import: {ast.unparse(node)[:200]}")


def _literal(node: ast.expr | None) -> bool:
    """Whether a default value is a plain literal (evaluating it runs nothing)."""
    try:
        ast.literal_eval(node) if node is not None else None
    except ValueError:
        return False
    return True


def exported_matches_built(text: str, path: Path) -> None:
    """The generated file is inert, imports, and builds a model with the spec's parameter names,
    shapes and output shapes."""
    assert_inert(text)
    spec = load_spec(path)
    built = build(spec, device="meta")
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(compile(text, "exported.py", "exec"), namespace)  # noqa: S102 - checked inert above
        with torch.device("meta"):
            model = namespace["make_model"]()
        output = model(*namespace["example_inputs"](device="meta"))  # nothing allocated, however large
    assert printed.getvalue() == ""
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        (n, p.shape) for n, p in built.model.named_parameters()
    ]
    outputs = [output] if isinstance(output, torch.Tensor) else list(output)
    assert [list(t.shape) for t in outputs] == run_and_report(built.model, built.inputs).output_shapes


@pytest.mark.parametrize(("name", "text"), CODEGEN, ids=[c[0] for c in CODEGEN])
def test_exported_python_is_inert_and_equal_to_the_spec(name: str, text: str, cli, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    run = cli("export", "s.yaml", cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    exported_matches_built(run.stdout, tmp_path / "s.yaml")


# --- python models --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PYTHON, ids=lambda c: c.name)
def test_python_models_own_actions_are_reported(
    case: Case, cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    module = f"hostile_{abs(hash(case.name))}"
    (tmp_path / f"{module}.py").write_text(PYTHON_MODELS)
    args = [a.replace("{module}", module) for a in case.args]
    checked(case, args, tmp_path, cli, request)


# --- stdout ---------------------------------------------------------------------------------------

HOSTILE_SPEC = 'name: "模型 \\e[31m [/] \\udc80"\ninput: {shape: [1, 4]}\nlayers:\n  - {op: Linear, out_features: 2}\n'


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "latin-1", "utf-8"])
def test_every_stdout_encoding_works(encoding: str, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(HOSTILE_SPEC, encoding="utf-8")
    code, stdout, stderr = child(["inspect", "s.yaml"], tmp_path, env={"PYTHONIOENCODING": encoding})
    assert (code, stderr) == (0, "")
    assert "Total params" in stdout and "\x1b" not in stdout
    if encoding != "utf-8":  # ASCII rules where the encoding has no box drawing, not escapes of it
        assert "─" not in stdout and "\\u2500" not in stdout
        assert re.search(r"^ -{20,}$", stdout, flags=re.M)


def test_a_reader_gone_away_ends_quietly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "inspect", "lenet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head` does once it has read enough: every write now fails
    stderr = process.stderr.read()
    assert process.wait() == 141
    assert stderr == b""


def test_a_closed_stdout_is_one_line(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "layerscope", "inspect", "lenet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(),
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert p.returncode == 74
    one_line(p.stderr.decode(), r"layerscope: error: cannot write the output: stdout is closed")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_disk_on_stdout_is_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        code, _, stderr = child(["inspect", "lenet"], tmp_path, stdout=full)
    assert code == 74
    one_line(stderr, r"layerscope: error: cannot write the output: No space left on device")


def test_ctrl_c_during_a_run_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "sleepy.py").write_text(PYTHON_MODELS)
    process = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "inspect", "sleepy:Sleeps", "--allow-import", "--input", "1x4"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for _ in range(600):  # the forward says when it has started
        if (tmp_path / "started").exists() or process.poll() is not None:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert (process.returncode, stderr) == (130, b"layerscope: interrupted\n")


def test_ctrl_c_while_the_cli_imports_is_one_line(tmp_path: Path) -> None:
    """Deterministically: an import hook raises KeyboardInterrupt as the app's module is imported."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'layerscope.cli.main':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['layerscope', 'list']\n"
        "from layerscope.cli import run\n"
        "run()\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert (p.returncode, p.stderr) == (130, "layerscope: interrupted\n")
