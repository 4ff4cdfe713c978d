"""The package's shape: every folder is a real package, and the layers import only downwards."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "i2icourse"


def package_imports(path: Path) -> set[str]:
    """The i2icourse modules that ``path`` imports (first two name parts, e.g. 'i2icourse.io')."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {".".join(n.split(".")[:2]) for n in names if n.startswith("i2icourse.")}
    return found


def test_every_folder_is_a_package():
    # A folder without __init__.py imports from a checkout but is left out of a pip-installed wheel (Colab).
    for folder in [p for p in PKG.rglob("*") if p.is_dir() and p.name != "__pycache__"]:
        if any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), f"{folder} has no __init__.py"


RULES = {  # module (file or folder) -> package modules it must not import
    "runtime.py": "*",
    "io.py": "*",
    "models": {"i2icourse.data", "i2icourse.train", "i2icourse.plot", "i2icourse.metrics", "i2icourse.losses",
               "i2icourse.recipes", "i2icourse.checks", "i2icourse.exercises"},
    "data": {"i2icourse.models", "i2icourse.train", "i2icourse.recipes", "i2icourse.checks"},
    "metrics.py": {"i2icourse.losses", "i2icourse.models", "i2icourse.data", "i2icourse.train"},
}


@pytest.mark.parametrize("module", sorted(RULES))
def test_layers_import_only_downwards(module):
    files = [PKG / module] if module.endswith(".py") else sorted((PKG / module).rglob("*.py"))
    for f in files:
        imported = package_imports(f) - {f"i2icourse.{f.parent.name}"} if f.parent != PKG else package_imports(f)
        banned = imported if RULES[module] == "*" else imported & RULES[module]
        if module == "models":
            banned |= {m for m in imported if not m.startswith("i2icourse.models")}
        assert not banned, f"{f.relative_to(PKG.parent)} imports {sorted(banned)}"


def test_nothing_in_the_package_imports_the_exercise_tools():
    for f in PKG.rglob("*.py"):
        if f.parent.name == "exercises" or f.name == "checks.py":
            continue
        assert not package_imports(f) & {"i2icourse.checks", "i2icourse.exercises"}, f
