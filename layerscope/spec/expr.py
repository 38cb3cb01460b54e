"""`${...}` expressions in specs: arithmetic over vars, parsed with ast against a whitelist."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from layerscope import limits
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
    """Evaluates `${...}` against a spec's vars, resolving vars that refer to other vars.

    An inner scope (a block's params, a repeat's `i`) is a child holding only its own values,
    already evaluated, in front of its parent's: making one costs nothing however many vars
    the model has. Two budgets hold: how deep vars may be defined through each other, and how
    long a string any expression may make."""

    def __init__(self, raw_vars: Mapping[str, Any], sources: Mapping[str, Source], parent: Resolver | None = None):
        self._raw = dict(raw_vars)
        self._sources = dict(sources)
        self._done: dict[str, Any] = {}
        self._active: list[str] = []
        self._parent = parent

    def var(self, name: str, where: Source) -> Any:
        """The value of one var, evaluated once."""
        if name in self._done:
            return self._done[name]
        if name not in self._raw:
            if self._parent is not None and self._parent.has(name):
                return self._parent.var(name, where)
            outside = "i is the index of a repeat: and exists only in a repeated layer" if name == "i" else None
            raise SpecError(
                f"unknown var {name!r}",
                source=where,
                hint=outside or did_you_mean(name, self.names()) or "define it under vars:",
            )
        if name in self._active:
            cycle = " -> ".join([*self._active[self._active.index(name) :], name])
            raise SpecError(f"vars refer to each other in a cycle: {cycle}", source=self._sources.get(name, where))
        limits.VAR_DEPTH.check(
            len(self._active) + 1,
            f"var {name!r} is defined through more than {limits.VAR_DEPTH.value} other vars in a chain",
            self._sources.get(name, where),
        )
        self._active.append(name)
        try:
            value = self.resolve(self._raw[name], self._sources.get(name, where))
        finally:
            self._active.pop()
        self._done[name] = value
        return value

    def has(self, name: str) -> bool:
        """Whether this scope can see `name`."""
        return name in self._raw or name in self._done or (self._parent is not None and self._parent.has(name))

    def names(self) -> set[str]:
        """Every name this scope can see."""
        return {*self._raw, *self._done, *(self._parent.names() if self._parent is not None else ())}

    def child(self, values: Mapping[str, Any], sources: Mapping[str, Source]) -> Resolver:
        """The scope inside this one with `values` (evaluated: a block's params, a repeat's i) added."""
        inner = Resolver({}, sources, parent=self)
        inner._done.update(values)
        return inner

    def all_vars(self) -> dict[str, Any]:
        """Every var of this scope, evaluated."""
        return {name: self.var(name, self._sources[name]) for name in self._raw}

    def resolve(self, value: Any, where: Source) -> Any:
        """Replace `${...}` in a scalar, list or mapping; a whole-string expression keeps its type."""
        if isinstance(value, str):
            whole = _WHOLE.match(value.strip())
            if whole:
                return self._evaluate(whole.group(1), where)
            if "${" in value:
                return self._substitute(value, where)
            return value
        if isinstance(value, YList):
            out = YList((self.resolve(v, value.where(i)) for i, v in enumerate(value)), source=value.source)
            out.item_sources = value.item_sources
            return out
        if isinstance(value, YMap):
            return value.derive((k, self.resolve(v, value.where(k))) for k, v in value.items())
        return value

    def _substitute(self, text: str, where: Source) -> str:
        """`text` with each `${...}` in it replaced by its value, within the string budget."""
        pieces, end = [], 0
        for match in _PART.finditer(text):
            pieces += [text[end : match.start()], str(self._evaluate(match.group(1), where))]
            end = match.end()
        pieces.append(text[end:])
        length = sum(map(len, pieces))
        limits.STRING.check(length, f"this string would be {length:,} characters long", where)  # before joining
        return "".join(pieces)

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
        return _Evaluator(text, where, lambda name: self._lookup(name, where)).eval(tree.body)

    def _lookup(self, name: str, where: Source) -> Any:
        # a var named true or false wins over the literal
        if name in _BOOLS and name not in self._raw:
            return _BOOLS[name]
        return self.var(name, where)


class _Evaluator:
    """One parsed `${...}`, evaluated node by node; a node type without an entry in _NODES is refused."""

    def __init__(self, text: str, where: Source, name: Callable[[str], Any]):
        self.text = text
        self.where = where
        self.name = name  # a var's value, or true/false

    def eval(self, node: ast.AST) -> Any:
        """The value of `node`, or an error naming the first construct the whitelist leaves out."""
        evaluate = _NODES.get(type(node))
        if evaluate is None:
            raise self.refused(node)
        return evaluate(self, node)

    def refused(self, node: ast.AST) -> SpecError:
        """The error for a node the whitelist leaves out."""
        return SpecError(
            f"{type(node).__name__.lower()} is not allowed in ${{{self.text}}}",
            source=self.where,
            hint=f"expressions take {ALLOWED}",
        )

    def number(self, node: ast.AST) -> int | float:
        """`node`'s value, which must be a number (true/false are not)."""
        value = self.eval(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"${{{self.text}}} uses {value!r}, which is not a number", source=self.where)
        return value

    def scalar(self, node: ast.AST) -> int | float | bool:
        """`node`'s value, which must be a number or true/false."""
        value = self.eval(node)
        if not isinstance(value, (int, float)):
            raise SpecError(
                f"${{{self.text}}} compares {value!r}, which is not a number or true/false", source=self.where
            )
        return value

    def truth(self, node: ast.AST) -> bool:
        """`node`'s value, which must be true or false."""
        value = self.eval(node)
        if not isinstance(value, bool):
            raise SpecError(
                f"${{{self.text}}} uses {value!r} as a condition",
                source=self.where,
                hint="conditions are comparisons or true/false",
            )
        return value

    def bounded(self, value: Any) -> Any:
        """`value` when it is a finite number that fits in a 64-bit integer."""
        if isinstance(value, complex) or (isinstance(value, int) and abs(value) > MAX_INT):
            raise SpecError(
                f"${{{self.text}}} is out of range", source=self.where, hint="results must fit in a 64-bit integer"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"${{{self.text}}} is not a finite number", source=self.where)
        return value


def _constant(ev: _Evaluator, node: ast.Constant) -> Any:
    if not isinstance(node.value, (int, float)):
        raise ev.refused(node)
    return node.value


def _name(ev: _Evaluator, node: ast.Name) -> Any:
    return ev.name(node.id)


def _compare(ev: _Evaluator, node: ast.Compare) -> bool:
    if not all(type(op) in _COMPARE for op in node.ops):
        raise ev.refused(node)
    values = [ev.scalar(n) for n in [node.left, *node.comparators]]
    return all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:], strict=False))


def _bool_op(ev: _Evaluator, node: ast.BoolOp) -> bool:
    values = [ev.truth(v) for v in node.values]  # every operand is checked: no short-circuit
    return all(values) if isinstance(node.op, ast.And) else any(values)


def _unary(ev: _Evaluator, node: ast.UnaryOp) -> Any:
    if isinstance(node.op, ast.Not):
        return not ev.truth(node.operand)
    if not isinstance(node.op, (ast.USub, ast.UAdd)):
        raise ev.refused(node)
    value = ev.number(node.operand)
    return -value if isinstance(node.op, ast.USub) else value


def _if_exp(ev: _Evaluator, node: ast.IfExp) -> Any:
    return ev.eval(node.body if ev.truth(node.test) else node.orelse)


def _bin_op(ev: _Evaluator, node: ast.BinOp) -> Any:
    if type(node.op) not in _BINOPS:
        raise ev.refused(node)
    left = ev.number(node.left)
    right = ev.number(node.right)
    if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
        raise SpecError(
            f"exponent {right} too large in ${{{ev.text}}}",
            source=ev.where,
            hint=f"exponents are capped at {MAX_EXPONENT}",
        )
    try:
        result = _BINOPS[type(node.op)](left, right)
    except ZeroDivisionError:
        raise SpecError(f"division by zero in ${{{ev.text}}}", source=ev.where) from None
    except OverflowError:
        raise SpecError(f"result too large in ${{{ev.text}}}", source=ev.where) from None
    return ev.bounded(result)


def _call(ev: _Evaluator, node: ast.Call) -> Any:
    if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords and node.args):
        raise ev.refused(node)
    return _FUNCS[node.func.id](*[ev.number(a) for a in node.args])


# the whitelist: each allowed node type and how to evaluate it
_NODES: dict[type, Callable[[_Evaluator, Any], Any]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.Compare: _compare,
    ast.BoolOp: _bool_op,
    ast.UnaryOp: _unary,
    ast.IfExp: _if_exp,
    ast.BinOp: _bin_op,
    ast.Call: _call,
}
