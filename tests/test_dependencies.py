"""Dependencies point one way, nothing that runs in the browser imports numpy (or any C extension), and product
code never imports the test harness, the tests, the benchmarks or the setup code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

STDLIB = set(sys.stdlib_module_names)
ALLOWED = {
    "py_shared": STDLIB | {"py_shared", "tinygrad"},
    # segno: pure Python, shipped as a wheel beside tinygrad (www/vendor/wheels)
    "py_browser": STDLIB | {"py_shared", "py_browser", "tinygrad", "segno", "js", "pyodide", "pyodide_js", "pyscript"},
    "www": STDLIB | {"py_browser", "js", "pyodide", "pyodide_js", "pyscript"},
    "py_cpython": STDLIB | {"py_shared", "py_cpython", "cryptography"},
}
FORBIDDEN = {"server": {"py_browser", "py_cli"}}
CLI_ALLOWED = STDLIB | {
    "py_shared",
    "py_cpython",
    "py_cli",
    "tinygrad",
    "websockets",
    "PIL",
    "aiortc",
    "ray",
}  # ray: --engine ray only
PRODUCT = ("py_shared", "py_cpython", "py_browser", "www", "py_cli", "server")
NOT_FOR_PRODUCT = {"harness", "tests", "bench", "provision", "tasks"}
PACKAGES = (*PRODUCT, "harness", "tests", "bench", "provision", "tasks")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth (function-local imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_files(folder: str) -> list[Path]:
    """Our own Python files under `folder`, not what setup put into www/vendor or www/dist."""
    generated = {ROOT / "www" / "vendor", ROOT / "www" / "dist"}
    return sorted(p for p in (ROOT / folder).rglob("*.py") if not generated & set(p.parents))


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_browser_side_code_imports_only_what_pyodide_has(folder: str) -> None:
    files = python_files(folder)
    assert files, f"no Python files under {folder}/"
    offending = {str(f.relative_to(ROOT)): sorted(imported_modules(f) - ALLOWED[folder]) for f in files}
    offending = {f: mods for f, mods in offending.items() if mods}
    assert offending == {}, f"imports that cannot load in Pyodide offline: {offending}"


def test_the_scan_catches_numpy(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from numpy import zeros\n    import numpy.linalg as la\n")
    assert imported_modules(sneaky) - ALLOWED["py_shared"] == {"numpy"}


def test_server_does_not_import_clients() -> None:
    for f in python_files("server"):
        assert not imported_modules(f) & FORBIDDEN["server"], f


def test_py_shared_imports_with_numpy_unavailable() -> None:
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in python_files("py_shared")]
    code = "import sys; sys.modules['numpy'] = None\n" + "".join(f"import {m}\n" for m in modules)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_cli_imports_only_its_own_dependencies() -> None:
    offending = {str(f.relative_to(ROOT)): sorted(imported_modules(f) - CLI_ALLOWED) for f in python_files("py_cli")}
    assert {f: mods for f, mods in offending.items() if mods} == {}


@pytest.mark.parametrize("folder", PRODUCT)
def test_product_code_imports_no_harness_tests_benchmarks_or_setup(folder: str) -> None:
    offending = {str(f.relative_to(ROOT)): sorted(imported_modules(f) & NOT_FOR_PRODUCT) for f in python_files(folder)}
    assert {f: mods for f, mods in offending.items() if mods} == {}


def package_graph() -> dict[str, set[str]]:
    """Which of our top-level packages each one imports (itself left out)."""
    return {
        package: {m for f in python_files(package) for m in imported_modules(f) if m in PACKAGES} - {package}
        for package in PACKAGES
    }


def test_no_two_packages_import_each_other_even_through_others() -> None:
    graph = package_graph()
    for start in PACKAGES:  # depth-first from each package: coming back to it is a cycle
        seen: set[str] = set()
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while stack:
            package, path = stack.pop()
            for imported in graph[package]:
                assert imported != start, f"import cycle: {' -> '.join((*path, imported))}"
                if imported not in seen:
                    seen.add(imported)
                    stack.append((imported, (*path, imported)))
