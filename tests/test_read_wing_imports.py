"""The read wing's layering, checked on the source: reports, the command line and queries read the
store through the public names of `contexta.query` and `contexta.store`, never another package's
private modules,
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
        and parts[1] in ("query", "store", "capture", "contract")
        and parts[1] != package
        and any(part.startswith("_") for part in parts[2:])
    )


# query may read contract's internals (refs, checks, timestamps): the vocabulary below every package.
@pytest.mark.parametrize(("package", "vocabulary"), [("reports", ()), ("cli", ()), ("query", ("contract",))])
def test_the_read_wing_uses_public_names_of_other_packages_only(
    package: str, vocabulary: tuple[str, ...]
) -> None:
    reached = [
        f"{name}: {module}"
        for name, module in _imports(package)
        if _private_module_of_another_package(module, package) and module.split(".")[1] not in vocabulary
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
