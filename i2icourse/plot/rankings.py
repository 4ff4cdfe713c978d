"""Rankings of reconstructions (chapter 2, the paper's Fig. 1): the chart of a tally and the "be the
judge" panel that fills one.

The tally itself -- counting which model was ranked first, second, third -- is
:class:`i2icourse.analysis.RankingTally`; these functions take any object that offers what they
read of it (:class:`Tally`), so that the figures need nothing of the package above them.
"""
from __future__ import annotations

import random
from typing import Mapping, Protocol, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


class Tally(Protocol):
    """What the chart and the panel use of a tally of rankings, such as an
    :class:`i2icourse.analysis.RankingTally`: its models, the count of each model at each place
    (``counts[model][place]``), its table (``{model: {"1st": count, ...}}``, whose keys name the
    places), the number of rankings, and ``add`` to record one ranking, best first."""

    models: list[str]
    counts: dict[str, list[int]]

    def table(self) -> dict[str, dict[str, int]]: ...

    def add(self, ranking: Sequence[str]) -> None: ...

    def __len__(self) -> int: ...


def _place_names(tally: Tally) -> list[str]:
    """The names of the tally's places, best first: '1st', '2nd', ..."""
    return list(tally.table()[tally.models[0]])


def _judge_order(names: Sequence[str], seed: int) -> list[str]:
    """``names`` in the order a judge sees them, drawn from ``seed``: the draw of
    :func:`i2icourse.analysis.shuffled`, made here so that the figures import nothing but ``images``."""
    order = list(names)
    random.Random(seed).shuffle(order)
    return order


def plot_tally(tally: Tally, title: str = "") -> Figure:
    """A Fig. 1-style bar chart of an :class:`i2icourse.analysis.RankingTally`: for each place (1st, 2nd, ...)
    one bar per model, counting rankings (chapter 2)."""
    places = len(tally.models)
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(places)
    w = 0.8 / places
    for i, m in enumerate(tally.models):
        ax.bar(x + (i - (places - 1) / 2) * w, tally.counts[m], w, label=m)
    ax.set_xticks(x, _place_names(tally))
    ax.set_xlabel("place in the ranking")
    ax.set_ylabel(f"count (of {len(tally)} rankings)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def judge_widget(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor], tally: Tally,
                 seed: int = 0, zoom: int = 2):
    """A "be the judge" ipywidgets panel: an original and its reconstructions in shuffled order (A, B, C);
    the student picks the best, middle and worst, and every submitted ranking goes into ``tally``, whose
    Fig. 1-style chart is redrawn below. Returns the panel (display it in Jupyter or Colab).

    Needs a live kernel: in a static page (the book) the buttons do nothing.
    """
    import io as bytes_io

    import ipywidgets as w
    from IPython.display import display
    from PIL import Image as PILImage

    names = list(reconstructions)
    letters = [chr(ord("A") + i) for i in range(len(names))]
    state = {"i": 0, "order": _judge_order(names, seed)}

    def png(img: torch.Tensor) -> bytes:
        a = (img.detach().clamp(0, 1)[0].cpu().numpy() * 255).round().astype("uint8")
        buf = bytes_io.BytesIO()
        pil = PILImage.fromarray(a)
        pil.resize((pil.width * zoom, pil.height * zoom), PILImage.NEAREST).save(buf, format="PNG")
        return buf.getvalue()

    side = originals.shape[-1] * zoom
    pics = [w.Image(format="png", width=side, height=side) for _ in range(len(names) + 1)]
    captions = [w.Label("original")] + [w.Label(f"reconstruction {c}") for c in letters]
    place_names = _place_names(tally)
    places = [w.Dropdown(options=letters, value=letters[i], description=place_names[i], layout=w.Layout(width="140px"))
              for i in range(len(names))]
    submit = w.Button(description="Submit ranking", button_style="primary")
    message = w.Label()
    chart = w.Output()

    def show() -> None:
        i = state["i"] % len(originals)
        state["order"] = _judge_order(names, seed * 100_003 + state["i"])
        pics[0].value = png(originals[i])
        for pic, model in zip(pics[1:], state["order"]):
            pic.value = png(reconstructions[model][i])

    def redraw() -> None:
        with chart:
            chart.clear_output(wait=True)
            fig = plot_tally(tally, "your rankings")
            display(fig)
            plt.close(fig)

    def on_submit(_=None) -> None:
        picked = [d.value for d in places]
        if len(set(picked)) != len(picked):
            message.value = "Each reconstruction needs its own place: pick A, B and C once each."
            return
        tally.add([state["order"][letters.index(p)] for p in picked])
        message.value = f"{len(tally)} rankings so far. Next image."
        state["i"] += 1
        show()
        redraw()

    submit.on_click(on_submit)
    show()
    column = lambda pic, cap: w.VBox([pic, cap], layout=w.Layout(align_items="center"))  # noqa: E731
    panel = w.VBox([w.HBox([column(p, c) for p, c in zip(pics, captions)]), w.HBox(places), w.HBox([submit, message]),
                    chart])
    panel.submit = on_submit  # for tests: submit the current dropdown choice
    panel.order = lambda: list(state["order"])
    panel.places = places
    return panel
