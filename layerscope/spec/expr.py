"""`${...}` expressions in specs: arithmetic over vars, parsed with ast against a whitelist."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.spec.source import YList, YMap

_WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
_PART = re.compile(r"\$\{([^{}]*)\}")
MAX_INT = 2**63 - 1
MAX_EXPONENT = 256
MAX_EXPRESSION = 200  # characters inside ${...}
_BOOLS = {"true": True, "false": False, "True": True, "False": False}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ALLOWED = "numbers, true/false, vars, + - * / // % **, min()/max(), comparisons, and/or/not, a if cond else b"


class Resolver:
    """Evaluates `${...}` against a spec's vars, resolving vars that refer to other vars."""

    def __init__(self, raw_vars: Mapping[str, Any], sources: Mapping[str, Source]):
        self._raw = dict(raw_vars)
        self._sources = dict(sources)
        self._done: dict[str, Any] = {}
        self._active: list[str] = []

    def var(self, name: str, where: Source) -> Any:
        """The value of one var, evaluated once."""
        if name in self._done:
            return self._done[name]
        if name not in self._raw:
            outside = "i is the index of a repeat: and exists only in a repeated layer" if name == "i" else None
            raise SpecError(
                f"unknown var {name!r}",
                source=where,
                hint=outside or did_you_mean(name, self._raw) or "define it under vars:",
            )
        if name in self._active:
            cycle = " -> ".join([*self._active[self._active.index(name) :], name])
            raise SpecError(f"vars refer to each other in a cycle: {cycle}", source=self._sources.get(name, where))
        self._active.append(name)
        try:
            value = self.resolve(self._raw[name], self._sources.get(name, where))
        finally:
            self._active.pop()
        self._done[name] = value
        return value

    def child(self, values: Mapping[str, Any], sources: Mapping[str, Source]) -> Resolver:
        """A resolver for an inner scope: these vars, evaluated, plus `values` (a block's params, a repeat's i)."""
        return Resolver({**self.all_vars(), **values}, {**self._sources, **sources})

    def all_vars(self) -> dict[str, Any]:
        """Every var, evaluated."""
        return {name: self.var(name, self._sources[name]) for name in self._raw}

    def resolve(self, value: Any, where: Source) -> Any:
        """Replace `${...}` in a scalar, list or mapping; a whole-string expression keeps its type."""
        if isinstance(value, str):
            whole = _WHOLE.match(value.strip())
            if whole:
                return self._evaluate(whole.group(1), where)
            if "${" in value:
                return _PART.sub(lambda m: str(self._evaluate(m.group(1), where)), value)
            return value
        if isinstance(value, YList):
            out = YList((self.resolve(v, value.where(i)) for i, v in enumerate(value)), source=value.source)
            out.item_sources = value.item_sources
            return out
        if isinstance(value, YMap):
            return value.derive((k, self.resolve(v, value.where(k))) for k, v in value.items())
        return value

    def _evaluate(self, text: str, where: Source) -> Any:
        if len(text) > MAX_EXPRESSION:
            raise SpecError(
                f"expression of {len(text)} characters is too long",
                source=where,
                hint=f"keep ${{...}} under {MAX_EXPRESSION} characters; use vars: for parts",
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise SpecError(
                f"cannot parse expression ${{{text}}}",
                source=where,
                hint=f"use {ALLOWED}",
            ) from None
        return self._eval(tree.body, text, where)

    def _eval(self, node: ast.AST, text: str, where: Source) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _BOOLS and node.id not in self._raw:
                return _BOOLS[node.id]
            return self.var(node.id, where)
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            values = [self._scalar(self._eval(n, text, where), text, where) for n in [node.left, *node.comparators]]
            return all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:], strict=False))
        if isinstance(node, ast.BoolOp):
            values = [self._truth(self._eval(v, text, where), text, where) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self._truth(self._eval(node.operand, text, where), text, where)
        if isinstance(node, ast.IfExp):
            chosen = node.body if self._truth(self._eval(node.test, text, where), text, where) else node.orelse
            return self._eval(chosen, text, where)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self._number(self._eval(node.operand, text, where), text, where)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self._number(self._eval(node.left, text, where), text, where)
            right = self._number(self._eval(node.right, text, where), text, where)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise SpecError(
                    f"exponent {right} too large in ${{{text}}}",
                    source=where,
                    hint=f"exponents are capped at {MAX_EXPONENT}",
                )
            try:
                result = _BINOPS[type(node.op)](left, right)
            except ZeroDivisionError:
                raise SpecError(f"division by zero in ${{{text}}}", source=where) from None
            except OverflowError:
                raise SpecError(f"result too large in ${{{text}}}", source=where) from None
            return self._bounded(result, text, where)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and not node.keywords
            and node.args
        ):
            args = [self._number(self._eval(a, text, where), text, where) for a in node.args]
            return _FUNCS[node.func.id](*args)
        raise SpecError(
            f"{type(node).__name__.lower()} is not allowed in ${{{text}}}",
            source=where,
            hint=f"expressions take {ALLOWED}",
        )

    @staticmethod
    def _number(value: Any, text: str, where: Source) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"${{{text}}} uses {value!r}, which is not a number", source=where)
        return value

    @staticmethod
    def _scalar(value: Any, text: str, where: Source) -> int | float | bool:
        if not isinstance(value, (int, float)):
            raise SpecError(f"${{{text}}} compares {value!r}, which is not a number or true/false", source=where)
        return value

    @staticmethod
    def _truth(value: Any, text: str, where: Source) -> bool:
        if not isinstance(value, bool):
            raise SpecError(
                f"${{{text}}} uses {value!r} as a condition",
                source=where,
                hint="conditions are comparisons or true/false",
            )
        return value

    @staticmethod
    def _bounded(value: Any, text: str, where: Source) -> Any:
        if isinstance(value, complex) or (isinstance(value, int) and abs(value) > MAX_INT):
            raise SpecError(f"${{{text}}} is out of range", source=where, hint="results must fit in a 64-bit integer")
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"${{{text}}} is not a finite number", source=where)
        return value
