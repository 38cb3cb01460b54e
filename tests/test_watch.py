"""`--watch`: each save of the spec runs the command again; a broken edit shows its error and the
watch goes on; Ctrl-C ends it with 0. One real process with real file events, the rest in-process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT

LENET = (ROOT / "configs" / "lenet.yaml").read_text()


def edits(path: Path, *texts: str | None) -> Callable[[Path], Iterator[object]]:
    """A stand-in for watchfiles' change stream: writes (or, for None, removes) each text in turn."""

    def saves(_: Path) -> Iterator[object]:
        for text in texts:
            if text is None:
                path.unlink()
            else:
                path.write_text(text)
            yield {("modified", str(path))}

    return saves


@pytest.mark.parametrize("command", ["inspect", "shapes", "params"])
def test_each_save_runs_again_and_a_broken_edit_keeps_watching(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from layerscope.cli import watch

    spec = tmp_path / "net.yaml"
    spec.write_text(LENET)
    broken = LENET.replace("kernel_size: 3}", "kernel_size: three}")
    rejecting = LENET.replace("in_features: 576", "in_features: 500")
    twelve = LENET.replace("classes: 10", "classes: 12")
    monkeypatch.setattr(watch, "_saves", edits(spec, broken, rejecting, None, twelve))
    run = cli(command, "net.yaml", "--watch", "--format", "json", cwd=tmp_path)
    assert run.exit_code == 0  # the stream ended, as Ctrl-C ends it
    lines = run.stderr.splitlines()
    assert lines.count("watching net.yaml — Ctrl-C to stop") == 5
    assert "net.yaml:11:62: error: Conv2d kernel_size must be a positive whole number, got 'three'" in lines
    # removed: said, not replaced by the bundled lenet, nor a bundled name suggested
    assert "layerscope: error: net.yaml: no such file now — watching for it to come back" in lines
    reports = json_documents(run.stdout)  # the broken edit and the removed file printed none
    assert [reports[0]["total_params"], reports[2]["total_params"]] == [81_290, 81_290 + 2 * 84 + 2]  # 12 classes
    assert [(r["failure"] or {}).get("layer") for r in reports] == [None, "fc1", None]  # rejected input: shown


def json_documents(text: str) -> list[dict]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        document, at = decoder.raw_decode(text, at)
        found.append(document)
        at += len(text[at:]) - len(text[at:].lstrip())
    return found


def test_a_save_the_watcher_did_not_see_is_caught_on_its_next_wake_up(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save during the first run, before watchfiles was set up: its next timeout compares the
    file's signature with the one the run read, and runs again (a tester's edit at 5 s was lost)."""
    from layerscope.cli import watch

    spec = tmp_path / "net.yaml"
    spec.write_text(LENET)

    def saved_unseen(_: Path) -> Iterator[object]:
        spec.write_text(LENET.replace("classes: 10", "classes: 100"))
        yield set()  # the watcher's timeout: no change reported
        yield set()  # nothing new since: no run

    monkeypatch.setattr(watch, "_saves", saved_unseen)
    run = cli("params", "net.yaml", "--watch", "--format", "json", cwd=tmp_path)
    assert [r["total_params"] for r in json_documents(run.stdout)] == [81_290, 81_290 + 90 * 85]
    assert run.stderr.count("watching net.yaml") == 2


def test_a_python_model_is_not_watched(cli) -> None:
    run = cli("inspect", "tests.reference_models:LeNet", "--allow-import", "--input", "1x1x32x32", "--watch")
    assert run.exit_code == 2
    assert run.stderr == (
        "layerscope: error: --watch follows a spec file; a Python model's module is imported once"
        " — rerun the command after editing the Python file\n"
    )


def test_a_bundled_stand_in_is_watched_with_one_note(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from layerscope.cli import watch

    monkeypatch.setattr(watch, "_saves", lambda path: iter([{("modified", str(path))}]))
    run = cli("params", "lenet.yaml", "--watch", cwd=tmp_path)
    assert run.exit_code == 0 and run.stdout.count("Total params") == 2
    assert run.stderr.count("used the bundled spec lenet") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_a_real_watch_follows_saves_and_ends_on_ctrl_c(tmp_path: Path) -> None:
    shutil.copy(ROOT / "configs" / "lenet.yaml", tmp_path / "lenet.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    out = (tmp_path / "out.txt").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "shapes", "lenet.yaml", "--watch"],
        cwd=tmp_path,
        env=env,
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(child.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def runs_reach(n: int) -> None:
        deadline = time.monotonic() + 120
        while sum("watching lenet.yaml" in line for line in seen) < n:
            assert child.poll() is None and time.monotonic() < deadline, seen
            time.sleep(0.1)

    try:
        runs_reach(1)
        time.sleep(0.5)  # the watcher is set up after the first run's line
        (tmp_path / "lenet.yaml").write_text(LENET.replace("kernel_size: 3}", "kernel_size: three}"))
        runs_reach(2)
        time.sleep(0.5)
        (tmp_path / "lenet.yaml").write_text(LENET.replace("classes: 10", "classes: 12"))
        runs_reach(3)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
        out.close()
    reader.join(timeout=10)
    text = (tmp_path / "out.txt").read_text()
    assert text.count("LeNet — shapes") == 2  # the good versions; the broken one is its error line
    assert not any("KeyboardInterrupt" in line for line in seen)  # Ctrl-C ends it quietly
    assert "lenet.yaml:11:62: error: Conv2d kernel_size must be a positive whole number, got 'three'\n" in seen
    assert "1x84          1x12" in text.split("LeNet — shapes")[-1]
