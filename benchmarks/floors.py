"""Prove that pyproject.toml's dependency floors are true: python benchmarks/floors.py

Creates a fresh venv in a temporary directory and installs, in this order: torch==2.13.0 (the
CPU build, first, so that pip never pulls a CUDA one); exactly the lowest versions that
[project] dependencies allow for typer, click, rich, pyyaml and numpy (each `>=X` installed as
`==X`), with the test extra's tools as it declares them; then layerscope itself with --no-deps.
Runs the whole test suite from the repository root with that venv's python, prints each
package's declared floor beside the version installed, and exits with pytest's status (exit 5,
no tests collected, is a failure too). Takes several minutes (about 3.5 on 2 cores): installs, then the suite.
Standard library only; needs Python 3.11+ (tomllib).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import tomllib  # Python 3.11+; ruff sorts it as third-party for py310

ROOT = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"  # the local CPU wheel; any other torch would be a multi-GB download
FLOORED = ("typer", "click", "rich", "pyyaml", "numpy")
REQUIREMENT = re.compile(r"\s*([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:;.*)?$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(dependencies: list[str]) -> dict[str, str]:
    """Each dependency's `>=` bound, by normalized name; those without one are left out."""
    found = {}
    for requirement in dependencies:
        name, spec = REQUIREMENT.match(requirement).groups()
        bound = re.search(r">=\s*([^,\s]+)", spec)
        if bound:
            found[normalize(name)] = bound.group(1)
    return found


def run(*cmd: str | Path) -> None:
    """Run a setup step; a failure stops the script with its exit status."""
    if subprocess.run(cmd, check=False).returncode:  # noqa: S603 - our own commands
        sys.exit(f"floors: failed: {' '.join(map(str, cmd))}")


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = floors(project["dependencies"])
    missing = [name for name in (*FLOORED, "torch") if name not in declared]
    if missing:
        sys.exit(f"floors: pyproject.toml declares no >= floor for {', '.join(missing)}")
    pins = [f"{name}=={declared[name]}" for name in FLOORED]
    test_tools = project["optional-dependencies"]["test"]

    with tempfile.TemporaryDirectory(prefix="layerscope-floors-") as tmp:
        venv.EnvBuilder(with_pip=True).create(tmp)
        python = Path(tmp) / "bin" / "python"
        pip = (python, "-m", "pip", "install", "-q", "--disable-pip-version-check")
        print(f"floors: installing {TORCH}, {' '.join(pins)} and the test tools into {tmp}", flush=True)
        run(*pip, TORCH)
        run(*pip, TORCH, *pins, *test_tools)  # torch named again, so that pip keeps it
        run(*pip, "--no-deps", "-e", ROOT)

        cmd = (python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider")
        status = subprocess.run(cmd, cwd=ROOT, check=False).returncode  # noqa: S603

        script = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        versions = subprocess.run(  # noqa: S603
            (python, "-c", script, *FLOORED, "torch"), capture_output=True, text=True, check=True
        )
        installed = json.loads(versions.stdout)

    print(f"\n{'package':<8} {'declared':<10} installed")
    for name in (*FLOORED, "torch"):
        print(f"{name:<8} {'>=' + declared[name]:<10} {installed[name]}")
    verdict = {0: "the suite passes at every floor", 5: "pytest ran no tests"}.get(status, "the suite fails")
    print(f"floors: {verdict} (pytest exit {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
