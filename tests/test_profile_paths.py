"""Every chapter's `gpu` and `full` code paths, run end to end on the CPU, shrunk to seconds.

The notebooks run as a student's would on Colab -- the same cells, the same `fetch` calls -- but the
registry's addresses point at miniature archives in each dataset's published layout, served on
127.0.0.1 (`tests/minidata.py`, through `I2I_DATA_SOURCES`), and `I2I_SETTINGS` shrinks the sizes.
A wrong folder name, a wrong split or a crash on the real layout fails here, not in a student's run.
What stays as in the profile: the datasets and tasks (`DATA` below); what is shrunk: everything else,
to the values of the chapter's own smoke profile (`SHRINK` adjusts a few to the miniatures' sizes).
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import minidata
from i2icourse import experiments

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: The settings that choose the data and the code path: kept at the profile's own values.
DATA = {
    "00": (),
    "01": ("photos",),
    "02": ("data", "photos", "held", "photo_scale", "train_images", "probe"),
    "03": ("train", "test", "residual", "init_std", "max_images"),
    "04": ("task", "source", "photos", "workers", "demo_source"),   # workers: DataLoader processes, as on a GPU
    "05": ("task", "source", "photos", "segments"),
    "06": ("task", "source", "photos", "public", "workers"),
}
#: Values fitted to the miniatures (a handful of images each), for the profiles named.
SHRINK = {
    "01": dict(n_photos=6, valid=2),
    "02": dict(holdout=3),
    "04": dict(test_photos=2),
    "05": dict(test_photos=2, side=72),
    "06": dict(test_photos=2, public_steps=2),
}


def notebook(chapter: str) -> Path:
    return next(NOTEBOOKS.glob(f"{chapter}_*.ipynb"))


def literal(node: ast.expr):
    """A settings value: Python literals and `dict(...)` calls, the experiment's training settings
    (`**experiments.PIX2PIX.profiles["cpu"]`) among them, nothing else."""
    return eval(compile(ast.Expression(node), "<settings>", "eval"), {"__builtins__": {}},
                {"dict": dict, "experiments": experiments})


def profile_values(chapter: str) -> dict[str, dict]:
    """The four profiles' dicts, read from the chapter's `runtime.settings(...)` call."""
    nb = nbformat.read(notebook(chapter), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "runtime.settings(" in cell.source:
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "settings":
                    return {kw.arg: literal(kw.value) for kw in node.keywords}
    raise AssertionError(f"{chapter}: no runtime.settings(...) call")


def shrunk(chapter: str, profile: str) -> str:
    """The `I2I_SETTINGS` text that runs `profile` on its own data at the smoke profile's sizes."""
    values = profile_values(chapter)
    keep = set(DATA[chapter])
    changed = {k: v for k, v in values["smoke"].items() if k not in keep and v != values[profile][k]}
    changed.update(SHRINK.get(chapter, {}))
    return "; ".join(f"{k}={v!r}" for k, v in changed.items())


def test_every_chapter_declares_the_four_profiles():
    for chapter in DATA:
        assert list(profile_values(chapter)) == ["smoke", "cpu", "gpu", "full"], chapter


@pytest.fixture(scope="module")
def sources(mini_sources, tmp_path_factory) -> dict[str, str]:
    """The miniatures' sources file with the Waterloo stand-in added, and a fake `unrar` for it."""
    folder = mini_sources.server.folder
    waterloo = minidata.build_waterloo_standin(folder)
    table = json.loads(mini_sources.path.read_text())
    table["waterloo"] = {"urls": [mini_sources.server.url_of(waterloo.path)], "sha256": waterloo.sha256,
                         "size": waterloo.size, "n_images": waterloo.n_images}
    path = tmp_path_factory.mktemp("sources") / "sources.json"
    path.write_text(json.dumps(table))
    tools = minidata.fake_unrar(tmp_path_factory.mktemp("tools"))
    return {"I2I_DATA_SOURCES": str(path), "PATH": f"{tools.parent}{os.pathsep}{os.environ['PATH']}"}


def run(chapter: str, profile: str, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook(chapter), as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)
    return nb


@pytest.mark.parametrize("profile", ["gpu", "full"])
@pytest.mark.parametrize("chapter", sorted(DATA))
def test_the_profile_runs_end_to_end_on_its_real_datasets_layout(chapter, profile, sources, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "I2I_DATA_MIRROR"}
    env.update(sources, I2I_PROFILE=profile, I2I_SETTINGS=shrunk(chapter, profile), I2I_DEVICE="cpu",
               I2I_DATA=str(tmp_path / "data"), I2I_CHECKPOINTS=str(tmp_path / "checkpoints"),
               MPLBACKEND="agg", OMP_NUM_THREADS="1")
    nb = run(chapter, profile, env)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and "exercise" not in cell.metadata.get("tags", []):
                tb = "\n".join(out.get("traceback", []))[-3000:]
                pytest.fail(f"{notebook(chapter).name} ({profile}), cell {i}: {out['ename']}: {out['evalue']}\n{tb}")
    first = "".join(o.get("text", "") for o in nb.cells[5].get("outputs", []) if o.get("name") == "stdout")
    assert f"profile: {profile}" in first, first
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")
    if (chapter, profile) == ("05", "full"):  # TU Graz is a manual download: a clear message, then the offline task
        assert "dronedataset.icg.tugraz.at" in text and "continues on the offline task" in text
    fetched = {p.name for p in (tmp_path / "data").iterdir()} if (tmp_path / "data").exists() else set()
    expected = {"01": {"gpu": {"BSDS500"}, "full": {"waterloo"}}, "02": {"gpu": {"STL10", "yale_b_cropped"}},
                "03": {"gpu": {"BSDS500", "Set5", "Set14"}}, "04": {"gpu": {"facades", "BSDS500"}},
                "05": {"gpu": {"BSDS500"}, "full": {"BSDS500"}}, "06": {"gpu": {"horse2zebra", "CBSD68"}}}
    want = expected.get(chapter, {})
    assert want.get(profile, want.get("gpu", set())) <= fetched, fetched
