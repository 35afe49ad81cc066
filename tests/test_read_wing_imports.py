"""The read wing's layering, checked on the source: reports and the command line read the store through
the public names of `contexta.query` and `contexta.store`, never another package's private modules,
and neither the store nor reports nor queries depend on capture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "contexta"


def _imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported module) for every import in the package, function-level ones included."""
    found = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
    return found


def _private_module_of_another_package(module: str, package: str) -> bool:
    parts = module.split(".")
    return (
        len(parts) > 2
        and parts[0] == "contexta"
        and parts[1] in ("query", "store", "capture")
        and parts[1] != package
        and any(part.startswith("_") for part in parts[2:])
    )


@pytest.mark.parametrize("package", ["reports", "cli"])
def test_reports_and_the_command_line_use_public_names_only(package: str) -> None:
    reached = [
        f"{name}: {module}"
        for name, module in _imports(package)
        if _private_module_of_another_package(module, package)
    ]

    assert reached == []


@pytest.mark.parametrize("package", ["store", "reports", "query"])
def test_the_store_reports_and_queries_do_not_depend_on_capture(package: str) -> None:
    reached = [
        f"{name}: {module}"
        for name, module in _imports(package)
        if module == "contexta.capture" or module.startswith("contexta.capture.")
    ]

    assert reached == []
