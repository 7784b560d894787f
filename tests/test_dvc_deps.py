"""Issue 12 defect 12: every ``unlearn`` module a DVC stage runs is one of its deps, so editing it re-runs the stage.

For each stage of ``dvc.yaml``, the module its ``cmd`` runs (``python -m unlearn.stages.X``) is followed through
every import of an ``unlearn`` module, at any depth and inside functions too (``import unlearn.x``,
``from unlearn.x import y``, ``from unlearn import x``, relative imports), plus module names given as strings
(``importlib.import_module("unlearn.learners.moco")``, ``resources.files("unlearn.schemas")``). Importing a
module runs its packages' ``__init__.py`` too, and a package's data files (``schemas/*.json``) are read through
it, so both count. Each such file must lie under a ``deps`` path of the stage (the file or a parent folder).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "unlearn"
MODULE_NAME = re.compile(rf"^{PACKAGE}(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def module_file(name: str) -> Path | None:
    """``unlearn.a.b`` -> ``src/unlearn/a/b.py`` or ``src/unlearn/a/b/__init__.py``; ``None`` if neither."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, name: str) -> set[str]:
    """Every ``unlearn`` module name ``path`` (module ``name``) may import, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # a submodule, when it is one
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.match(node.value):
            names.add(node.value)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def closure(start: str) -> set[Path]:
    """The files of every ``unlearn`` module ``start`` runs, with their packages' ``__init__.py`` and data files."""
    seen: set[str] = set()
    files: set[Path] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is None:  # ``from unlearn.x import function``: not a module
            continue
        files.add(path)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo.extend(parents)  # importing a.b.c runs a/__init__.py and a/b/__init__.py
        if path.name == "__init__.py":
            files.update(p for p in path.parent.iterdir()
                         if p.is_file() and p.suffix not in (".py", ".pyc") and not p.name.startswith("."))
        todo.extend(imported_names(path, name))
    return files


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_module(stage: dict) -> str:
    match = re.search(r"python -m (unlearn(?:\.\w+)+)", stage["cmd"])
    assert match, f"cannot tell which module runs: {stage['cmd']}"
    return match.group(1)


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(dep) or Path(dep) in rel.parents for dep in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_runs_is_one_of_its_deps(name):
    stage = stages()[name]
    deps = [str(dep) for dep in stage["deps"]]
    missing = sorted(str(p.relative_to(ROOT)) for p in closure(stage_module(stage)) if not covered(p, deps))
    assert not missing, f"dvc.yaml stage {name!r} runs these files but does not depend on them: {missing}"


def test_every_dep_of_the_package_exists():
    """A dep path under src/ that does not exist (a renamed module) would silently cover nothing."""
    for name, stage in stages().items():
        for dep in stage["deps"]:
            if str(dep).startswith("src/"):
                assert (ROOT / dep).exists(), f"dvc.yaml stage {name!r}: dep {dep} does not exist"


def test_the_closure_follows_imports_inside_functions_and_strings():
    """The analysis itself: what the issue's example needs (Learner.signal under unlearn@gp)."""
    files = {str(p.relative_to(SRC)) for p in closure("unlearn.stages.unlearn")}
    assert {"unlearn/learners/base.py", "unlearn/learners/moco.py", "unlearn/methods/gradient_penalty.py",
            "unlearn/models/checkpoint.py", "unlearn/__init__.py"} <= files
    verify = {str(p.relative_to(SRC)) for p in closure("unlearn.stages.verify")}
    assert "unlearn/schemas/certificate.v2.json" in verify  # read through resources.files("unlearn.schemas")
