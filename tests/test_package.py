"""The package's shape: every folder is a real package, and the layers import only downwards."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "i2icourse"


def _module_name(path: Path, root: Path) -> list[str]:
    """The dotted parts of the module at ``path`` (``i2icourse/data/fetch.py`` -> i2icourse, data, fetch)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def package_imports(path: Path, root: Path = PKG) -> set[str]:
    """The i2icourse modules that ``path`` imports (first two name parts, e.g. 'i2icourse.io').

    Every import counts: at the top, inside functions, and relative ones (``from ..tiling import x``
    in ``i2icourse/recipes/ssim_maps.py`` is ``i2icourse.tiling``), resolved against ``path``'s package.
    """
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {".".join(n.split(".")[:2]) for n in names if n.startswith("i2icourse.")}
    return found


def test_the_layer_check_sees_relative_and_local_imports(tmp_path):
    # A relative import that climbs out of its folder, or an import inside a function, must be seen.
    root = tmp_path / "i2icourse"
    (root / "data").mkdir(parents=True)
    f = root / "data" / "leak.py"
    f.write_text("from ..models.unet import UNet\nfrom . import fetch\n\n"
                 "def late():\n    from i2icourse.train import fit\n    from .. import recipes\n")
    assert package_imports(f, root) == {"i2icourse.models", "i2icourse.data", "i2icourse.train",
                                        "i2icourse.recipes"}


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
    "metrics.py": {"i2icourse.losses", "i2icourse.models", "i2icourse.data", "i2icourse.train",
                   "i2icourse.distortions"},
    "distortions.py": {"i2icourse.losses", "i2icourse.models", "i2icourse.data", "i2icourse.train",
                       "i2icourse.recipes"},
    "inference.py": "*",
    "precision.py": "*",   # the numeric precision of a step: torch only   # eval mode + no_grad + chunks: torch only, so every layer above may use it
    "analysis.py": {"i2icourse.metrics", "i2icourse.losses", "i2icourse.models", "i2icourse.data",
                    "i2icourse.train", "i2icourse.recipes", "i2icourse.plot", "i2icourse.fid", "i2icourse.tiling",
                    "i2icourse.sr_eval", "i2icourse.distortions"},
    "plot.py": {"i2icourse.metrics", "i2icourse.losses", "i2icourse.models", "i2icourse.data", "i2icourse.train",
                "i2icourse.recipes"},
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


def private_uses(path: Path, root: Path = PKG) -> list[str]:
    """Private names (``_x``, not ``__x__``) of *other* i2icourse modules that ``path`` imports or reads.

    Two forms: ``from i2icourse.metrics import _ms_ssim`` (relative imports too), and ``alias._x`` where
    ``alias`` names an imported i2icourse module (``from i2icourse import losses`` ... ``losses._check``;
    ``import i2icourse.metrics as m`` ... ``m._pair``; ``i2icourse.metrics._pair``).
    """
    here = ".".join(_module_name(path, root))
    package = _module_name(path, root) if path.name == "__init__.py" else _module_name(path, root)[:-1]
    private = lambda name: name.startswith("_") and not (name.startswith("__") and name.endswith("__"))  # noqa: E731
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}          # local name -> dotted i2icourse name it stands for
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("i2icourse"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if not module.startswith("i2icourse"):
                continue
            for a in node.names:
                if private(a.name) and module != here:
                    found.append(f"{module}.{a.name}")
                aliases[a.asname or a.name] = f"{module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            owner = _dotted(node.value, aliases)
            if owner and owner != here:
                found.append(f"{owner}.{node.attr}")
    return sorted(set(found))


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str:
    """The i2icourse name an expression like ``losses`` or ``i2icourse.metrics`` stands for, '' for others."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, "")
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value, aliases)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def test_the_private_name_check_sees_imports_and_attributes(tmp_path):
    root = tmp_path / "i2icourse"
    (root / "recipes").mkdir(parents=True)
    f = root / "recipes" / "leak.py"
    f.write_text("from i2icourse import losses, metrics as m\nimport i2icourse.io\nimport i2icourse.train as T\n"
                 "from i2icourse.metrics import _pair, ssim\nfrom ..data import _hidden\nfrom . import _sibling\n"
                 "from .pix2pix import frozen\n\n"
                 "def f(x):\n    from i2icourse.tiling import _starts\n    losses._check(x)\n"
                 "    y = m._ms_ssim(x) + i2icourse.io._interval(x) + T._rng_state()\n"
                 "    return losses.l1(x) + x._private + losses.__name__ + frozen._inner + ssim(x)\n")
    assert private_uses(f, root) == ["i2icourse.data._hidden", "i2icourse.io._interval", "i2icourse.losses._check",
                                     "i2icourse.metrics._ms_ssim", "i2icourse.metrics._pair",
                                     "i2icourse.recipes._sibling", "i2icourse.recipes.pix2pix.frozen._inner",
                                     "i2icourse.tiling._starts", "i2icourse.train._rng_state"]
    own = root / "metrics.py"
    own.write_text("import i2icourse.metrics as me\nfrom i2icourse.metrics import _pair\nme._pair\n")
    assert private_uses(own, root) == []     # a module's own private names are its business


def test_no_module_uses_another_modules_private_names():
    # What one module needs of another is public, with a docstring: the API page shows it.
    leaks = {str(f.relative_to(PKG.parent)): private_uses(f) for f in sorted(PKG.rglob("*.py"))}
    assert not {f: names for f, names in leaks.items() if names}


def test_nothing_in_the_package_imports_the_exercise_tools():
    for f in PKG.rglob("*.py"):
        if f.parent.name == "exercises" or f.name == "checks.py":
            continue
        assert not package_imports(f) & {"i2icourse.checks", "i2icourse.exercises"}, f


def _third_party_imports(files: list[Path]) -> set[str]:
    """Top-level names of the non-standard-library modules that ``files`` import (absolute imports)."""
    import sys
    names = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    local = {f.stem for folder in ("tests", "book/_ext", "benchmarks") for f in (PKG.parent / folder).glob("*.py")}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local | {"i2icourse"}}


def _requirement_names(requirements: list[str]) -> set[str]:
    import re
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


#: Imported only where the platform provides them: ``google.colab`` on Colab (runtime.keep_on_drive).
PROVIDED_BY_THE_PLATFORM = {"google"}


@pytest.mark.parametrize("part, extras", [("package", ()), ("exercises", ("instructor",)), ("tests", ("test",))])
def test_each_part_declares_what_it_imports(part, extras):
    # `pip install -e '.[test]'` alone must run the tests, and '.[instructor]' the exercise tools.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from importlib.metadata import packages_distributions
    project = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    for extra in extras:
        declared |= _requirement_names(project["optional-dependencies"][extra])
    files = {"package": [f for f in PKG.rglob("*.py") if "exercises" not in f.parts],
             "exercises": sorted((PKG / "exercises").rglob("*.py")),
             "tests": sorted((PKG.parent / "tests").rglob("*.py"))}[part]
    providers = packages_distributions()
    undeclared = {}
    for module in sorted(_third_party_imports(files) - PROVIDED_BY_THE_PLATFORM):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"{part} imports modules whose distributions are not declared: {undeclared}"
