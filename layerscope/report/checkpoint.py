"""A checkpoint file's keys and shapes, read without its tensors' data and without running its code.

A torch file (`.pt`, `.bin`, anything torch.save writes) goes through `torch.load(weights_only=True)`,
which refuses pickled code, onto the meta device (memory-mapped when the file is a zip archive), so
no tensor data is read or allocated. A `.safetensors` file is a little-endian u64 header length,
then a JSON header giving each tensor's dtype and shape: only that header is read.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from layerscope import limits
from layerscope.errors import UsageError, file_kind, first_line

# where training code usually puts the state_dict inside a checkpoint dict (Lightning, DeepSpeed, tutorials)
WRAPPERS = ("state_dict", "model_state_dict", "model", "module")
TORCH_HINT = "give a file torch.save(model.state_dict(), ...) wrote, or a .safetensors file"


def read_shapes(path: Path) -> tuple[dict[str, list[int]], list[str], dict[str, int] | None]:
    """The checkpoint's state_dict keys with their shapes, notes on how it was read, and the module
    versions torch's metadata records (None: a plain dict without it, as load_state_dict sees one)."""
    try:
        if not path.exists():
            raise UsageError(f"no checkpoint file {str(path)!r}", hint=TORCH_HINT)
        if not path.is_file():  # a FIFO or a device is never opened: reading it could block or never end
            raise UsageError(
                f"{str(path)!r} is {file_kind(path.stat().st_mode)}, not a checkpoint file", hint=TORCH_HINT
            )
        if path.suffix == ".safetensors":
            return _safetensors(path), [], None
        return _torch(path)
    except OSError as e:
        raise UsageError(f"cannot read the checkpoint {str(path)!r}: {e.strerror or e}") from None


def _safetensors(path: Path) -> dict[str, list[int]]:
    """The shapes in a safetensors header; the tensors after it are never read."""
    with path.open("rb") as f:
        head = f.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else -1
        if size < 2 or size > path.stat().st_size - 8:
            raise UsageError(f"{str(path)!r} is not a safetensors file: no header", hint=TORCH_HINT)
        limits.CHECKPOINT_HEADER.check(size, f"the safetensors header of {str(path)!r} is {size:,} bytes")
        raw = f.read(size)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"{str(path)!r} is not a safetensors file: its header is not JSON", hint=TORCH_HINT) from None
    if not isinstance(header, dict):
        raise UsageError(f"{str(path)!r} is not a safetensors file: its header is not a mapping", hint=TORCH_HINT)
    shapes = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
            raise UsageError(f"{str(path)!r}: the safetensors entry {key!r} has no shape", hint=TORCH_HINT)
        shapes[key] = shape
    return shapes


def _torch(path: Path) -> tuple[dict[str, list[int]], list[str], dict[str, int] | None]:
    """The shapes of the state_dict in a torch checkpoint, loaded onto meta with weights_only."""
    import torch

    archive = zipfile.is_zipfile(path)
    if not archive:  # torch.save writes a zip archive, or before 1.6 a pickle
        with path.open("rb") as f:
            head = f.read(1)
        if head != b"\x80" and not _pickled_globals(path):
            raise UsageError(f"{str(path)!r} is not a torch checkpoint: not a zip archive or pickle", hint=TORCH_HINT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="meta", weights_only=True, mmap=archive)
    except Exception as e:  # noqa: BLE001 - torch.load raises many kinds on a file that is not its own
        raise _not_torch(path, e) from None  # names the code a refused pickle holds, if it does
    return _state_dict(path, loaded, torch.Tensor)


def _refused_code(path: Path, e: BaseException) -> UsageError | None:
    """The one-line error for a pickle naming Python code that weights_only refused, else None."""
    refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(e))
    if refused is None:
        return None
    return UsageError(
        f"{str(path)!r} holds pickled Python objects ({refused.group(1)}), which torch.load(weights_only=True) "
        "refuses: loading them would run their code",
        hint="save model.state_dict() rather than the model; layerscope never runs a checkpoint's code",
    )


def _not_torch(path: Path, e: BaseException) -> UsageError:
    refused = _refused_code(path, e)
    if refused is not None:  # torch wraps the refusal in other exception types on some files
        return refused
    named = [g for g in _pickled_globals(path) if not g.startswith(_SAFE_GLOBALS)]
    if named:  # a plain pickle.dump: weights_only stops at its framing before it reaches the global
        return UsageError(
            f"{str(path)!r} holds pickled Python objects ({', '.join(dict.fromkeys(named[:3]))}), which "
            "torch.load(weights_only=True) refuses: loading them would run their code",
            hint="layerscope never runs a checkpoint's code: " + TORCH_HINT,
        )
    if "Weights only load failed" in str(e):  # torch's own advice (weights_only=False) would run the file's code
        why = re.search(r"WeightsUnpickler error: \s*(.+)", str(e))
        return UsageError(
            f"{str(path)!r} is a pickle torch.load(weights_only=True) cannot read"
            + (f" ({first_line(why.group(1))[:120]})" if why else "")
            + ", such as pickle.dump writes",
            hint="save it again with torch.save(state_dict, path); layerscope never runs a checkpoint's code",
        )
    said = first_line(str(e))[:200]
    return UsageError(f"{str(path)!r} is not a torch checkpoint (torch.load: {said})", hint=TORCH_HINT)


def _state_dict(path: Path, loaded: Any, tensor: type) -> tuple[dict[str, list[int]], list[str], dict[str, int] | None]:
    """The tensors of `loaded`, a state_dict or a checkpoint dict holding one under a usual key."""
    if not isinstance(loaded, Mapping):
        raise UsageError(f"{str(path)!r} holds a {type(loaded).__name__}, not a state_dict", hint=TORCH_HINT)
    tensors = _tensors(loaded, tensor)
    if tensors:
        return tensors, [], _versions(loaded)
    for key in WRAPPERS:
        inner = loaded.get(key)
        if isinstance(inner, Mapping) and _tensors(inner, tensor):
            others = [str(k) for k in loaded if k != key]
            also = f" (it also holds {', '.join(others[:6])}{', …' if len(others) > 6 else ''})" if others else ""
            return (
                _tensors(inner, tensor),
                [f"the state_dict is the checkpoint's {key!r} entry{also}"],
                _versions(inner),
            )
    keys = ", ".join(repr(k) for k in list(loaded)[:8]) or "nothing"
    raise UsageError(
        f"{str(path)!r} holds no tensors, at its top or under {', '.join(WRAPPERS)}",
        hint=f"its top-level keys: {keys}",
    )


def _tensors(mapping: Mapping[Any, Any], tensor: type) -> dict[str, list[int]]:
    return {str(k): list(v.shape) for k, v in mapping.items() if isinstance(v, tensor)}


def _versions(state: Mapping[Any, Any]) -> dict[str, int] | None:
    """Each module's version in the `_metadata` torch's state_dict() attaches (None without it)."""
    metadata = getattr(state, "_metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    return {
        str(k): v["version"]
        for k, v in metadata.items()
        if isinstance(v, Mapping) and isinstance(v.get("version"), int)
    }


_SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "numpy.")
_PICKLE_SCAN_BYTES = 64 << 20


def _pickled_globals(path: Path) -> list[str]:
    """The `module.name` globals a pickle file names, read with pickletools (which runs nothing):
    GLOBAL's argument, or STACK_GLOBAL's two strings before it. Empty for what is no pickle."""
    import pickletools

    names: list[str] = []
    strings: list[str] = []
    try:
        with path.open("rb") as f:
            data = f.read(_PICKLE_SCAN_BYTES)
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "STOP":
                break
    except Exception:  # noqa: BLE001 - not a pickle, or one cut short: what was read is all there is
        return names
    return names
