"""A checkpoint's keys and shapes against a model's state_dict (`layerscope weights`). Plain data; no torch here.

torch's `load_state_dict(strict=True)` refuses a checkpoint for three reasons: a key the model has
and the checkpoint lacks (missing), a key the checkpoint has and the model lacks (unexpected), and
a key both have with different shapes. This is the same test, kept as rows a table can show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Shape = list[int]


@dataclass
class WeightRow:
    """One key: `missing`, `unexpected`, `shape mismatch` or `ok`, with the model's and the checkpoint's shape."""

    key: str
    status: str
    expected: Shape | None  # in the model's state_dict; None when the model lacks the key (or it is unmade: lazy)
    found: Shape | None  # in the checkpoint; None when the checkpoint lacks it


@dataclass
class WeightsCheck:
    """Every key of a model's state_dict and of a checkpoint, compared; `to_dict` is the JSON contract."""

    model: str
    checkpoint: str
    rows: list[WeightRow]  # model order, then the checkpoint's unexpected keys in its order
    notes: list[str] = field(default_factory=list)  # how the checkpoint was read, e.g. the key it was under

    def count(self, status: str) -> int:
        """How many keys have `status`."""
        return sum(row.status == status for row in self.rows)

    @property
    def matches(self) -> bool:
        """Whether `load_state_dict(strict=True)` would take the checkpoint: every key present, same shapes."""
        return all(row.status == "ok" for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: the rows, the counts per status and whether it all matches."""
        counts = {status: self.count(status) for status in STATUSES}
        return {**asdict(self), "counts": counts, "matches": self.matches}


STATUSES = ("missing", "unexpected", "shape mismatch", "ok")


def compare(
    model: str,
    checkpoint: str,
    expected: dict[str, Shape | None],
    found: dict[str, Shape],
    aliases: dict[str, str] | None = None,
    filled: set[str] | None = None,
) -> WeightsCheck:
    """The model's keys and shapes (`expected`; None: a lazy parameter, any shape) against the
    checkpoint's (`found`), as torch's strict load sees them; `aliases` maps a key whose tensor is
    an earlier key's (a module or parameter under a second name) to that key."""
    spared = [k for k in expected if k not in found and k in (filled or set())]  # torch's load puts these in itself
    rows = []
    for key, shape in expected.items():
        if key not in found:
            rows.append(WeightRow(key, "missing", shape, None))
        else:
            same = shape is None or found[key] == shape
            rows.append(WeightRow(key, "ok" if same else "shape mismatch", shape, found[key]))
    rows += [WeightRow(key, "unexpected", None, shape) for key, shape in found.items() if key not in expected]
    # a spared key still pairs with a renamed tensor: the checkpoint holds it under its own name
    pairing, rows = rows, [r for r in rows if r.key not in spared]
    notes = _renamed(pairing) + _second_names(rows, aliases or {}, found)
    if spared:
        notes.append(
            f"{len(spared)} key(s) absent and not needed ({', '.join(spared[:3])}{', …' if len(spared) > 3 else ''}): "
            "a BatchNorm counts its batches from 0 when the checkpoint's metadata gives it no version, as a plain dict"
        )
    return WeightsCheck(model, checkpoint, rows, notes)


def _second_names(rows: list[WeightRow], aliases: dict[str, str], found: dict[str, Shape]) -> list[str]:
    """A note on missing keys that are second names of tensors the checkpoint has under their first."""
    pairs = [(r.key, aliases[r.key]) for r in rows if r.status == "missing" and aliases.get(r.key) in found]
    if not pairs:
        return []
    shown = ", ".join(f"{key} is {first}" for key, first in pairs[:3]) + (", …" if len(pairs) > 3 else "")
    return [
        f"{len(pairs)} missing key(s) are second names of tensors the checkpoint has ({shown}): "
        "one module under a second name (a use: with a name:) or one tensor (tie:), which a strict load wants too"
    ]


def _renamed(rows: list[WeightRow]) -> list[str]:
    """A note when the missing and the unexpected keys pair up shape for shape: the same tensors under other names."""
    missing = [r for r in rows if r.status == "missing"]
    unexpected = [r for r in rows if r.status == "unexpected"]
    if not missing or len(missing) != len(unexpected):
        return []
    if any(m.expected != u.found for m, u in zip(missing, unexpected, strict=True)):
        return []
    first = f"{unexpected[0].key} for {missing[0].key}"
    prefix = _common_prefix([u.key for u in unexpected], [m.key for m in missing])
    if prefix:
        return [
            f"every unexpected key is a missing one with {prefix!r} in front ({first}, …): "
            f"{_PREFIXES.get(prefix, 'a wrapper module')} saved it; strip {prefix!r} from the keys before loading"
        ]
    return [
        f"the {len(missing)} missing keys and the {len(unexpected)} unexpected ones have the same shapes in the "
        f"same order: the same tensors under other names ({first}, …); nn.Sequential numbers its children"
    ]


_PREFIXES = {
    "module.": "DataParallel or DistributedDataParallel",
    "model.": "a wrapper such as a LightningModule",
    "_orig_mod.": "a torch.compile'd module",
}


def _common_prefix(found: list[str], wanted: list[str]) -> str | None:
    """The one prefix (ending in a dot) that turns every wanted key into the found one at its place, if any."""
    if not found or not found[0].endswith(wanted[0]) or found[0] == wanted[0]:
        return None
    prefix = found[0][: len(found[0]) - len(wanted[0])]
    if not prefix.endswith(".") or any(f != prefix + w for f, w in zip(found, wanted, strict=True)):
        return None
    return prefix
