"""source.show puts the package's code in the chapters; book/refresh_source.py keeps their stored outputs current."""
import ast
import importlib.metadata
import importlib.util
import json
import textwrap
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import i2icourse  # noqa: E402
from i2icourse import metrics, plot, source# noqa: E402
from i2icourse.models.srcnn import SRCNN  # noqa: E402
from i2icourse.models.unet import UNetGenerator  # noqa: E402
from i2icourse.recipes import autoencoders  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_refresh_script():
    spec = importlib.util.spec_from_file_location("refresh_source", ROOT / "book" / "refresh_source.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refresh_source = _load_refresh_script()


def ast_lines(path: str, *qualname: str) -> tuple[int, int]:
    """First line (decorators included) and last line of a definition, read from the file's syntax tree."""
    body = ast.parse((ROOT / path).read_text(encoding="utf-8")).body
    for name in qualname:
        node = next(n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
        body = node.body
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def file_lines(path: str, start: int, end: int) -> str:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True)
    return textwrap.dedent("".join(lines[start - 1:end])).rstrip("\n")


URL = "https://github.com/i2icourse/i2icourse/blob/main"


# ----------------------------------------------------------------------------------------------
# find / show: the right lines, the right link
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, path, qualname", [
    (UNetGenerator.forward, "i2icourse/models/unet.py", ("UNetGenerator", "forward")),       # a method
    (metrics.ssim, "i2icourse/metrics.py", ("ssim",)),                                        # a function
    (SRCNN, "i2icourse/models/srcnn.py", ("SRCNN",)),                                         # a class
    (SRCNN.receptive_field, "i2icourse/models/srcnn.py", ("SRCNN", "receptive_field")),       # a property
    (autoencoders.reconstruct, "i2icourse/recipes/autoencoders.py", ("reconstruct",)),        # decorated
], ids=["method", "function", "class", "property", "decorated"])
def test_find_gives_the_definition_its_lines_and_its_link(obj, path, qualname):
    start, end = ast_lines(path, *qualname)
    src = source.find(obj)
    assert (src.path, src.start, src.end) == (path, start, end)
    assert src.code == file_lines(path, start, end)
    assert src.name == "i2icourse." + path[len("i2icourse/"):-3].replace("/", ".") + "." + ".".join(qualname)
    assert src.url == f"{URL}/{path}#L{start}-L{end}"
    md = src.markdown()
    assert f"**`{src.name}`**" in md and f"[view source]({src.url})" in md
    assert f"```python\n{src.code}\n```" in md


def test_a_bound_method_shows_its_function():
    assert source.find(UNetGenerator(depth=2, ngf=2).forward) == source.find(UNetGenerator.forward)


def test_lines_selects_part_of_a_definition_and_moves_the_link():
    whole = source.find(metrics.ssim)
    part = source.find(metrics.ssim, lines=(2, 4))
    assert (part.start, part.end) == (whole.start + 1, whole.start + 3)
    assert part.code == file_lines("i2icourse/metrics.py", whole.start + 1, whole.start + 3)
    assert part.url.endswith(f"#L{whole.start + 1}-L{whole.start + 3}")
    n = whole.end - whole.start + 1
    for bad in [(0, 2), (3, 2), (1, n + 1)]:
        with pytest.raises(ValueError, match=f"has {n} lines"):
            source.find(metrics.ssim, lines=bad)


@pytest.mark.parametrize("obj, error, message", [
    (len, TypeError, "no Python source"),
    (torch.relu, TypeError, "no Python source"),
    (metrics.MS_SSIM_WEIGHTS, TypeError, "no Python source"),
    (UNetGenerator(depth=2, ngf=2), TypeError, "pass UNetGenerator"),
    (torch.nn.Conv2d, ValueError, "not part of the i2icourse package"),
], ids=["builtin", "compiled torch function", "constant", "instance", "outside the package"])
def test_objects_without_source_of_the_package_get_a_clear_error(obj, error, message):
    with pytest.raises(error, match=message):
        source.find(obj)


def test_an_unreadable_source_file_is_a_clear_error(monkeypatch):
    import sys
    import types
    ghost_module = types.ModuleType("i2icourse._ghost")    # in the package, but with no file to read
    monkeypatch.setitem(sys.modules, "i2icourse._ghost", ghost_module)
    exec(compile("def ghost():\n    return 1\n", "/nonexistent/_ghost.py", "exec"), ghost_module.__dict__)
    with pytest.raises(OSError, match="cannot be read"):
        source.find(ghost_module.ghost)


def test_a_fence_is_longer_than_any_backticks_in_the_code():
    md = source.Source("i2icourse.x.f", "i2icourse/x.py", 1, 1, 's = "```"').markdown()
    assert "````python\ns = \"```\"\n````" in md


# ----------------------------------------------------------------------------------------------
# The repository URL: from one place
# ----------------------------------------------------------------------------------------------

def test_the_repository_is_the_homepage_of_the_package_metadata():
    tomllib = pytest.importorskip("tomllib")
    homepage = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    assert source.repository_url() == homepage.rstrip("/")


def test_without_metadata_the_repository_is_the_package_constant(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "metadata", missing)
    monkeypatch.setattr(i2icourse, "REPOSITORY_URL", "https://example.org/fork")
    assert source.repository_url() == "https://example.org/fork"
    assert source.find(metrics.psnr).url.startswith("https://example.org/fork/blob/main/i2icourse/metrics.py#L")


# ----------------------------------------------------------------------------------------------
# Display: Markdown in IPython, plain text elsewhere
# ----------------------------------------------------------------------------------------------

def test_show_prints_plain_text_outside_ipython(capsys):
    source.show(metrics.psnr)
    out = capsys.readouterr().out
    src = source.find(metrics.psnr)
    assert out.startswith(src.heading()) and src.code in out and "```" not in out


def test_show_displays_markdown_in_ipython(monkeypatch):
    import IPython
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    source.show(UNetGenerator.forward)
    source.links(UNetGenerator, metrics)
    (code, raw1), (links, raw2) = shown
    assert raw1 and raw2
    assert code["text/markdown"] == source.find(UNetGenerator.forward).markdown()
    assert code["text/plain"] == source.find(UNetGenerator.forward).heading()
    assert links["text/markdown"] == (f"**The code of this chapter:** [`i2icourse.models.unet`]({URL}/i2icourse/models/unet.py)"
                                      f" · [`i2icourse.metrics`]({URL}/i2icourse/metrics.py)\n")


def test_links_take_modules_or_what_they_define_and_refuse_the_rest():
    assert source.links_markdown(metrics, metrics.ssim).count("i2icourse/metrics.py") == 1
    assert f"({URL}/i2icourse/__init__.py)" in source.links_markdown(i2icourse)
    with pytest.raises(TypeError, match="i2icourse package"):
        source.links_markdown(torch.nn)
    with pytest.raises(ValueError):
        source.links_markdown()


# ----------------------------------------------------------------------------------------------
# The chapters: stored code outputs equal what the package shows now
# ----------------------------------------------------------------------------------------------

def _cells(path):
    return refresh_source.read_notebook(path).cells


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_shows_its_code_from_the_package(path):
    shown = [c for c in _cells(path) if refresh_source.kind(c) == "source" and "source.show(" in c.source]
    assert shown, f"{path.name}: no cell shows the chapter's code with source.show(...)"
    assert any("source.links(" in c.source for c in _cells(path)), f"{path.name}: no source.links(...) line"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_code_outputs_are_what_the_package_shows_now(path):
    # Fails after a change of a shown function (or of anything above it in its file) until
    # `python book/refresh_source.py` has rewritten the stored outputs.
    assert refresh_source.stale(path) == []


def test_a_stale_stored_output_is_reported(tmp_path):
    path = ROOT / "notebooks" / "04_pix2pix.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "source.show(UNetGenerator.forward)"
                in "".join(c["source"]))
    out = next(o for o in cell["outputs"] if "return self.tanh" in "".join(o.get("data", {}).get("text/markdown", "")))
    md = "".join(out["data"]["text/markdown"])
    out["data"]["text/markdown"] = md.replace("return self.tanh", "return torch.sigmoid")  # the package "changed"
    stale_copy = tmp_path / path.name
    stale_copy.write_text(json.dumps(nb), encoding="utf-8")
    assert len(refresh_source.stale(stale_copy)) == 1


@pytest.mark.parametrize("code, expected", [
    ("source.show(metrics.ssim)", "source"),
    ("from i2icourse import source\n\nsource.links(metrics)\nsource.show(metrics.ssim, lines=(1, 3))", "source"),
    ("plot.unet_diagram();", "figure"),
    ("source.show(metrics.ssim)\nplot.cyclegan_diagram()", "figure"),
    ("x = 1\nsource.show(metrics.ssim)", None),           # needs more than the imports
    ("plot.show_images([x])", None),
    ("print(1)", None),
    ("!pip install x", None),
])
def test_which_cells_the_script_refreshes(code, expected):
    import nbformat
    assert refresh_source.kind(nbformat.v4.new_code_cell(code)) == expected


def test_exercise_cells_are_never_refreshed():
    import nbformat
    cell = nbformat.v4.new_code_cell("source.show(metrics.ssim)", metadata={"tags": ["exercise"]})
    assert refresh_source.kind(cell) is None


def test_the_preamble_is_the_notebooks_imports_and_figure_format():
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("!pip install x"),
        nbformat.v4.new_code_cell("import torch\nfrom i2icourse import plot\n\nplot.notebook_figures()  # jpeg\nP = 1"),
        nbformat.v4.new_code_cell("def f():\n    import os\nfrom i2icourse import source"),
        nbformat.v4.new_code_cell("import secret", metadata={"tags": ["solution"]}),
    ])
    assert refresh_source.preamble(nb) == ("import torch\nfrom i2icourse import plot\nplot.notebook_figures()\n"
                                           "from i2icourse import source\n")
    assert "notebook_figures" not in refresh_source.preamble(nb, figures=False)


def test_refresh_runs_the_cells_in_a_kernel_and_writes_their_outputs(tmp_path):
    import nbformat
    cells = [nbformat.v4.new_code_cell("from i2icourse import metrics, plot\n\nplot.notebook_figures()"),
             nbformat.v4.new_code_cell("P = 1  # not refreshed"),
             nbformat.v4.new_code_cell("from i2icourse import source\nsource.show(metrics.psnr)"),
             nbformat.v4.new_code_cell("plot.cyclegan_diagram();")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                         "language": "python"}})
    path = tmp_path / "99_demo.ipynb"
    path.write_text(refresh_source.dumps(nb), encoding="utf-8")
    assert refresh_source.stale(path)                       # nothing stored yet
    assert refresh_source.refresh(path) == 2
    stored = refresh_source.read_notebook(path).cells
    assert stored[1].outputs == [] and stored[0].outputs == []
    assert stored[2].execution_count and stored[3].execution_count  # nbval refuses outputs without a count
    assert refresh_source.stored_markdown(stored[2]) == [source.find(metrics.psnr).markdown()]
    assert [o.output_type for o in stored[3].outputs] == ["display_data"]
    assert "image/jpeg" in stored[3].outputs[0].data      # the notebook's figure format
    assert refresh_source.stale(path) == []
    assert path.read_text(encoding="utf-8") == refresh_source.dumps(refresh_source.read_notebook(path))
    assert refresh_source.refresh(path) == 0               # a second run changes nothing


def test_a_failing_cell_leaves_the_notebook_unchanged(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from i2icourse import source\nsource.show(len)")],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    path = tmp_path / "99_demo.ipynb"
    path.write_text(refresh_source.dumps(nb), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(refresh_source.NotebookRefreshError, match="no Python source"):
        refresh_source.refresh(path)
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------------------------
# The architecture figures
# ----------------------------------------------------------------------------------------------

def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_unet_diagram_draws_the_papers_unet_by_default():
    assert list(plot.UNET_256_WIDTHS) == [b.conv.out_channels for b in UNetGenerator(depth=8, ngf=64).down]
    fig = plot.unet_diagram()
    texts = _texts(fig)
    assert "64\n128²" in texts and "512\n1²" in texts       # first encoder block, bottleneck
    assert "64+64\n128²" in texts and texts.count("512+512\n2²") == 1
    assert len([t for t in texts if "+" in t]) == 7            # one decoder box per skip
    plot.plt.close(fig)


def test_unet_diagram_takes_other_widths_and_refuses_impossible_ones():
    fig = plot.unet_diagram([16, 32, 64], size=32, in_channels=1)
    assert "32+32\n8²" in _texts(fig) and "input\n1, 32²" in _texts(fig)
    plot.plt.close(fig)
    with pytest.raises(ValueError, match="divisible"):
        plot.unet_diagram([16, 32, 64], size=20)


def test_cyclegan_diagram_shows_both_cycles_and_the_four_losses():
    fig = plot.cyclegan_diagram()
    texts = " ".join(_texts(fig))
    for term in (r"\mathcal{L}_{GAN}(G, D_B)", r"\mathcal{L}_{GAN}(F, D_A)", r"\Vert F(G(a)) - a \Vert_1",
                 r"\Vert G(F(b)) - b \Vert_1", r"\Vert G(b) - b \Vert_1", r"\Vert F(a) - a \Vert_1"):
        assert term in texts, term
    fig.canvas.draw()  # the mathtext must render
    plot.plt.close(fig)
