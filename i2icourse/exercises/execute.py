"""Re-run an authoring notebook to refresh its stored outputs, in the form the book and CI expect.

    python -m i2icourse.exercises run notebooks/03_srcnn.ipynb --profile cpu

runs every cell in the notebook's folder with ``I2I_PROFILE`` set, then tidies the result: stub cells
lose the outputs of their (expected) ``NotImplementedError``, widget metadata without saved state
(as Colab writes it) is dropped, and any other error stops the run without touching the file. The
student versions are regenerated afterwards, so they always carry the same teaching outputs.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from nbclient import NotebookClient

from i2icourse.exercises.form import dumps, read_notebook, tags


class NotebookRunError(RuntimeError):
    """A cell other than an exercise stub raised: the stored outputs would show an error."""


def run_notebook(path: str | Path, profile: str = "cpu", timeout: float = 3600, kernel: str = "python3") -> float:
    """Execute ``path`` in place with ``I2I_PROFILE=profile``; return the wall-clock seconds it took.

    The run starts from scratch (its checkpoints go to a new empty folder, so nothing trained earlier is
    loaded) and without progress bars: a stored bar is a widget frozen at its first frame ("0%").
    """
    path = Path(path)
    nb = read_notebook(path)
    client = NotebookClient(nb, kernel_name=kernel, allow_errors=True, timeout=timeout,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="i2i-run-") as checkpoints:
        client.execute(env={**os.environ, "I2I_PROFILE": profile, "I2I_CHECKPOINTS": checkpoints, "TQDM_DISABLE": "1"})
    seconds = time.monotonic() - start
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if "exercise" in tags(cell):
            cell.outputs = []
            cell.execution_count = None
        elif errors:
            e = errors[0]
            raise NotebookRunError(f"{path}, cell {i}: {e.get('ename')}: {e.get('evalue')} (file left unchanged)")
    widgets = nb.metadata.get("widgets")
    if widgets is not None and "state" not in str(list(widgets.values())[:1]):
        del nb.metadata["widgets"]
    path.write_text(dumps(nb), encoding="utf-8")
    return seconds
