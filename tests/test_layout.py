"""The inside stays small enough to live in: no module, class or base stream over its limit.

Limits: a module of the tap at most 450 lines, a class at most 300, the SDK glue of every
provider stream (``AuditLogStream``) at most 250; a benchmark file at most 600.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tap_auditlogs"


def lengths(path: Path) -> tuple[int, dict[str, int]]:
    text = path.read_text()
    classes = {
        node.name: (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ClassDef)
    }
    return len(text.splitlines()), classes


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_and_classes_are_small(path: Path) -> None:
    lines, classes = lengths(path)
    assert lines <= 450, f"{path.relative_to(ROOT)} has {lines} lines (at most 450): split it"
    big = {name: n for name, n in classes.items() if n > 300}
    assert not big, f"{path.relative_to(ROOT)}: classes over 300 lines: {big}"


def test_the_base_stream_is_sdk_glue() -> None:
    _, classes = lengths(PACKAGE / "streams/audit_log.py")
    assert classes["AuditLogStream"] <= 250, classes["AuditLogStream"]


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmark_files_are_small(path: Path) -> None:
    lines, _ = lengths(path)
    assert lines <= 600, f"{path.relative_to(ROOT)} has {lines} lines (at most 600)"
