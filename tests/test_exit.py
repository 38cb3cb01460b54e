"""How the console script ends: at once after a spec (the teardown frees only torch's objects), through
the usual teardown after a user's Python code, and atexit handlers run either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODEL = """
import atexit
from pathlib import Path

import torch
from torch import nn

LOG = open(Path(__file__).with_name("log.txt"), "w")  # never closed: only a real teardown flushes it
atexit.register(lambda: Path(__file__).with_name("atexit.txt").write_text("ran"))


class Logs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        LOG.write("forward ran\\n")
        return self.fc(x)
"""


def _layerscope(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(cwd), **env}
    code = "from layerscope.cli import run; run()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=120
    )


def test_a_python_model_ends_through_the_usual_teardown(tmp_path: Path) -> None:
    """Its unclosed file is flushed and its atexit handler runs: layerscope does not cut its process short."""
    (tmp_path / "logs_model.py").write_text(MODEL, encoding="utf-8")
    done = _layerscope("inspect", "logs_model:Logs", "--allow-import", "--input", "1x4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "log.txt").read_text() == "forward ran\n"
    assert (tmp_path / "atexit.txt").read_text() == "ran"


def test_a_spec_ends_at_once_but_its_atexit_handlers_run(tmp_path: Path) -> None:
    hook = tmp_path / "sitecustomize.py"  # an atexit handler of the environment's, as coverage or a profiler has
    hook.write_text(
        "import atexit, pathlib\natexit.register(lambda: pathlib.Path(__file__).with_name('done.txt').write_text('ok'))\n"
    )
    done = _layerscope("shapes", "classifier", "--input", "1x3x16x16", cwd=tmp_path)
    assert done.returncode == 1 and "fc (Linear) does not accept its input" in done.stdout
    assert (tmp_path / "done.txt").read_text() == "ok"


def test_the_fast_exit_can_be_turned_off(tmp_path: Path) -> None:
    done = _layerscope("params", "tied_mlp", "-f", "json", cwd=tmp_path, LAYERSCOPE_FAST_EXIT="0")
    assert done.returncode == 0 and '"total_params": 121' in done.stdout
    bad = _layerscope("inspect", "lenet", "--input", "1xq", cwd=tmp_path, LAYERSCOPE_FAST_EXIT="0")
    assert bad.returncode == 2 and bad.stderr.startswith("layerscope: error:")
