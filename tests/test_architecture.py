"""The layout docs/architecture.md describes, checked: stage order, module and function sizes,
private torch details in one place."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "layerscope"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# import-linter's own entry point; `no_logo` only exists from import-linter 2.14 (which needs rich 14.2)
LINT = (
    "import inspect, sys; from importlinter.cli import lint_imports\n"
    "options = {'no_cache': True, 'no_logo': True}\n"
    "known = inspect.signature(lint_imports).parameters\n"
    "sys.exit(lint_imports(**{k: v for k, v in options.items() if k in known}))"
)


def test_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: stage order, no torch in render/, no rendering in report/."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LINT,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_wrong_import_breaks_the_stage_contract(tmp_path: Path) -> None:
    """The contract is not vacuous: a report module that imports the renderer is caught."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package = tmp_path / "layerscope"
    for source in SOURCES:
        target = package / source.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (package / "report" / "model.py").write_text(
        (PACKAGE / "report" / "model.py").read_text(encoding="utf-8")
        + "\nfrom layerscope.render import views  # noqa\n",
        encoding="utf-8",
    )
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LINT,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "layerscope.report.model -> layerscope.render.views" in done.stdout


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}:{node.lineno} {node.name} is {length} lines"


# private members of torch's own classes, reached on any object (module._modules, op._overloadpacket)
PRIVATE_MEMBERS = frozenset({"_get_name", "_apply", "_modules", "_parameters", "_buffers", "_overloadpacket"})


def _dotted(node: ast.AST) -> list[str]:
    """`torch.nn.modules.conv._ConvNd` → its parts; [] when it does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else []


def private_torch_uses(tree: ast.AST) -> list[str]:
    """torch's private names used in `tree`: underscore attributes of torch, nn, aten or F, private
    modules imported from torch, and private members of torch's classes. Dunders are public."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            names = [*node.module.split("."), *(a.name for a in node.names)]  # type: ignore[union-attr]
            found += [node.module] if any(n.startswith("_") for n in names) else []  # type: ignore[list-item]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            parts = _dotted(node)
            if node.attr in PRIVATE_MEMBERS or (parts and parts[0] in ("torch", "nn", "aten", "F")):
                found.append(".".join(parts) or node.attr)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_private_torch_details_live_in_the_compat_module(path: Path) -> None:
    if path.name == "_torch_compat.py":
        return
    found = private_torch_uses(ast.parse(path.read_text(encoding="utf-8")))
    assert not found, f"{path.name}: move these behind layerscope/_torch_compat.py: {found}"


def test_the_private_name_check_finds_what_it_should() -> None:
    code = "from torch.utils._python_dispatch import M\nx = torch._compile.f\nm._get_name()\ny = nn.modules.conv._ConvNd\nz = self._private\n"
    found = sorted(private_torch_uses(ast.parse(code)))
    assert found == sorted(["torch.utils._python_dispatch", "torch._compile", "m._get_name", "nn.modules.conv._ConvNd"])
