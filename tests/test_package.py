"""The package's shape: every folder is a real package, and the layers (tests/layers.py) import only downwards."""
import ast
import itertools
import re
from pathlib import Path

import pytest

from layers import LAYERS

PKG = Path(__file__).resolve().parents[1] / "i2icourse"


def _module_name(path: Path, root: Path) -> list[str]:
    """The dotted parts of the module at ``path`` (``i2icourse/data/fetch.py`` -> i2icourse, data, fetch)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def import_sites(path: Path, root: Path = PKG) -> list[tuple[int, str]]:
    """(line, name) for each i2icourse name that ``path`` imports, the name cut to its first two parts
    ('i2icourse.images', or 'i2icourse.REPOSITORY_URL' for a name of the package root).

    Every import counts: at the top, inside functions, and relative ones (``from ..tiling import x``
    in ``i2icourse/recipes/ssim_maps.py`` is ``i2icourse.tiling``), resolved against ``path``'s package.
    """
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        found += sorted({(node.lineno, ".".join(n.split(".")[:2])) for n in names if n.startswith("i2icourse.")})
    return sorted(found)


def package_imports(path: Path, root: Path = PKG) -> set[str]:
    """The i2icourse modules that ``path`` imports (first two name parts, e.g. 'i2icourse.images'), as
    :func:`import_sites` finds them."""
    return {name for _, name in import_sites(path, root)}


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


def _layer_of(name: str) -> int | None:
    """The index in ``LAYERS`` (0 = the ground floor) of the layer that holds module ``name``."""
    found = [i for i, layer in enumerate(LAYERS) if name in layer]
    return found[0] if found else None


def _describe(i: int) -> str:
    return f"layer {i} ({', '.join(LAYERS[i])})"


def _member(path: Path, root: Path = PKG) -> str:
    """The package module that the file ``path`` belongs to: 'train' for train.py, 'data' for data/fetch.py;
    '' for the package root, i2icourse/__init__.py."""
    parts = path.relative_to(root).parts
    return "" if parts == ("__init__.py",) else parts[0].removesuffix(".py")


def _target(dotted: str, root: Path = PKG) -> str:
    """The package module that an imported name belongs to ('i2icourse.data' -> 'data'); '' for a name
    of the package root (``from i2icourse import REPOSITORY_URL``)."""
    name = dotted.split(".")[1]
    return name if (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file() else ""


def package_modules(root: Path = PKG) -> dict[str, Path]:
    """The package's modules that the layers sort, by name: its files and its folders (the root's
    ``__init__.py`` aside)."""
    files = {p.stem: p for p in root.glob("*.py") if p.name != "__init__.py"}
    return files | {p.name: p for p in root.iterdir() if (p / "__init__.py").is_file()}


def test_every_module_is_in_exactly_one_layer():
    modules = package_modules()
    listed = [name for layer in LAYERS for name in layer]
    problems = [f"{modules[name].relative_to(PKG.parent)} is in no layer: add '{name}' to the tuple of its "
                "layer in tests/layers.py, and to the pictures in i2icourse/__init__.py and README.md"
                for name in sorted(set(modules) - set(listed))]
    problems += [f"tests/layers.py lists '{name}', which is no module of i2icourse (split, renamed or "
                 "removed?): list what it became instead" for name in sorted(set(listed) - set(modules))]
    problems += [f"'{name}' is in more than one layer: "
                 + ", ".join(_describe(i) for i, layer in enumerate(LAYERS) if name in layer)
                 for name in sorted({n for n in listed if listed.count(n) > 1})]
    assert not problems, "\n".join(problems)


def test_layers_import_only_downwards():
    # Every import counts (at the top and inside functions): a module may import from its own layer
    # and the layers below it. An upward import means a module is in the wrong layer or needs
    # splitting; tests/layers.py says how to change the list.
    upward = []
    for f in sorted(PKG.rglob("*.py")):
        here = _member(f)
        for line, dotted in import_sites(f):
            there = _target(dotted)
            mine, theirs = _layer_of(here), _layer_of(there)
            if here and there and mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{f.relative_to(PKG.parent)}:{line} imports i2icourse.{there}, from "
                              f"{_describe(mine)} up to {_describe(theirs)}")
    assert not upward, "imports that go up a layer (tests/layers.py, bottom to top):\n" + "\n".join(upward)


@pytest.mark.parametrize("modules, allowed", [
    ((), set()),                # the package root, the version and the repository's address: nothing
    (LAYERS[0], {""}),          # the ground floor, used by every layer above: the root's names alone
    (("models",), {"models"}),  # the networks know only torch: each file can be copied out alone
], ids=["root", "ground floor", "models"])
def test_the_package_root_the_ground_floor_and_the_models_import_nothing_of_the_package(modules, allowed):
    files = [f for f in PKG.rglob("*.py") if _member(f) in (modules or ("",))]
    assert files
    found = [f"{f.relative_to(PKG.parent)}:{line} imports {dotted}"
             for f in files for line, dotted in import_sites(f) if _target(dotted) not in allowed]
    assert not found, "\n".join(found)


def picture_layers(lines: list[str], indent: int) -> list[tuple[str, ...]]:
    """The layers a text picture draws, top first: each line that starts ``indent`` spaces in names a
    layer (``names, comma separated   what they are``; a folder's trailing '/' dropped), and a names
    column that ends in a comma goes on in the next line; lines indented further describe.
    The picture is the first run of such lines."""
    layers: list[list[str]] = []
    wraps = False
    for line in lines:
        if not line.startswith(" " * indent) or not line.strip():
            if layers:
                break
            continue
        if line[indent] == " ":               # a description goes on
            continue
        names = re.split(r"\s{2,}", line.strip())[0]
        parts = [n.strip().rstrip("/") for n in names.split(",") if n.strip()]
        if wraps:
            layers[-1] += parts
        else:
            layers.append(parts)
        wraps = names.endswith(",")
    return [tuple(layer) for layer in layers]


def test_the_pictures_draw_the_tested_layers():
    # The package docstring and the README's Architecture section draw the layers from the top down.
    import i2icourse
    readme = (PKG.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture", 1)[1]
    tree = section.split("```", 2)[1].splitlines()
    package = tree[next(i for i, line in enumerate(tree) if line.startswith("i2icourse/")) + 1:]
    top_down = list(reversed(LAYERS))
    for where, drawn in [("README.md (Architecture)", picture_layers(package, 2)),
                         ("i2icourse/__init__.py (docstring)", picture_layers(i2icourse.__doc__.splitlines(), 4))]:
        rows = [f"  {', '.join(d) if d else '-':40} {', '.join(t) if t else '-'}"
                + ("" if d == t else "   <- differs") for d, t in itertools.zip_longest(drawn, top_down, fillvalue=())]
        assert drawn == top_down, (f"{where} does not draw the layers of tests/layers.py; top first:\n"
                                   f"  {'the picture':40} {'tests/layers.py'}\n" + "\n".join(rows))


def test_the_picture_reader_sees_wrapped_names_and_folders():
    picture = ["  exercises/, checks  on top", "                      more about them",
               "  runtime, io,        ground floor", "  inference           used above", "data/  not inside"]
    assert picture_layers(picture, 2) == [("exercises", "checks"), ("runtime", "io", "inference")]


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
    f.write_text("from i2icourse import losses, metrics as m\nimport i2icourse.images\nimport i2icourse.train as T\n"
                 "from i2icourse.metrics import _pair, ssim\nfrom ..data import _hidden\nfrom . import _sibling\n"
                 "from .pix2pix import frozen\n\n"
                 "def f(x):\n    from i2icourse.tiling import _starts\n    losses._check(x)\n"
                 "    y = m._ms_ssim(x) + i2icourse.images._interval(x) + T._rng_state()\n"
                 "    return losses.l1(x) + x._private + losses.__name__ + frozen._inner + ssim(x)\n")
    assert private_uses(f, root) == ["i2icourse.data._hidden", "i2icourse.images._interval", "i2icourse.losses._check",
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
        if f.parent.name in ("exercises", "checks"):
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
