"""Mutants of chosen Python functions: one small change at a time, as text.

Each mutant replaces one AST node's source segment (found by its line and column) with the
unparsed mutated node, so the rest of the file stays byte for byte what it was and the report
can show the exact change. String constants are left alone: mutating error messages only
produces noise the tests are right not to check.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

SWAP_COMPARE: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt, ast.GtE], ast.Gt: [ast.GtE, ast.Lt], ast.GtE: [ast.Gt, ast.LtE],
    ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
}
SWAP_BINOP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv,
}
SWAP_CALL = {"min": "max", "max": "min"}


@dataclass(frozen=True)
class Mutant:
    target: str
    file: str
    where: str  # function qualname
    line: int
    before: str
    after: str
    source: str  # the whole mutated file

    @property
    def key(self) -> str:
        """The mutant without its line number: stable while the code around it moves."""
        return f"{self.where}: `{self.before}` -> `{self.after}`"

    @property
    def name(self) -> str:
        return f"{self.file}:{self.line} ({self.where}): `{self.before}` -> `{self.after}`"


def _variants(node: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """(the node whose source is replaced, its replacement) for each mutation of ``node``."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in SWAP_COMPARE.get(type(node.ops[0]), []):
            yield node, ast.unparse(ast.Compare(node.left, [op()], node.comparators))
    elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
        yield node, f"({ast.unparse(ast.BinOp(node.left, SWAP_BINOP[type(node.op)](), node.right))})"
    elif isinstance(node, ast.BoolOp):
        yield node, f"({ast.unparse(ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values))})"
        if len(node.values) == 2:  # drop one operand of `a and b` / `a or b`
            yield node, f"({ast.unparse(node.values[0])})"
            yield node, f"({ast.unparse(node.values[1])})"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        yield node, f"({ast.unparse(node.operand)})"
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield node, repr(not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield node, repr(node.value + 1)
        if node.value != 0:
            yield node, repr(type(node.value)(0))
    elif isinstance(node, ast.AugAssign) and type(node.op) in SWAP_BINOP:
        yield node, ast.unparse(ast.AugAssign(node.target, SWAP_BINOP[type(node.op)](), node.value))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SWAP_CALL:
        yield node.func, SWAP_CALL[node.func.id]
    elif isinstance(node, ast.Break):
        yield node, "continue"
    elif isinstance(node, ast.Continue):
        yield node, "break"
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield node, "return None"
    if isinstance(node, (ast.If, ast.While)) and not isinstance(node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
        yield node.test, f"not ({ast.unparse(node.test)})"  # (comparisons and `and`/`or` are mutated above)
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr, ast.Delete)) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # not a docstring
        yield node, "pass"  # the statement removed


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child
    yield from walk(tree, "")


def _segment(lines: list[str], node: ast.AST) -> tuple[int, int]:
    """Offsets of ``node`` in the file joined from ``lines``."""
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    start = starts[node.lineno - 1] + len(lines[node.lineno - 1].encode()[:node.col_offset].decode())
    assert node.end_lineno is not None and node.end_col_offset is not None
    end_line = lines[node.end_lineno - 1]
    end = starts[node.end_lineno - 1] + len(end_line.encode()[:node.end_col_offset].decode())
    return start, end


def mutants(target: str, file: str, text: str, functions: list[str]) -> list[Mutant]:
    """Every mutant of the named functions (``Class.method`` or ``function``) in ``text``."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    found = dict(_functions(tree))
    missing = set(functions) - set(found)
    if missing:
        raise SystemExit(f"{file}: no function {sorted(missing)}; update bench/mutate/targets.py")
    out = []
    for qualname in functions:
        fn = found[qualname]
        in_fstrings = {id(n) for f in ast.walk(fn) if isinstance(f, ast.JoinedStr) for n in ast.walk(f)}
        for stmt in fn.body:
            for node in ast.walk(stmt):
                if not hasattr(node, "lineno") or id(node) in in_fstrings:
                    continue  # messages are not behaviour
                for replaced, after in _variants(node):
                    start, end = _segment(lines, replaced)
                    before = text[start:end]
                    if after == before:
                        continue
                    mutated = text[:start] + after + text[end:]
                    try:
                        ast.parse(mutated)
                    except SyntaxError:
                        continue
                    out.append(Mutant(target, file, qualname, replaced.lineno, _short(before), _short(after), mutated))
    return out


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= 110 else first[:107] + "..."
