"""Every third-party module the application imports is a runtime dependency.

``./scripts/run`` installs only ``[project.dependencies]`` (``scripts/bootstrap --runtime``),
so a module imported by ``src/partnercenter`` but listed only under the ``dev`` extra breaks
the first run on a fresh machine while the test suite (which installs ``dev``) stays green.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "partnercenter"


def _imported_top_level_modules() -> dict[str, list[str]]:
    """Top-level module name → files (relative) that import it, for absolute imports in src."""
    found: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", spec)
    assert match, spec
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _runtime_distributions() -> set[str]:
    """The runtime requirements, closed over their own (non-extra) requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pending = [_requirement_name(spec) for spec in project["dependencies"]]
    # uvicorn[standard] pulls its extras in at runtime.
    extras = {
        _requirement_name(spec): re.findall(r"\[([^\]]+)\]", spec)
        for spec in project["dependencies"]
    }
    closed: set[str] = set()
    while pending:
        name = pending.pop()
        if name in closed:
            continue
        closed.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        wanted_extras = {e.strip() for group in extras.get(name, []) for e in group.split(",")}
        for req in requires:
            marker = req.split(";", 1)[1] if ";" in req else ""
            if "extra ==" in marker:
                extra = re.search(r"extra == ['\"]([^'\"]+)['\"]", marker)
                if not extra or extra.group(1) not in wanted_extras:
                    continue
            pending.append(_requirement_name(req))
    return closed


def test_every_imported_third_party_module_is_a_runtime_dependency() -> None:
    providers = md.packages_distributions()
    runtime = _runtime_distributions()
    stdlib = set(sys.stdlib_module_names) | {"__future__", "partnercenter"}
    missing: dict[str, list[str]] = {}
    for module, files in sorted(_imported_top_level_modules().items()):
        if module in stdlib:
            continue
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {files[0]}) is not installed at all"
        if not dists & runtime:
            missing[module] = files
    assert not missing, (
        "imported by the application but not a runtime dependency in pyproject.toml "
        f"(only dev?): {missing}"
    )
