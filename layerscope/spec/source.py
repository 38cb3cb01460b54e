"""Safe YAML loading that keeps file:line:col for every mapping key and value."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from layerscope import limits
from layerscope.errors import Source, SpecError, file_kind

UNKNOWN = Source("<spec>", 1, 1)


class YMap(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it, each key and each value stand."""

    def __init__(self, *args: Any, source: Source = UNKNOWN):
        super().__init__(*args)
        self.source = source
        self.key_sources: dict[str, Source] = {}
        self.value_sources: dict[str, Source] = {}

    def where(self, key: str) -> Source:
        """Position of the value under `key`, or of the mapping itself when it is absent."""
        return self.value_sources.get(key, self.source)

    def derive(self, items: Iterable[tuple[str, Any]]) -> YMap:
        """A mapping of `items` that keeps this one's positions (for keys it shares with it)."""
        out = YMap(items, source=self.source)
        out.key_sources, out.value_sources = self.key_sources, self.value_sources
        return out


class YList(list):  # type: ignore[type-arg]
    """A YAML sequence that remembers where it and each item stand."""

    def __init__(self, *args: Any, source: Source = UNKNOWN):
        super().__init__(*args)
        self.source = source
        self.item_sources: list[Source] = []

    def where(self, index: int) -> Source:
        """Position of item `index`, or of the list itself."""
        return self.item_sources[index] if index < len(self.item_sources) else self.source


def _source(mark: yaml.Mark, file: str) -> Source:
    return Source(file, mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects aliases and duplicate keys and records positions."""

    spec_file = "<string>"

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise SpecError(
                "YAML aliases (*name) are not supported in specs",
                source=_source(event.start_mark, self.spec_file),
                hint="write the value out, or use vars: and ${name}",
            )
        return super().compose_node(parent, index)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    data = YMap(source=_source(node.start_mark, loader.spec_file))
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        where = _source(key_node.start_mark, loader.spec_file)
        if not isinstance(key, str):
            raise SpecError(f"mapping key {key!r} is not a string", source=where, hint="quote it")
        if key in data:
            first = data.key_sources[key]
            raise SpecError(
                f"duplicate key {key!r} (first at line {first.line})",
                source=where,
                hint="YAML would silently keep only the last one; remove one of them",
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_sources[key] = where
        data.value_sources[key] = _source(value_node.start_mark, loader.spec_file)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data = YList(source=_source(node.start_mark, loader.spec_file))
    data.item_sources = [_source(n.start_mark, loader.spec_file) for n in node.value]
    yield data
    data.extend(loader.construct_object(n, deep=True) for n in node.value)


def _reject_tag(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    raise SpecError(
        f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed in a spec",
        source=_source(node.start_mark, loader.spec_file),
        hint="specs hold plain data only: mappings, lists, numbers, strings",
    )


def _reject_plain_type(loader: _Loader, node: yaml.Node) -> Any:
    where = _source(node.start_mark, loader.spec_file)
    kind = node.tag.rsplit(":", 1)[-1]
    if kind == "timestamp":  # YAML turns an unquoted 2024-01-01 into a date object
        raise SpecError(f"YAML reads {node.value!r} as a date", source=where, hint="quote it to keep it as text")
    raise SpecError(
        f"YAML !!{kind} values are not allowed in a spec",
        source=where,
        hint="specs hold mappings, lists, numbers, strings and booleans",
    )


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """An int, except where YAML 1.1 reads other digits than a reader sees: 010 is 8 (octal), 1:30 is 90."""
    text = str(node.value).lstrip("+-").replace("_", "").lower()
    kind = (
        "a base-60" if ":" in text
        else "a hexadecimal" if text.startswith("0x")
        else "a binary" if text.startswith("0b")
        else "an octal" if len(text) > 1 and text.startswith("0")
        else None
    )  # fmt: skip
    if kind:
        reading = loader.construct_yaml_int(node)
        raise SpecError(
            f"YAML reads {node.value} as {reading} ({kind} number)",
            source=_source(node.start_mark, loader.spec_file),
            hint=f"write {reading}, or quote '{node.value}' for text",
        )
    return loader.construct_yaml_int(node)


_HAS_LIBYAML = hasattr(yaml, "CSafeLoader")  # PyYAML built without libyaml has only the Python parser


class _FastLoader(getattr(yaml, "CSafeLoader", _Loader)):  # type: ignore[misc]
    """The same loader on libyaml's parser, ~4x faster (0.97 → 0.22 s for 10,000 layers).

    Used only where it must agree with _Loader: ASCII text (libyaml's columns could count UTF-8
    differently) without `&` or `*` (aliases, which _Loader rejects while composing), and only
    while nothing is wrong: any YAML error is reported by _Loader, word for word as before.
    """

    spec_file = "<string>"


for _cls in (_Loader, _FastLoader):
    _cls.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _cls.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
    _cls.add_constructor("tag:yaml.org,2002:int", _construct_int)
    for _kind in ("timestamp", "binary", "set", "omap", "pairs"):
        _cls.add_constructor(f"tag:yaml.org,2002:{_kind}", _reject_plain_type)
    _cls.add_multi_constructor("", _reject_tag)


def read_spec_text(path: Path) -> str:
    """Read a spec file as UTF-8 text, turning every I/O problem into a SpecError.

    Only a regular file is read (a directory, device, FIFO or socket is refused without blocking:
    the file is opened non-blocking and checked before any read), and at most the size budget
    plus one byte of it, whatever its size claims to be."""
    where = Source(str(path), 1, 1)
    cap = limits.SPEC_BYTES.value
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise SpecError(e.strerror or str(e), source=where) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError("is a directory, not a spec file", source=where, hint="name a .yaml file inside it")
        if not stat.S_ISREG(mode):
            raise SpecError(f"is {file_kind(mode)}, not a regular file", source=where)
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise limits.SPEC_BYTES.error(f"the file is over {cap:,} bytes", where)
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text (byte {e.start})", source=where, hint="save the file as UTF-8") from None
    except OSError as e:
        raise SpecError(e.strerror or str(e), source=where) from None
    finally:
        os.close(fd)


def check_depth(text: str, file: str) -> None:
    """Refuse YAML nested deeper than the budget before any loader builds it: the loaders recurse
    once per level (libyaml's in C, where a deep enough file overflows the stack). The parsers
    that produce events do not recurse; a YAML error stops the scan, for the loader to report."""
    budget = limits.YAML_DEPTH.value
    if text.count("[") + text.count("{") + max(map(len, text.splitlines()), default=0) + 2 <= budget:
        return  # each level takes an opening bracket or a column of indentation ("- " included)
    fast = _HAS_LIBYAML and text.isascii()
    try:
        _scan_depth(_FastLoader if fast else _Loader, text, file, budget)
    except yaml.YAMLError:
        if fast:  # libyaml's parser may stop where the Python one goes on: what that one reads is checked
            try:
                _scan_depth(_Loader, text, file, budget)
            except yaml.YAMLError:
                pass


def _scan_depth(loader: Any, text: str, file: str, budget: int) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > budget:
                raise limits.YAML_DEPTH.error(
                    f"YAML nested more than {budget} levels deep", _source(event.start_mark, file)
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_documents(text: str, file: str) -> list[Any]:
    """Parse every YAML document in `text`; errors carry file:line:col."""
    check_depth(text, file)
    if _HAS_LIBYAML and text.isascii() and "&" not in text and "*" not in text:
        try:
            return _documents(_FastLoader, text, file)
        except yaml.YAMLError:
            pass  # _Loader below reports it
    try:
        return _documents(_Loader, text, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = _source(mark, file) if mark else Source(file, 1, 1)
        raise SpecError(f"invalid YAML: {e.problem or e.context}", source=where) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", source=Source(file, 1, 1)) from None


def _documents(kind: type[_Loader], text: str, file: str) -> list[Any]:
    loader = kind(text)
    loader.spec_file = file
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    finally:
        loader.dispose()
