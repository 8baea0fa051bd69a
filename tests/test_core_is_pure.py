"""The core never reads the clock nor does I/O (the import contract is `lint-imports`)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "server" / "core"

FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("uuid", "uuid4"),
    ("random", "random"),
}
FORBIDDEN_IMPORTS = {
    "asyncio",
    "socket",
    "threading",
    "subprocess",
    "sqlalchemy",
    "sqlmodel",
    "starlette",
    "uvicorn",
    "httpx2",
    "httpx",
    "websockets",
    "apscheduler",
    "time",
    "os",
    "random",
    "io",
    "pathlib",
    "logging",
    "server.adapters",
    "server.driver",
    "server.app",
    "server.settings",
}
FORBIDDEN_BUILTINS = {"open", "print", "input"}


def _problems(path: Path) -> list[str]:
    problems = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_IMPORTS):
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN_CALLS
            ):
                problems.append(f"{path.name}:{node.lineno} calls {func.value.id}.{func.attr}")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                problems.append(f"{path.name}:{node.lineno} calls {func.id}")
    return problems


def test_the_scan_finds_a_clock_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom datetime import datetime\nx = datetime.now()\nopen('f')\n")
    assert _problems(bad) == [
        "bad.py:1 imports time",
        "bad.py:3 calls datetime.now",
        "bad.py:4 calls open",
    ]


def test_the_core_reads_no_clock_and_does_no_io() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 5
    problems = [problem for path in files for problem in _problems(path)]
    assert problems == []
