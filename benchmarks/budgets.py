"""Every over-budget spec stops early: python benchmarks/budgets.py [--rounds N]

Runs each budget case of the adversarial catalogue (tests/adversarial.py) in a fresh process and
prints its median wall time and peak memory next to an ordinary run (`inspect lenet`) measured in
the same rounds, interleaved. The promise of docs/security.md: an over-budget spec exits 2 within
2 s and 300 MB — on any machine, so the table gives the ratio to the ordinary run as well.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from adversarial import BUDGETS, PYTHON, PYTHON_MODELS, Case  # noqa: E402

PROBE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(p.returncode, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def measure(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, int]:
    """Exit code, wall seconds and peak RSS (bytes) of `layerscope ARGS` in a fresh process."""
    out = subprocess.run(  # noqa: S603 - layerscope itself, on the catalogue's cases
        [sys.executable, "-c", PROBE, sys.executable, "-m", "layerscope", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) * 1024


def prepare(case: Case, directory: Path) -> list[str]:
    (directory / "s.yaml").write_text(case.spec or "", encoding="utf-8")
    (directory / "hostile.py").write_text(PYTHON_MODELS)
    return [a.replace("{spec}", "s.yaml").replace("{module}", "hostile") for a in case.args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cases = [*BUDGETS, *(c for c in PYTHON if c.subprocess)]
    ordinary = Case("ordinary run: inspect lenet", "baseline", None, ("inspect", "lenet"), 0)
    times: dict[str, list[float]] = {c.name: [] for c in [ordinary, *cases]}
    peaks: dict[str, int] = {}
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for case in [ordinary, *cases]:
                directory = Path(tmp) / str(abs(hash(case.name)))
                directory.mkdir(exist_ok=True)
                code, seconds, peak = measure(prepare(case, directory), directory, dict(case.env))
                times[case.name].append(seconds)
                peaks[case.name] = max(peaks.get(case.name, 0), peak)
                codes[case.name] = code
    base_time = statistics.median(times[ordinary.name])
    base_peak = peaks[ordinary.name]
    print(f"{'case':<48} {'exit':>4} {'time':>7} {'×lenet':>7} {'peak':>8} {'+lenet':>8}")
    for case in [ordinary, *cases]:
        t = statistics.median(times[case.name])
        peak = peaks[case.name]
        print(
            f"{case.name[:48]:<48} {codes[case.name]:>4} {t:>6.2f}s {t / base_time:>6.2f}x "
            f"{peak / 2**20:>6.0f}MB {(peak - base_peak) / 2**20:>+6.0f}MB"
        )
    print(f"\n{rounds} rounds, medians; peak is the largest RSS over the rounds (resource.ru_maxrss)")


if __name__ == "__main__":
    main()
