"""Seeded mutation fuzzing: mutated specs must never end in anything but a one-line error or a report.

Every bundled config and failure spec is mutated at the text level (numbers, names, lines,
YAML punctuation), then run through the same pipeline as the CLI (spec → build → trace →
diagnose → every renderer). A LayerscopeError (exit 2) or a report, failed or not (exit 0/1),
is fine; any other exception is a bug and is printed with the spec that caused it.

    python tests/fuzz.py --count 10000 --seed 0     # the long run (a few minutes)

tests/test_fuzz.py runs a short, fixed slice of it in CI.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the zoo's large models take seconds each; resnet18 and tests/specs/tiny_blocks.yaml carry its spec language
_SLOW = {"alexnet", "vgg16", "resnet50", "vit_b_16", "gpt2", "bert_base", "llama_7b", "llama2_70b"}
SEEDS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.stem not in _SLOW) + sorted(
    (ROOT / "tests" / "specs").glob("*.yaml")
)
VALUES = [
    "0", "-1", "1", "2", "3", "7", "16", "1e-3", "1.5", "65536", "99999999999", "null", "true", "no", "'x'",
    "[]", "{}", "[1, 2]", "[0]", "'${a}'", "'${1/0}'", "'${2**300}'", "'${classes}'", ".inf", ".nan", "-0", "''",
]  # fmt: skip
PUNCTUATION = list(":{}[],-#&*!|>'\"%@` \t\n")
INPUTS = ["1x3x8x8", "2x5", "7:int64", "1x1x1x1", "1x3x32x32", "3", "1x100", "5x1x6", "0x3", "1x1x28x28", "2x16,2x16"]


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)


def mutate(text: str, rng: random.Random, corpus: list[str]) -> str:
    """One to three random edits of a spec's text."""
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(_MUTATIONS)(text, rng, corpus)
    return text


def _replace_number(text: str, rng: random.Random, corpus: list[str]) -> str:
    spots = [m for m in re.finditer(r"(?<![\w.])-?\d+(\.\d+)?(?![\w.])", text)]
    if not spots:
        return text
    m = rng.choice(spots)
    return text[: m.start()] + rng.choice(VALUES) + text[m.end() :]


def _replace_word(text: str, rng: random.Random, corpus: list[str]) -> str:
    spots = list(re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", text))
    if not spots:
        return text
    m = rng.choice(spots)
    return text[: m.start()] + rng.choice(corpus) + text[m.end() :]


def _line_edit(text: str, rng: random.Random, corpus: list[str]) -> str:
    lines = text.splitlines()
    if len(lines) < 2:
        return text
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    choice = rng.randrange(3)
    if choice == 0:
        del lines[i]
    elif choice == 1:
        lines.insert(i, lines[j])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def _punctuate(text: str, rng: random.Random, corpus: list[str]) -> str:
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(PUNCTUATION) + text[i:]


def _cut(text: str, rng: random.Random, corpus: list[str]) -> str:
    if not text:
        return text
    i = rng.randrange(len(text))
    return text[:i] + text[i + rng.randint(1, 12) :] if rng.random() < 0.8 else text[:i]


def _add_layer(text: str, rng: random.Random, corpus: list[str]) -> str:
    layer = f"  - {{op: {rng.choice(corpus)}, {rng.choice(corpus)}: {rng.choice(VALUES)}}}\n"
    lines = text.splitlines(keepends=True)
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("layers:")), len(lines))
    return "".join(lines[:at]) + layer + "".join(lines[at:])


_MUTATIONS: list[Callable[[str, random.Random, list[str]], str]] = [
    _replace_number, _replace_number, _replace_word, _replace_word, _line_edit, _punctuate, _cut, _add_layer,
]  # fmt: skip


def run_one(path: Path, inputs: list[str]) -> str | None:
    """Run a spec as the CLI would; the traceback of an unexpected exception, else None."""
    from rich.console import Console

    from layerscope.cli.options import Options
    from layerscope.cli.targets import inspect as _traced
    from layerscope.cli.targets import load as _load
    from layerscope.errors import LayerscopeError
    from layerscope.render import views as render
    from layerscope.render.text import to_json

    try:
        report = _traced(_load(str(path), Options()), inputs, Options())
        console = Console(file=io.StringIO(), width=100)
        console.print(render.inspect_view(report, None), render.shapes_view(report), render.params_view(report))
        to_json(report)
    except LayerscopeError as e:
        str(e)
        return None
    except Exception:  # noqa: BLE001 - this is what the fuzzer looks for
        return traceback.format_exc()
    return None


def fuzz(count: int, seed: int, report_every: int = 0) -> list[tuple[str, list[str], str]]:
    """Run `count` mutated specs; return (spec text, --input list, traceback) for each bug found."""
    from layerscope.report import diagnose
    from layerscope.spec.catalog import op_names

    diagnose.SEARCH_SECONDS = 0.05  # exercise the hint search without paying for it 10,000 times
    rng = random.Random(seed)
    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    corpus = sorted({w for t in texts for w in _words(t)} | set(op_names()))
    bugs = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        for n in range(count):
            text = mutate(rng.choice(texts), rng, corpus)
            inputs = [rng.choice(INPUTS)] if rng.random() < 0.3 else []
            path.write_text(text, encoding="utf-8")
            problem = run_one(path, inputs)
            if problem:
                bugs.append((text, inputs, problem))
            if report_every and (n + 1) % report_every == 0:
                print(f"{n + 1} specs, {len(bugs)} uncaught, {time.monotonic() - started:.0f} s", file=sys.stderr)
    return bugs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    bugs = fuzz(args.count, args.seed, report_every=1000)
    for text, inputs, problem in bugs[:5]:
        print(f"--- spec (--input {inputs}):\n{text}\n--- raised:\n{problem}")
    print(
        f"{args.count} mutated specs, {len(bugs)} uncaught exceptions, {time.monotonic() - started:.0f} s (seed {args.seed})"
    )
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
